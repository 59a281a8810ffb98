import { type EventStore, StoreUnavailableError } from "../delivery/event-store.js";
import { ALL_TYPES, DEFAULT_ROUTE } from "../route-syntax.js";
import type { NotificationType } from "../vast/api-types.js";
import { parseEvent } from "../vast/event.js";
import { type RouteSelection, routesFor } from "../vast/routing.js";
import { verifySignature } from "../vast/signature.js";
import type { JsonResponse } from "./http-listener.js";
import type { ClaimedEvent } from "./self-test-gate.js";
import { signatureHeadersProblem } from "./signature-headers.js";

/**
 * The public receiver as a function of plain data: a request in, a status and JSON body out, with
 * the answers of SPEC.md. Only the webhook path and a minimal /health are answered here: whatever
 * the tunnel exposes, a stranger can reach. The node:http plumbing lives in server.ts. It is async
 * only because keeping a delivery is: the answer waits for the store's commit.
 */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

/** What happened, for the log line and the worker. */
export type Outcome =
  | {
      kind: "accepted";
      eventId: string;
      notifType: string | undefined;
      duplicate: boolean;
      /** The routes it goes to (when new: the deliveries just kept). */
      routes: string[];
    }
  | { kind: "rejected"; error: RejectReason; detail?: string }
  /** The adapter's own self-test event: answered 200, neither kept nor posted (self-test-gate.ts). */
  | { kind: "self_test"; eventId: string }
  | { kind: "other" };

export type RejectReason =
  | "invalid_signature"
  | "invalid_json"
  | "invalid_payload"
  | "payload_too_large"
  | "unavailable";

export interface HandlerResponse extends JsonResponse {
  outcome: Outcome;
}

export interface ReceiverDeps {
  /** The webhook path, e.g. `/`. */
  path: string;
  /**
   * Secrets accepted now: the current one, and the previous one during a rotation. Called per
   * request, so it must answer from memory: whoever supplies it keeps it current (serve watches
   * the stored secrets), never a read of the secret store per request, which a forger could make
   * cost the adapter I/O on demand.
   */
  secrets: () => readonly string[];
  /** True while a secret rotation is under way (see rotate-secret). */
  rotating?: () => boolean;
  store: Pick<EventStore, "accept">;
  /**
   * The routes an event may go to (README, "Routes"): each kept event gets a delivery for every
   * route whose type list matches it (vast/routing.ts), else for `default`. Default: `default`
   * alone, types `all`.
   */
  routes?: readonly RouteSelection[];
  /**
   * The account's notification types, for the groups of route lists, when known (fetched after
   * start); else the types vast-gchat knows stand in.
   */
  catalogue?: () => readonly NotificationType[] | undefined;
  now?: () => number;
  /** A random id of this adapter process, in /health, so a probe through a tunnel knows it reached us. */
  instance?: string;
  /** True for the adapter's own self-test event, verified and parsed (self-test-gate.ts). */
  claimSelfTest?: (event: ClaimedEvent) => boolean;
}

const HEALTH_PATH = "/health";
const EVERYTHING_TO_DEFAULT: readonly RouteSelection[] = [
  { name: DEFAULT_ROUTE, types: [ALL_TYPES] },
];

function header(headers: ReceivedRequest["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function reject(status: number, error: RejectReason, detail?: string): HandlerResponse {
  const outcome: Outcome = detail
    ? { kind: "rejected", error, detail }
    : { kind: "rejected", error };
  return { status, body: { ok: false, error }, outcome };
}

export function tooLarge(): HandlerResponse {
  return reject(413, "payload_too_large");
}

export function notFound(): HandlerResponse {
  return { status: 404, body: { ok: false, error: "not_found" }, outcome: { kind: "other" } };
}

function methodNotAllowed(allow: string): HandlerResponse {
  return {
    status: 405,
    body: { ok: false, error: "method_not_allowed" },
    headers: { allow },
    outcome: { kind: "other" },
  };
}

export async function handleRequest(
  request: ReceivedRequest,
  deps: ReceiverDeps,
): Promise<HandlerResponse> {
  if (request.path === deps.path) {
    return request.method === "POST" ? handleDelivery(request, deps) : methodNotAllowed("POST");
  }
  if (request.path === HEALTH_PATH) {
    return request.method === "GET" || request.method === "HEAD"
      ? handleHealth(deps)
      : methodNotAllowed("GET, HEAD");
  }
  return notFound();
}

function signedHeaders(headers: ReceivedRequest["headers"]) {
  return {
    timestamp: header(headers, "x-vast-timestamp"),
    signature: header(headers, "x-vast-signature-256"),
  };
}

/**
 * A delivery the headers already condemn (no signature, a malformed or stale one): its 401, to be
 * sent before the body is read. Undefined when only the body can decide.
 */
export function refuseByHeaders(
  headers: ReceivedRequest["headers"],
  deps: Pick<ReceiverDeps, "now">,
): HandlerResponse | undefined {
  const nowSeconds = Math.floor((deps.now?.() ?? Date.now()) / 1000);
  const problem = signatureHeadersProblem(signedHeaders(headers), nowSeconds);
  return problem ? reject(401, "invalid_signature", problem) : undefined;
}

async function handleDelivery(
  request: ReceivedRequest,
  deps: ReceiverDeps,
): Promise<HandlerResponse> {
  const now = deps.now?.() ?? Date.now();
  const signed = signedHeaders(request.headers);
  const verified = verifySignature(deps.secrets(), signed, request.body, Math.floor(now / 1000));
  if (!verified.ok && verified.reason === "mismatch" && deps.rotating?.()) {
    // Perhaps signed with a secret Vast.ai just issued and we have not stored yet: 401 would be
    // final for Vast.ai, 503 makes it try again in a moment.
    return reject(503, "unavailable", "secret rotation in progress");
  }
  if (!verified.ok) return reject(401, "invalid_signature", verified.reason);

  const parsed = parseEvent(request.body);
  if (!parsed.ok) return reject(400, parsed.error);

  const notifType = parsed.event.notif_type;
  const payload = parsed.text;
  if (deps.claimSelfTest?.({ eventId: parsed.eventId, notifType, payload, receivedAt: now })) {
    return {
      status: 200,
      body: { ok: true, event_id: parsed.eventId, duplicate: false },
      outcome: { kind: "self_test", eventId: parsed.eventId },
    };
  }
  const routes = routesFor(notifType, deps.routes ?? EVERYTHING_TO_DEFAULT, deps.catalogue?.());
  try {
    // Committed, with a delivery for each route, before this resolves: the 200 below is never
    // sent for an event not kept.
    const { duplicate } = await deps.store.accept({
      eventId: parsed.eventId,
      notifType,
      payload,
      receivedAt: now,
      routes,
    });
    return {
      status: 200,
      body: { ok: true, event_id: parsed.eventId, duplicate },
      outcome: { kind: "accepted", eventId: parsed.eventId, notifType, duplicate, routes },
    };
  } catch (error) {
    // Not kept means not acknowledged: a 503 makes Vast.ai deliver it again later.
    if (error instanceof StoreUnavailableError) return reject(503, "unavailable", error.message);
    throw error;
  }
}

/**
 * The public listener's health: alive, and which process answered (the tunnel probe compares the
 * instance id). Nothing about the queue, the store or Chat: that is on the loopback listener.
 */
function handleHealth(deps: ReceiverDeps): HandlerResponse {
  return {
    status: 200,
    body: { ok: true, ...(deps.instance ? { instance: deps.instance } : {}) },
    outcome: { kind: "other" },
  };
}
