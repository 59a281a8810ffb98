import type { StoredEvent } from "../delivery/event-store.js";
import type { RejectReason } from "./handler.js";

/**
 * What happens to events, as it happens: for the log, the metrics, the demo and tests that await
 * a step. A module of its own, so that a listener (metrics.ts, the CLI) needs only this type and
 * not the adapter that emits it, which imports those listeners: no import cycle, not even of types.
 * Each carries what a log line of it would say, so a listener never needs to read the log.
 */
export interface AdapterEvents {
  /** A delivery answered 200: the event newly kept, or (duplicate) found kept already. */
  accepted: [eventId: string, duplicate: boolean, notifType: string | undefined];
  /** A delivery refused: its reason is SPEC.md's error code (invalid_signature, ...). */
  rejected: [reason: RejectReason, status: number, detail: string | undefined];
  delivered: [event: StoredEvent, latencyMs: number];
  retrying: [event: StoredEvent, reason: string, delayMs: number];
  dead: [event: StoredEvent, reason: string];
  /** The store refused the worker (locked, full); it tries again shortly. */
  storeError: [error: Error];
}
