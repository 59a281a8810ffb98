import type { StoredEvent } from "../delivery/store.js";

/**
 * What happens to events, as it happens: for the log, the metrics, the demo and tests that await
 * a step. A module of its own, so that a listener (metrics.ts, the CLI) needs only this type and
 * not the adapter that emits it, which imports those listeners: no import cycle, not even of types.
 */
export interface AdapterEvents {
  accepted: [eventId: string, duplicate: boolean];
  /** A delivery refused: its reason is SPEC.md's error code (invalid_signature, ...). */
  rejected: [reason: string];
  delivered: [event: StoredEvent, latencyMs: number];
  retrying: [event: StoredEvent, reason: string, delayMs: number];
  dead: [event: StoredEvent, reason: string];
  /** The store refused the worker (locked, full); it tries again shortly. */
  storeError: [error: Error];
}
