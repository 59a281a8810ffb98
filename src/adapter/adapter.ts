import { createHash, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { mentionLine, withMentions } from "../chat/mentions.js";
import { createChatPoster } from "../chat/post-message.js";
import { type ChatMessage, type MessageFormat, renderMessage } from "../chat/render.js";
import { renderDigest } from "../chat/render-digest.js";
import { chatSpaceKey, chatSpaceLabel } from "../chat/webhook-url.js";
import type { EventRecord, EventStore, StoredDelivery } from "../delivery/event-store.js";
import { openEventStore } from "../delivery/open-store.js";
import { Pace } from "../delivery/pace.js";
import { type DeliveryHealth, DeliveryWorker } from "../delivery/worker.js";
import { DEFAULT_ROUTE } from "../route-syntax.js";
import type { NotificationType } from "../vast/api-types.js";
import { parseEvent } from "../vast/event.js";
import { routesFor } from "../vast/routing.js";
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
 * The data plane assembled: receiver -> store -> one worker per route -> that route's Chat space.
 * `serve` runs it; tests and the demo run it in-process the same way.
 */

/** The structured log the adapter writes to; pino's logger has this shape. */
export interface AdapterLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A route as the adapter delivers it (README, "Routes"): config/routes.ts with its Chat URL. */
export interface AdapterRoute {
  name: string;
  /** As the user wrote them: keys, slugs, group names or `all` (vast/routing.ts reads them). */
  types: readonly string[];
  /** `all` or `users/ID`, written into every message to this route (chat/mentions.ts). */
  mentions: readonly string[];
  chatUrl: URL;
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
  /**
   * Where events go: each route its own space, pacing, digests, retries and dead letters. One must
   * be `default`, which takes what no other route's types match.
   */
  routes: readonly AdapterRoute[];
  /**
   * The account's notification types, for the groups in route lists, once known (serve fetches
   * them after start); until then, and without them, the types vast-gchat knows stand in.
   */
  catalogue?: () => readonly NotificationType[] | undefined;
  format: MessageFormat;
  storePath: string;
  maxBodyBytes?: number;
  requestTimeoutMs?: number;
  chatTimeoutMs?: number;
  /** Messages a second to each route's Chat space (Chat allows about one). Default 1. */
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
  /** The names of the routes it delivers. */
  routes: string[];
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
/** A released test event was answered 200 already: the store gets a few tries to keep it. */
const RELEASE_ATTEMPTS = 5;
const RELEASE_RETRY_MS = 200;

const NOT_FAILING: DeliveryHealth = { failingSince: null, lastError: null };

function storedBody(event: EventRecord) {
  const parsed = parseEvent(Buffer.from(event.payload, "utf8"));
  // Only parseable objects are ever stored; this guards against a hand-edited database.
  return parsed.ok ? parsed.event : { message: event.payload };
}

export function renderStoredEvent(event: EventRecord, format: MessageFormat) {
  return renderMessage(storedBody(event), { eventId: event.eventId, format });
}

function renderStoredDigest(events: EventRecord[], format: MessageFormat, reservedText: number) {
  const digest = renderDigest(
    events.map((event) => ({ eventId: event.eventId, event: storedBody(event) })),
    format,
    reservedText,
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
    const fields = {
      route: event.route,
      type: event.notifType,
      event_id: event.eventId,
      attempts: event.attempts + 1,
    };
    log.info({ ...fields, latency_ms: latencyMs }, "delivered");
  });
  events.on("retrying", (event, reason, delayMs) => {
    const fields = { route: event.route, type: event.notifType, event_id: event.eventId, reason };
    log.warn({ ...fields, retry_in_s: Math.round(delayMs / 100) / 10 }, "retrying");
  });
  events.on("dead", (event, reason) => {
    const fields = { route: event.route, type: event.notifType, event_id: event.eventId, reason };
    log.error(fields, "dead");
  });
  events.on("storeError", (error) => log.error({ reason: error.message }, "store error"));
}

export async function startAdapter(config: AdapterConfig): Promise<RunningAdapter> {
  const names = config.routes.map((route) => route.name);
  if (!names.includes(DEFAULT_ROUTE) || new Set(names).size !== names.length) {
    throw new TypeError(`the routes must be named once each, default among them: ${names}`);
  }
  const log = config.log ?? silentLog;
  const events = new EventEmitter<AdapterEvents>();
  const instance = randomUUID();
  // A long-running store: its housekeeping stays off the request path. Replicas claim the routes
  // of one space together (sharedSpaces), so one of them at a time keeps that space's pace.
  const store = await openEventStore(config.storePath, {
    background: true,
    log,
    sharedSpaces: sharedSpaces(config.routes),
  });
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

  // Routes that post to one space share its pace: Chat counts a space's messages, not a route's.
  const paces = new Map<string, Pace>();
  const paceOf = (url: URL) => {
    const space = chatSpaceKey(url);
    const pace = paces.get(space) ?? new Pace(1000 / (config.rate ?? 1));
    paces.set(space, pace);
    return pace;
  };
  const workers = config.routes.map((route) =>
    routeWorker(route, config, store, events, paceOf(route.chatUrl)),
  );
  logDeliveries(events, log);
  await warnOfOtherRoutes(store, config.routes, log);
  const rejections = createRejectionLog(log);
  const spaces = config.routes.map((route) => ({
    name: route.name,
    space: chatSpaceLabel(route.chatUrl),
  }));
  const metrics = createMetrics({ events, store, routes: spaces });
  const byName = new Map(workers.map((worker) => [worker.route, worker]));
  const problems = new ProblemTracker();
  const problemMetrics = createProblemMetrics(() => problems.list());
  // A webhook_test the gate held back that was somebody else's: kept as the receiver keeps one.
  // It was answered 200 already, so a busy store is tried again, and close() waits for it.
  const keepReleased = async (event: ClaimedEvent) => {
    const routes = routesFor(event.notifType, config.routes, config.catalogue?.());
    for (let attempt = 1; ; attempt++) {
      try {
        const { duplicate } = await store.accept({ ...event, routes });
        if (!duplicate) for (const route of routes) byName.get(route)?.notify();
        const fields = { type: event.notifType ?? null, event_id: event.eventId };
        log.info(fields, duplicate ? "duplicate" : "received");
        events.emit("accepted", event.eventId, duplicate, event.notifType, routes);
        return;
      } catch (error) {
        const reason = (error as Error).message;
        if (attempt === RELEASE_ATTEMPTS) {
          log.error({ event_id: event.eventId, reason }, "could not keep a released test event");
          return;
        }
        log.warn({ event_id: event.eventId, reason }, "store error; trying again");
        await delay(RELEASE_RETRY_MS * attempt);
      }
    }
  };
  const releases = new Set<Promise<void>>();
  const selfTest = new SelfTestGate({
    release: (event) => {
      const kept: Promise<void> = keepReleased(event).finally(() => releases.delete(kept));
      releases.add(kept);
    },
  });

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
        routes: config.routes,
        ...(config.catalogue ? { catalogue: config.catalogue } : {}),
        claimSelfTest: (event) => selfTest.claim(event),
      },
      onResponse: (response, request) => {
        logResponse(log, rejections, response, request.socket.remoteAddress);
        const { outcome } = response;
        if (outcome.kind === "rejected") {
          events.emit("rejected", outcome.error, response.status, outcome.detail);
        }
        if (outcome.kind !== "accepted") return;
        if (!outcome.duplicate) for (const route of outcome.routes) byName.get(route)?.notify();
        events.emit(
          "accepted",
          outcome.eventId,
          outcome.duplicate,
          outcome.notifType,
          outcome.routes,
        );
      },
      onError: (error) => log.error({ reason: (error as Error).message }, "internal error"),
    });
    admin = await startAdminServer({
      port: config.adminPort ?? 0,
      health: () =>
        detailedHealth({
          instance,
          store,
          routes: spaces.map((route) => ({
            ...route,
            delivery: () => byName.get(route.name)?.health ?? NOT_FAILING,
          })),
        }),
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
  for (const worker of workers) worker.start();

  let closing: Promise<void> | undefined;
  return {
    origin: server.origin,
    adminOrigin: admin.origin,
    instance,
    port: server.port,
    routes: names,
    store,
    events,
    problems,
    selfTest,
    deliveryHealth: () => longestFailing(workers),
    close(graceMs = 5000) {
      closing ??= (async () => {
        clearInterval(pruneTimer);
        await Promise.all([
          server.close(),
          admin.close(),
          ...workers.map((worker) => worker.stop(graceMs)),
        ]);
        rejections.close();
        // A self-test under way ends here; what it held that was not ours is kept before closing.
        selfTest.stop();
        await Promise.all(releases);
        await store.close();
      })();
      return closing;
    },
  };
}

/**
 * The routes that share their space with another, each mapped to a name for that space: `space:`
 * and a digest of it, which no route name can be and which holds nothing of the URL's secrets.
 */
function sharedSpaces(routes: readonly AdapterRoute[]): Map<string, string> {
  const bySpace = new Map<string, AdapterRoute[]>();
  for (const route of routes) {
    const space = chatSpaceKey(route.chatUrl);
    bySpace.set(space, [...(bySpace.get(space) ?? []), route]);
  }
  const shared = new Map<string, string>();
  for (const [space, together] of bySpace) {
    if (together.length < 2) continue;
    const name = `space:${createHash("sha256").update(space).digest("hex").slice(0, 16)}`;
    for (const route of together) shared.set(route.name, name);
  }
  return shared;
}

/**
 * The worker of one route: its own Chat URL, digests, retries and dead letters, its mentions
 * written into every message it posts, and the pace of its space (shared with the routes there).
 */
function routeWorker(
  route: AdapterRoute,
  config: AdapterConfig,
  store: EventStore,
  events: EventEmitter<AdapterEvents>,
  pace: Pace,
): DeliveryWorker {
  const poster = createChatPoster(
    route.chatUrl,
    config.chatTimeoutMs === undefined ? {} : { timeoutMs: config.chatTimeoutMs },
  );
  const mention = (message: ChatMessage) => withMentions(message, route.mentions);
  const mentionRoom = mentionLine(route.mentions).length + 1;
  return new DeliveryWorker({
    store,
    route: route.name,
    render: (event) => mention(renderStoredEvent(event, config.format)),
    ...(config.digest === false
      ? {}
      : {
          renderDigest: (due: StoredDelivery[]) => {
            // Room for the mention line above the list: a digest never loses an event to it.
            const digest = renderStoredDigest(due, config.format, mentionRoom);
            return { message: mention(digest.message), carried: digest.carried };
          },
        }),
    post: ({ message, requestId }, signal) => poster.post(message, signal, requestId),
    pace,
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
}

/**
 * Events kept for a route this adapter does not deliver (the route was removed while serve was
 * stopped, or serve runs on the environment alone beside a stored set-up) wait for no one: say so.
 */
async function warnOfOtherRoutes(
  store: EventStore,
  routes: readonly AdapterRoute[],
  log: AdapterLog,
): Promise<void> {
  const ours = new Set(routes.map((route) => route.name));
  try {
    const queue = await store.queue();
    for (const [route, counts] of Object.entries(queue.routes)) {
      if (ours.has(route) || counts.pending === 0) continue;
      log.warn(
        { route, pending: counts.pending },
        "events wait for a route this adapter does not deliver",
      );
    }
  } catch (error) {
    log.warn({ reason: (error as Error).message }, "could not read the queue");
  }
}

/** Chat failing for the whole adapter: the route that has been failing longest, if any is. */
function longestFailing(workers: readonly DeliveryWorker[]): DeliveryHealth {
  let longest: DeliveryHealth = NOT_FAILING;
  for (const { health } of workers) {
    if (health.failingSince === null) continue;
    if (longest.failingSince === null || health.failingSince < longest.failingSince) {
      longest = health;
    }
  }
  return { ...longest };
}
