import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { createChatPoster } from "../chat/post-message.js";
import { type MessageFormat, renderMessage } from "../chat/render.js";
import { renderDigest } from "../chat/render-digest.js";
import { chatSpaceLabel } from "../chat/webhook-url.js";
import type { EventStore, StoredEvent } from "../delivery/event-store.js";
import { openEventStore } from "../delivery/open-store.js";
import { type DeliveryHealth, DeliveryWorker } from "../delivery/worker.js";
import { parseEvent } from "../vast/event.js";
import { startAdminServer } from "./admin-server.js";
import type { AdapterEvents } from "./events.js";
import type { HandlerResponse } from "./handler.js";
import { detailedHealth } from "./health.js";
import type { HttpListener } from "./http-listener.js";
import { createMetrics } from "./metrics.js";
import { createProblemMetrics } from "./problem-metrics.js";
import { ProblemTracker } from "./problems.js";
import { createRejectionLog, type RejectionLog } from "./rejection-log.js";
import { type ClaimedEvent, SelfTestGate } from "./self-test-gate.js";
import { startReceiverServer } from "./server.js";

/**
 * The data plane assembled: receiver -> store -> worker -> Chat. `serve` runs it; tests and the
 * demo run it in-process the same way.
 */

/** The structured log the adapter writes to; pino's logger has this shape. */
export interface AdapterLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface AdapterConfig {
  host: string;
  port: number;
  /** The loopback-only listener's port (detailed /health, /metrics); 0 or unset: any free port. */
  adminPort?: number;
  path: string;
  /**
   * Secrets accepted now, called per request: it must answer from memory (serve keeps it current
   * by watching the stored secrets), never read the secret store.
   */
  secrets: () => readonly string[];
  /** True while a secret rotation is under way: a mismatch then answers 503 (retried), not 401. */
  rotating?: () => boolean;
  chatUrl: URL;
  format: MessageFormat;
  storePath: string;
  maxBodyBytes?: number;
  requestTimeoutMs?: number;
  chatTimeoutMs?: number;
  /** Messages a second to the Chat space (Chat allows about one). Default 1. */
  rate?: number;
  /** An event still undelivered after this long goes to the dead letters. Default 72 h. */
  maxAgeMs?: number;
  /** Merge waiting events into digest messages (default true; the demo shows every card). */
  digest?: boolean;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  log?: AdapterLog;
}

export interface RunningAdapter {
  /** The public listener: the webhook path and a minimal /health. */
  origin: string;
  /** The loopback-only listener: detailed /health and /metrics, e.g. http://127.0.0.1:41234 */
  adminOrigin: string;
  /** Random per process: /health reports it, so a probe through a tunnel knows it reached us. */
  instance: string;
  port: number;
  store: EventStore;
  events: EventEmitter<AdapterEvents>;
  /** What is wrong with the chain now (problems.ts): the chain watcher reports, /metrics shows. */
  problems: ProblemTracker;
  /** Recognises the self-test's event at the receiver, so it is not posted (self-test-gate.ts). */
  selfTest: SelfTestGate;
  /** Whether Chat is failing now, and since when. */
  deliveryHealth(): DeliveryHealth;
  /** Stops taking events, lets a post in flight finish (up to graceMs), closes the store. */
  close(graceMs?: number): Promise<void>;
}

const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

const silentLog: AdapterLog = { debug() {}, info() {}, warn() {}, error() {} };

function storedBody(event: StoredEvent) {
  const parsed = parseEvent(Buffer.from(event.payload, "utf8"));
  // Only parseable objects are ever stored; this guards against a hand-edited database.
  return parsed.ok ? parsed.event : { message: event.payload };
}

export function renderStoredEvent(event: StoredEvent, format: MessageFormat) {
  return renderMessage(storedBody(event), { eventId: event.eventId, format });
}

function renderStoredDigest(events: StoredEvent[], format: MessageFormat) {
  const digest = renderDigest(
    events.map((event) => ({ eventId: event.eventId, event: storedBody(event) })),
    format,
  );
  return { message: digest.message, carried: digest.carried.length };
}

function logResponse(
  log: AdapterLog,
  rejections: RejectionLog,
  response: HandlerResponse,
  remote: string | undefined,
): void {
  const { outcome } = response;
  if (outcome.kind === "accepted") {
    const fields = { type: outcome.notifType ?? null, event_id: outcome.eventId };
    log.info(fields, outcome.duplicate ? "duplicate" : "received");
  } else if (outcome.kind === "rejected") {
    const { status } = response;
    rejections.rejected({ status, reason: outcome.error, detail: outcome.detail, remote });
  }
}

function logDeliveries(events: EventEmitter<AdapterEvents>, log: AdapterLog): void {
  events.on("delivered", (event, latencyMs) => {
    const fields = { type: event.notifType, event_id: event.eventId, attempts: event.attempts + 1 };
    log.info({ ...fields, latency_ms: latencyMs }, "delivered");
  });
  events.on("retrying", (event, reason, delayMs) => {
    const fields = { type: event.notifType, event_id: event.eventId, reason };
    log.warn({ ...fields, retry_in_s: Math.round(delayMs / 100) / 10 }, "retrying");
  });
  events.on("dead", (event, reason) => {
    log.error({ type: event.notifType, event_id: event.eventId, reason }, "dead");
  });
  events.on("storeError", (error) => log.error({ reason: error.message }, "store error"));
}

export async function startAdapter(config: AdapterConfig): Promise<RunningAdapter> {
  const log = config.log ?? silentLog;
  const events = new EventEmitter<AdapterEvents>();
  const instance = randomUUID();
  // A long-running store: its housekeeping stays off the request path.
  const store = await openEventStore(config.storePath, { background: true, log });
  // Forgetting old ids is housekeeping: a busy or full store is reported and tried again later.
  const prune = async () => {
    try {
      await store.prune(Date.now());
    } catch (error) {
      log.warn({ reason: (error as Error).message }, "prune failed");
    }
  };
  await prune();
  const pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS).unref();

  const poster = createChatPoster(
    config.chatUrl,
    config.chatTimeoutMs === undefined ? {} : { timeoutMs: config.chatTimeoutMs },
  );
  const worker = new DeliveryWorker({
    store,
    render: (event) => renderStoredEvent(event, config.format),
    ...(config.digest === false
      ? {}
      : { renderDigest: (due: StoredEvent[]) => renderStoredDigest(due, config.format) }),
    post: ({ message, requestId }, signal) => poster.post(message, signal, requestId),
    ...(config.rate === undefined ? {} : { rate: config.rate }),
    ...(config.maxAgeMs === undefined ? {} : { maxAgeMs: config.maxAgeMs }),
    ...(config.initialBackoffMs === undefined ? {} : { initialBackoffMs: config.initialBackoffMs }),
    ...(config.maxBackoffMs === undefined ? {} : { maxBackoffMs: config.maxBackoffMs }),
    observer: {
      delivered: (event, latencyMs) => events.emit("delivered", event, latencyMs),
      retrying: (event, reason, delayMs) => events.emit("retrying", event, reason, delayMs),
      dead: (event, reason) => events.emit("dead", event, reason),
      storeError: (error) => events.emit("storeError", error as Error),
    },
  });
  logDeliveries(events, log);
  const rejections = createRejectionLog(log);
  const metrics = createMetrics({ events, store, space: chatSpaceLabel(config.chatUrl) });
  const problems = new ProblemTracker();
  const problemMetrics = createProblemMetrics(() => problems.list());
  // A webhook_test the gate held back that was somebody else's: kept as the receiver keeps one.
  const keepReleased = async (event: ClaimedEvent) => {
    try {
      const { duplicate } = await store.accept(event);
      if (!duplicate) worker.notify();
      const fields = { type: event.notifType ?? null, event_id: event.eventId };
      log.info(fields, duplicate ? "duplicate" : "received");
      events.emit("accepted", event.eventId, duplicate, event.notifType);
    } catch (error) {
      log.error({ event_id: event.eventId, reason: (error as Error).message }, "store error");
    }
  };
  const selfTest = new SelfTestGate({ release: (event) => void keepReleased(event) });

  let server: HttpListener | undefined;
  let admin: HttpListener;
  try {
    server = await startReceiverServer({
      host: config.host,
      port: config.port,
      ...(config.maxBodyBytes === undefined ? {} : { maxBodyBytes: config.maxBodyBytes }),
      ...(config.requestTimeoutMs === undefined
        ? {}
        : { requestTimeoutMs: config.requestTimeoutMs }),
      deps: {
        instance,
        path: config.path,
        secrets: config.secrets,
        ...(config.rotating ? { rotating: config.rotating } : {}),
        store,
        claimSelfTest: (event) => selfTest.claim(event),
      },
      onResponse: (response, request) => {
        logResponse(log, rejections, response, request.socket.remoteAddress);
        const { outcome } = response;
        if (outcome.kind === "rejected") {
          events.emit("rejected", outcome.error, response.status, outcome.detail);
        }
        if (outcome.kind !== "accepted") return;
        if (!outcome.duplicate) worker.notify();
        events.emit("accepted", outcome.eventId, outcome.duplicate, outcome.notifType);
      },
      onError: (error) => log.error({ reason: (error as Error).message }, "internal error"),
    });
    admin = await startAdminServer({
      port: config.adminPort ?? 0,
      health: () => detailedHealth({ instance, store, delivery: () => worker.health }),
      metrics: async () => ({
        contentType: metrics.contentType,
        text: (await metrics.render()) + (await problemMetrics.render()),
      }),
      onError: (error) => log.error({ reason: (error as Error).message }, "internal error"),
    });
  } catch (error) {
    await server?.close();
    rejections.close();
    clearInterval(pruneTimer);
    await store.close();
    throw error;
  }
  worker.start();

  let closing: Promise<void> | undefined;
  return {
    origin: server.origin,
    adminOrigin: admin.origin,
    instance,
    port: server.port,
    store,
    events,
    problems,
    selfTest,
    deliveryHealth: () => ({ ...worker.health }),
    close(graceMs = 5000) {
      closing ??= (async () => {
        clearInterval(pruneTimer);
        await Promise.all([server.close(), admin.close(), worker.stop(graceMs)]);
        rejections.close();
        await store.close();
      })();
      return closing;
    },
  };
}
