import type { DeliveryState, EventState, StoredDelivery, StoredEvent } from "./event-store.js";

/**
 * The rows both stores read, named by their columns (the same in SQLite and PostgreSQL), and the
 * objects the EventStore interface hands out made from them: one mapping, whichever database.
 */
export interface EventRow {
  seq: number;
  event_id: string;
  notif_type: string | null;
  payload: string;
  /** On an event: the sum of its deliveries (event-store.ts). */
  state: EventState;
  attempts: number;
  received_at: number;
  queued_at: number;
  next_attempt_at: number;
  last_error: string | null;
  delivered_at: number | null;
}

export interface DeliveryRow {
  route: string;
  state: EventState;
  attempts: number;
  queued_at: number;
  next_attempt_at: number;
  last_error: string | null;
  delivered_at: number | null;
}

/** An event's columns with one of its deliveries' (what a route's worker and `events list` read). */
export type DeliveryEventRow = Pick<
  EventRow,
  "seq" | "event_id" | "notif_type" | "payload" | "received_at"
> &
  DeliveryRow;

export function toDeliveryState(row: DeliveryRow): DeliveryState {
  return {
    route: row.route,
    state: row.state,
    attempts: row.attempts,
    queuedAt: row.queued_at,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    deliveredAt: row.delivered_at,
  };
}

export function toStoredDelivery(row: DeliveryEventRow): StoredDelivery {
  return {
    seq: row.seq,
    eventId: row.event_id,
    notifType: row.notif_type,
    payload: row.payload,
    receivedAt: row.received_at,
    ...toDeliveryState(row),
  };
}

export function toStoredEvent(row: EventRow, deliveries: DeliveryState[]): StoredEvent {
  return {
    seq: row.seq,
    eventId: row.event_id,
    notifType: row.notif_type,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    receivedAt: row.received_at,
    queuedAt: row.queued_at,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    deliveredAt: row.delivered_at,
    deliveries,
  };
}
