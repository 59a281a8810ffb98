import type { Attempt, EventState } from "../event-store.js";
import type { DeliveryEventRow, DeliveryRow, EventRow } from "../rows.js";
import type { SqliteConnection } from "./sqlite-driver.js";

interface InsertParams {
  eventId: string;
  notifType: string | null;
  payload: string;
  receivedAt: number;
}

interface AttemptParams {
  seq: number;
  route: string;
  at: number;
  outcome: Attempt["outcome"];
  status: number | null;
  error: string | null;
  carried: number;
}

/** The columns a delivery row is read with: the event's, then the delivery's. */
const DELIVERY_COLUMNS = `e.seq, e.event_id, e.notif_type, e.payload, e.received_at, d.route, d.state,
  d.attempts, d.queued_at, d.next_attempt_at, d.last_error, d.delivered_at`;

/**
 * The event's columns state to delivered_at as the sum of its deliveries (schema.ts): pending while
 * any is, else dead while any is, else delivered, when the last one was; attempts added up; the
 * latest queuing; the soonest pending attempt; the first undelivered route's last error.
 */
const SUMMARY = `(state, attempts, queued_at, next_attempt_at, last_error, delivered_at) = (
  SELECT
    CASE WHEN SUM(d.state = 'pending') > 0 THEN 'pending'
         WHEN SUM(d.state = 'dead') > 0 THEN 'dead'
         ELSE 'delivered' END,
    COALESCE(SUM(d.attempts), 0),
    COALESCE(MAX(d.queued_at), events.queued_at),
    COALESCE(MIN(CASE WHEN d.state = 'pending' THEN d.next_attempt_at END), MAX(d.next_attempt_at),
             events.next_attempt_at),
    (SELECT u.last_error FROM deliveries u WHERE u.seq = events.seq AND u.state != 'delivered'
       ORDER BY u.route LIMIT 1),
    CASE WHEN SUM(d.state != 'delivered') = 0 THEN MAX(d.delivered_at) END
  FROM deliveries d WHERE d.seq = events.seq)`;

/**
 * Every statement the SQLite store runs, prepared once per connection and typed: the parameters
 * each takes and the rows it returns (rows.ts), so no call site casts a row. The same SQL on
 * either driver.
 */
export function prepareStatements(db: SqliteConnection) {
  return {
    /** The new event's seq; no row when the event id is already kept. */
    insert: db.prepare<InsertParams, { seq: number }>(
      `INSERT INTO events (event_id, notif_type, payload, received_at, queued_at, next_attempt_at)
       VALUES (@eventId, @notifType, @payload, @receivedAt, @receivedAt, @receivedAt)
       ON CONFLICT (event_id) DO NOTHING RETURNING seq`,
    ),
    /** One pending delivery of the event just inserted, queued when it was received. */
    insertDelivery: db.prepare<
      [seq: number, route: string, queuedAt: number, nextAttemptAt: number]
    >("INSERT INTO deliveries (seq, route, queued_at, next_attempt_at) VALUES (?, ?, ?, ?)"),
    /** Writes the event's sum of its deliveries. */
    summarise: db.prepare<[seq: number]>(`UPDATE events SET ${SUMMARY} WHERE seq = ?`),
    nextPending: db.prepare<[route: string], DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.seq
       WHERE d.route = ? AND d.state = 'pending' ORDER BY d.seq LIMIT 1`,
    ),
    markDelivered: db.prepare<{ seq: number; route: string; at: number }>(
      `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = @at,
         last_error = NULL
       WHERE seq = @seq AND route = @route AND state = 'pending'`,
    ),
    markRetry: db.prepare<{ seq: number; route: string; nextAttemptAt: number; error: string }>(
      `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = @nextAttemptAt,
         last_error = @error
       WHERE seq = @seq AND route = @route AND state = 'pending'`,
    ),
    markDead: db.prepare<{ seq: number; route: string; error: string }>(
      `UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = @error
       WHERE seq = @seq AND route = @route AND state = 'pending'`,
    ),
    recordAttempt: db.prepare<AttemptParams>(
      `INSERT INTO attempts (seq, route, at, outcome, status, error, carried)
       VALUES (@seq, @route, @at, @outcome, @status, @error, @carried)`,
    ),
    dueBatch: db.prepare<[route: string, now: number, limit: number], DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.seq
       WHERE d.route = ? AND d.state = 'pending' AND d.next_attempt_at <= ?
       ORDER BY d.seq LIMIT ?`,
    ),
    list: db.prepare<
      { state: EventState | null; route: string | null; limit: number },
      DeliveryEventRow
    >(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.seq
       WHERE (@state IS NULL OR d.state = @state) AND (@route IS NULL OR d.route = @route)
       ORDER BY d.seq DESC, d.route LIMIT @limit`,
    ),
    deliveriesOf: db.prepare<[seq: number], DeliveryRow>(
      `SELECT route, state, attempts, queued_at, next_attempt_at, last_error, delivered_at
       FROM deliveries WHERE seq = ? ORDER BY route`,
    ),
    attemptsOf: db.prepare<[seq: number], Attempt>(
      `SELECT route, at, outcome, status, error, carried FROM attempts WHERE seq = ? ORDER BY id`,
    ),
    /** Every delivery of the event queued again. */
    requeue: db.prepare<{ seq: number; now: number }>(
      `UPDATE deliveries SET state = 'pending', next_attempt_at = @now, queued_at = @now,
         delivered_at = NULL
       WHERE seq = @seq`,
    ),
    /** One route's delivery of the event queued again, or made if the event never went there. */
    requeueRoute: db.prepare<{ seq: number; route: string; now: number }>(
      `INSERT INTO deliveries (seq, route, queued_at, next_attempt_at) VALUES (@seq, @route, @now, @now)
       ON CONFLICT (seq, route) DO UPDATE SET state = 'pending', next_attempt_at = @now,
         queued_at = @now, delivered_at = NULL`,
    ),
    deadSeqs: db.prepare<{ route: string | null }, { seq: number }>(
      `SELECT DISTINCT seq FROM deliveries
       WHERE state = 'dead' AND (@route IS NULL OR route = @route)`,
    ),
    requeueDead: db.prepare<{ now: number; route: string | null }>(
      `UPDATE deliveries SET state = 'pending', next_attempt_at = @now, queued_at = @now
       WHERE state = 'dead' AND (@route IS NULL OR route = @route)`,
    ),
    undeliveredOfRoute: db.prepare<[route: string], { seq: number }>(
      `SELECT seq FROM deliveries WHERE route = ? AND state != 'delivered'`,
    ),
    dropUndelivered: db.prepare<[route: string]>(
      `DELETE FROM deliveries WHERE route = ? AND state != 'delivered'`,
    ),
    /** Forgets the event if no delivery of it is left. */
    dropIfBare: db.prepare<{ seq: number }>(
      `DELETE FROM events
       WHERE seq = @seq AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = @seq)`,
    ),
    byEventId: db.prepare<[eventId: string], EventRow>(`SELECT * FROM events WHERE event_id = ?`),
    /** The route's post under way: a JSON array of seqs, one row a route at most. */
    notePosting: db.prepare<[route: string, seqs: string]>(
      `INSERT OR REPLACE INTO postings (route, seqs) VALUES (?, ?)`,
    ),
    posting: db.prepare<[route: string], { seqs: string }>(
      `SELECT seqs FROM postings WHERE route = ?`,
    ),
    clearPosting: db.prepare<[route: string]>(`DELETE FROM postings WHERE route = ?`),
    pendingOf: db.prepare<[route: string, seqs: string], DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.seq
       WHERE d.route = ? AND d.state = 'pending' AND d.seq IN (SELECT value FROM json_each(?))
       ORDER BY d.seq`,
    ),
    latestOfType: db.prepare<[notifType: string, since: number], EventRow>(
      `SELECT * FROM events WHERE notif_type = ? AND received_at >= ? ORDER BY seq DESC LIMIT 1`,
    ),
    /** Each route's delivered deliveries (pending and dead: `queue`, which reads less). */
    deliveredCounts: db.prepare<[], { route: string; state: "delivered"; n: number; oldest: null }>(
      `SELECT route, 'delivered' AS state, COUNT(*) AS n, NULL AS oldest
       FROM deliveries WHERE state = 'delivered' GROUP BY route`,
    ),
    /**
     * Each route's pending and dead deliveries, and its oldest pending one's receipt: reads only
     * the small partial indexes of pending and dead deliveries, never the delivered ones.
     */
    queue: db.prepare<
      [],
      { route: string; state: "pending" | "dead"; n: number; oldest: number | null }
    >(
      `SELECT d.route, 'pending' AS state, COUNT(*) AS n, MIN(e.received_at) AS oldest
         FROM deliveries d JOIN events e ON e.seq = d.seq
         WHERE d.state = 'pending' GROUP BY d.route
       UNION ALL
       SELECT route, 'dead' AS state, COUNT(*) AS n, NULL AS oldest
         FROM deliveries WHERE state = 'dead' GROUP BY route`,
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
