import { request } from "undici";
import { isLoopbackHostHeader } from "./loopback-host.js";
import { METRIC_PREFIX } from "./metrics.js";

/**
 * What `status` reads from a running adapter's loopback listener: the detailed /health and the
 * counters of /metrics. Either is undefined when it cannot be read.
 */
export interface AdminReport {
  health: unknown;
  counters: AdapterCounters | undefined;
}

/** The adapter's counters since it started (delivered, retries and dead: every route's). */
export interface AdapterCounters {
  received: number;
  duplicates: number;
  rejected: Record<string, number>;
  delivered: number;
  retries: number;
  dead: number;
}

const TIMEOUT_MS = 2000;

export async function readAdmin(adminOrigin: string): Promise<AdminReport> {
  // The address comes from a file: never let it send `status` anywhere but this machine.
  if (!isLoopbackOrigin(adminOrigin)) return { health: undefined, counters: undefined };
  const origin = new URL(adminOrigin).origin;
  const [health, metrics] = await Promise.all([get(`${origin}/health`), get(`${origin}/metrics`)]);
  return {
    // 503 is an answer too: the store cannot be read, and the body says so.
    health: health?.status === 200 || health?.status === 503 ? parseJson(health.text) : undefined,
    counters: metrics?.status === 200 ? countersOf(metrics.text) : undefined,
  };
}

function isLoopbackOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    const port = url.port === "" ? 80 : Number(url.port);
    return (
      url.protocol === "http:" &&
      url.username === "" &&
      url.password === "" &&
      isLoopbackHostHeader(url.host, port)
    );
  } catch {
    return false;
  }
}

async function get(url: string): Promise<{ status: number; text: string } | undefined> {
  try {
    const response = await request(url, { headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
    return { status: response.statusCode, text: await response.body.text() };
  } catch {
    return undefined;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The counters of the Prometheus text exposition that `status` shows. */
export function countersOf(text: string): AdapterCounters {
  const counters: AdapterCounters = {
    received: 0,
    duplicates: 0,
    rejected: {},
    delivered: 0,
    retries: 0,
    dead: 0,
  };
  const fields: Record<string, Exclude<keyof AdapterCounters, "rejected">> = {
    events_received_total: "received",
    events_duplicate_total: "duplicates",
    events_delivered_total: "delivered",
    delivery_retries_total: "retries",
    events_dead_total: "dead",
  };
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match?.[1]?.startsWith(METRIC_PREFIX)) continue;
    const name = match[1].slice(METRIC_PREFIX.length);
    const value = Number(match[3]);
    const field = fields[name];
    // A counter by route has a line per route: the adapter's count is their sum.
    if (field) counters[field] += value;
    if (name === "events_rejected_total") {
      const reason = /reason="([^"\\]*)"/.exec(match[2] ?? "")?.[1];
      if (reason && value > 0) counters.rejected[reason] = value;
    }
  }
  return counters;
}
