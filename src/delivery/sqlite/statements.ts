import type { Attempt, EventState, StoredEvent } from "../event-store.js";
import type { SqliteConnection } from "./sqlite-driver.js";

/**
 * Every statement the SQLite store runs, prepared once per connection and typed: the parameters
 * each takes and the rows it returns, so no call site casts a row. The same SQL on either driver.
 */
export interface EventRow {
  seq: number;
  event_id: string;
  notif_type: string | null;
  payload: string;
  state: EventState;
  attempts: number;
  received_at: number;
  queued_at: number;
  next_attempt_at: number;
  last_error: string | null;
  delivered_at: number | null;
}

export function toStoredEvent(row: EventRow): StoredEvent {
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
  };
}

interface InsertParams {
  eventId: string;
  notifType: string | null;
  payload: string;
  receivedAt: number;
}

interface AttemptParams {
  seq: number;
  at: number;
  outcome: Attempt["outcome"];
  status: number | null;
  error: string | null;
  carried: number;
}

export function prepareStatements(db: SqliteConnection) {
  return {
    insert: db.prepare<InsertParams>(
      `INSERT INTO events (event_id, notif_type, payload, received_at, queued_at, next_attempt_at)
       VALUES (@eventId, @notifType, @payload, @receivedAt, @receivedAt, @receivedAt)
       ON CONFLICT (event_id) DO NOTHING`,
    ),
    nextPending: db.prepare<[], EventRow>(
      `SELECT * FROM events WHERE state = 'pending' ORDER BY seq LIMIT 1`,
    ),
    markDelivered: db.prepare<{ seq: number; at: number }>(
      `UPDATE events SET state = 'delivered', attempts = attempts + 1, delivered_at = @at, last_error = NULL
       WHERE seq = @seq AND state = 'pending'`,
    ),
    markRetry: db.prepare<{ seq: number; nextAttemptAt: number; error: string }>(
      `UPDATE events SET attempts = attempts + 1, next_attempt_at = @nextAttemptAt, last_error = @error
       WHERE seq = @seq AND state = 'pending'`,
    ),
    markDead: db.prepare<{ seq: number; error: string }>(
      `UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = @error
       WHERE seq = @seq AND state = 'pending'`,
    ),
    recordAttempt: db.prepare<AttemptParams>(
      `INSERT INTO attempts (seq, at, outcome, status, error, carried)
       VALUES (@seq, @at, @outcome, @status, @error, @carried)`,
    ),
    dueBatch: db.prepare<[now: number, limit: number], EventRow>(
      `SELECT * FROM events WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?`,
    ),
    list: db.prepare<{ state: EventState | null; limit: number }, EventRow>(
      `SELECT * FROM events WHERE (@state IS NULL OR state = @state) ORDER BY seq DESC LIMIT @limit`,
    ),
    attemptsOf: db.prepare<[seq: number], Attempt>(
      `SELECT at, outcome, status, error, carried FROM attempts WHERE seq = ? ORDER BY id`,
    ),
    requeue: db.prepare<{ eventId: string; now: number }>(
      `UPDATE events SET state = 'pending', next_attempt_at = @now, queued_at = @now, delivered_at = NULL
       WHERE event_id = @eventId`,
    ),
    requeueDead: db.prepare<{ now: number }>(
      `UPDATE events SET state = 'pending', next_attempt_at = @now, queued_at = @now WHERE state = 'dead'`,
    ),
    byEventId: db.prepare<[eventId: string], EventRow>(`SELECT * FROM events WHERE event_id = ?`),
    /** The post under way: a JSON array of seqs, one row at most. */
    notePosting: db.prepare<[seqs: string]>(
      `INSERT OR REPLACE INTO posting (id, seqs) VALUES (1, ?)`,
    ),
    posting: db.prepare<[], { seqs: string }>(`SELECT seqs FROM posting WHERE id = 1`),
    clearPosting: db.prepare<[]>(`DELETE FROM posting`),
    pendingOf: db.prepare<[seqs: string], EventRow>(
      `SELECT * FROM events WHERE state = 'pending' AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq`,
    ),
    latestOfType: db.prepare<[notifType: string, since: number], EventRow>(
      `SELECT * FROM events WHERE notif_type = ? AND received_at >= ? ORDER BY seq DESC LIMIT 1`,
    ),
    counts: db.prepare<[], { state: EventState; n: number; oldest: number }>(
      `SELECT state, COUNT(*) AS n, MIN(received_at) AS oldest FROM events GROUP BY state`,
    ),
    /** Reads only the small partial indexes of pending and dead events, never the delivered ones. */
    queue: db.prepare<[], { pending: number; oldest: number | null; dead: number }>(
      `SELECT
         (SELECT COUNT(*) FROM events WHERE state = 'pending') AS pending,
         (SELECT MIN(received_at) FROM events WHERE state = 'pending') AS oldest,
         (SELECT COUNT(*) FROM events WHERE state = 'dead') AS dead`,
    ),
    pruneOld: db.prepare<[before: number]>(
      `DELETE FROM events WHERE state = 'delivered' AND delivered_at < ?`,
    ),
    pruneExcess: db.prepare<[keep: number]>(
      `DELETE FROM events WHERE seq IN (
         SELECT seq FROM events WHERE state = 'delivered' ORDER BY seq DESC LIMIT -1 OFFSET ?)`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
