import type { EventEmitter } from "node:events";
import type { EventStore } from "../delivery/event-store.js";
import type { AdapterEvents } from "./events.js";
import type { RejectReason } from "./handler.js";
import { Counter, Gauge, Histogram, Registry } from "./prom-client-classes.js";

/**
 * GET /metrics on the loopback listener: Prometheus text for one adapter. Counters follow the
 * adapter's events; the queue gauges are read from the store at scrape time. What is about a
 * delivery (delivered, retried, dead, latency, queue) is labelled by route, the gauges also by
 * the route's Chat space; what is about receiving (received, duplicates, rejected) is not. Each
 * adapter has its own registry (never prom-client's global one), so several adapters can run in
 * one process (tests, the demo).
 */

export interface MetricsRoute {
  name: string;
  /** The Chat space id (never the webhook's key/token): chatSpaceLabel in chat/webhook-url.ts. */
  space: string;
}

export interface MetricsOptions {
  events: EventEmitter<AdapterEvents>;
  store: Pick<EventStore, "queue">;
  /** The routes the adapter delivers. */
  routes: readonly MetricsRoute[];
  /** Clock for the oldest pending event's age (ms since epoch). */
  now?: () => number;
}

export interface AdapterMetrics {
  contentType: string;
  render(): Promise<string>;
}

export const METRIC_PREFIX = "vast_gchat_";

const REJECT_REASONS: readonly RejectReason[] = [
  "invalid_signature",
  "invalid_json",
  "invalid_payload",
  "payload_too_large",
  "unavailable",
];

/** Receipt to Chat 2xx: from a quick post (50 ms) to a long Chat outage (an hour). */
export const LATENCY_BUCKETS_SECONDS = [
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
] as const;

export function createMetrics(options: MetricsOptions): AdapterMetrics {
  const { events, store, routes } = options;
  const now = options.now ?? Date.now;
  const register = new Registry();
  const registers = [register];

  const received = new Counter({
    name: `${METRIC_PREFIX}events_received_total`,
    help: "Events accepted and kept (duplicates not counted).",
    registers,
  });
  const duplicates = new Counter({
    name: `${METRIC_PREFIX}events_duplicate_total`,
    help: "Deliveries of an event already kept (answered 200, not kept again).",
    registers,
  });
  const rejected = new Counter({
    name: `${METRIC_PREFIX}events_rejected_total`,
    help: "Deliveries refused, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const reason of REJECT_REASONS) rejected.inc({ reason }, 0);
  const delivered = new Counter({
    name: `${METRIC_PREFIX}events_delivered_total`,
    help: "Events posted to Google Chat (2xx), by route.",
    labelNames: ["route"] as const,
    registers,
  });
  const retries = new Counter({
    name: `${METRIC_PREFIX}delivery_retries_total`,
    help: "Events whose post to Google Chat failed and that will be tried again (a digest counts each event it carried), by route.",
    labelNames: ["route"] as const,
    registers,
  });
  const deadTotal = new Counter({
    name: `${METRIC_PREFIX}events_dead_total`,
    help: "Events given up on (dead letters), by route.",
    labelNames: ["route"] as const,
    registers,
  });
  const latency = new Histogram({
    name: `${METRIC_PREFIX}delivery_latency_seconds`,
    help: "Time from receipt to Google Chat's 2xx, by route.",
    labelNames: ["route"] as const,
    buckets: [...LATENCY_BUCKETS_SECONDS],
    registers,
  });

  const queueDepth = new Gauge({
    name: `${METRIC_PREFIX}queue_depth`,
    help: "Events waiting to be posted to Google Chat (NaN when the store cannot be read).",
    labelNames: ["route", "space"] as const,
    registers,
  });
  const deadLetters = new Gauge({
    name: `${METRIC_PREFIX}dead_letters`,
    help: "Dead letters kept, awaiting `events retry-dead` (NaN when the store cannot be read).",
    labelNames: ["route", "space"] as const,
    registers,
  });
  const oldestAge = new Gauge({
    name: `${METRIC_PREFIX}oldest_pending_age_seconds`,
    help: "Age of the oldest event waiting to be posted; 0 when none (NaN when the store cannot be read).",
    labelNames: ["route", "space"] as const,
    registers,
  });

  events.on("accepted", (_eventId, duplicate) => (duplicate ? duplicates : received).inc());
  events.on("rejected", (reason) => rejected.inc({ reason }));
  // Every route's series from the start, at 0: a rate() over a route's first event works.
  for (const { name } of routes) {
    delivered.inc({ route: name }, 0);
    retries.inc({ route: name }, 0);
    deadTotal.inc({ route: name }, 0);
  }
  events.on("delivered", (event, latencyMs) => {
    delivered.inc({ route: event.route });
    latency.observe({ route: event.route }, Math.max(0, latencyMs) / 1000);
  });
  events.on("retrying", (event) => retries.inc({ route: event.route }));
  events.on("dead", (event) => deadTotal.inc({ route: event.route }));

  /** One store read per scrape; a store that cannot be read leaves the gauges NaN, not a 500. */
  const readQueue = async () => {
    let queue: Awaited<ReturnType<typeof store.queue>> | undefined;
    try {
      queue = await store.queue();
    } catch {
      queue = undefined;
    }
    for (const { name, space } of routes) {
      const labels = { route: name, space };
      if (!queue) {
        queueDepth.set(labels, Number.NaN);
        deadLetters.set(labels, Number.NaN);
        oldestAge.set(labels, Number.NaN);
        continue;
      }
      const counts = queue.routes[name];
      const oldest = counts?.oldestPendingAt ?? null;
      queueDepth.set(labels, counts?.pending ?? 0);
      deadLetters.set(labels, counts?.dead ?? 0);
      oldestAge.set(labels, oldest === null ? 0 : Math.max(0, (now() - oldest) / 1000));
    }
  };

  return {
    contentType: register.contentType,
    async render() {
      await readQueue();
      return register.metrics();
    },
  };
}
