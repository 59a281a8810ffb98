import type { StoredDelivery } from "../delivery/event-store.js";
import type { RejectReason } from "./handler.js";

/**
 * What happens to events, as it happens: for the log, the metrics, the demo and tests that await
 * a step. A module of its own, so that a listener (metrics.ts, the CLI) needs only this type and
 * not the adapter that emits it, which imports those listeners: no import cycle, not even of types.
 * Each carries what a log line of it would say, so a listener never needs to read the log.
 */
export interface AdapterEvents {
  /**
   * A delivery answered 200: the event newly kept, or (duplicate) found kept already; `routes`, the
   * routes it goes to.
   */
  accepted: [eventId: string, duplicate: boolean, notifType: string | undefined, routes: string[]];
  /** A delivery refused: its reason is SPEC.md's error code (invalid_signature, ...). */
  rejected: [reason: RejectReason, status: number, detail: string | undefined];
  /** One route's delivery of an event (its `route`): posted, failed for now, or given up. */
  delivered: [event: StoredDelivery, latencyMs: number];
  retrying: [event: StoredDelivery, reason: string, delayMs: number];
  dead: [event: StoredDelivery, reason: string];
  /** The store refused the worker (locked, full); it tries again shortly. */
  storeError: [error: Error];
}
