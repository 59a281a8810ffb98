import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pg from "pg";
import {
  type AcceptInput,
  type Attempt,
  type CountRow,
  type DeliveryState,
  deliveryRoutes,
  type EventStore,
  type ListOptions,
  type OutcomeRecord,
  type QueueStats,
  type StoredDelivery,
  type StoredEvent,
  type StoreOptions,
  type StoreStats,
  StoreUnavailableError,
  sumQueue,
  sumStats,
} from "../event-store.js";
import { type DeliveryEventRow, type EventRow, toStoredDelivery, toStoredEvent } from "../rows.js";
import type { StoreLocation } from "../store-location.js";
import { describePgError, unavailable } from "./errors.js";
import { migrate, newerSchemaError, SCHEMA_VERSION, schemaVersion } from "./schema.js";

/**
 * The event store in PostgreSQL, shared by every replica of `serve` (issue 17), with the SQLite
 * store's semantics (event-store.ts):
 *
 * - `accept` is one statement, committed before it resolves (`synchronous_commit` on: the commit
 *   is on the server's disk); the signed event id is UNIQUE, so a repeat that reaches another
 *   replica is a duplicate there too.
 * - A route's outbox is drained by one replica at a time: the route's row in `routes` is claimed
 *   (UPDATE of a row found with FOR UPDATE SKIP LOCKED, so replicas never wait on each other) by the
 *   replica that finds work, and renewed as it works. The others see no work for that route while
 *   the claim lives. The claimant paces its posts and builds its digests as a lone adapter would, so
 *   two replicas together still send a space one message a second, and one digest.
 * - A claim lives `claimTtlMs` (20 s) past its last renewal, longer than a post can take (Chat's
 *   timeout is 15 s): a replica that dies mid-post leaves it to expire, and the next replica takes
 *   the route with its note of the post under way, so exactly those events go again under the same
 *   requestId. The claim outliving the dead replica's last post also keeps the pace across the
 *   handover.
 * - Every failure is a StoreUnavailableError whose text never holds the URL's password; the pool
 *   reconnects by itself when the server is back. No query waits long: a connection is given up
 *   after 2 s, a statement after `statementTimeoutMs` (the receiver answers 503 and Vast.ai
 *   retries).
 */
export interface PostgresStoreOptions extends StoreOptions {
  /** Connections this process holds at most. Default 4. */
  poolMax?: number;
  /** How long a claim on a route lives past its last renewal. Default 20 s. */
  claimTtlMs?: number;
  /** Longest a statement may run (server and client side). Default 2 s; commands: their busy timeout. */
  statementTimeoutMs?: number;
  /** Longest wait for a connection. Default 2 s. */
  connectTimeoutMs?: number;
  /** This replica's name in claims; by default host:pid:random. */
  instance?: string;
}

type PostgresLocation = Extract<StoreLocation, { kind: "postgresql" }>;

const DAY_MS = 24 * 60 * 60 * 1000;
/** The claim's default life: longer than Chat's 15 s timeout, plus the pace. */
const DEFAULT_CLAIM_TTL_MS = 20_000;
/** The environment's say on the claim's life (tests make it short, to see a takeover sooner). */
export const CLAIM_TTL_ENV = "VAST_GCHAT_CLAIM_TTL_MS";

/** bigint (int8) columns as numbers: sequence numbers and millisecond times fit in 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** One delivery with its event, as the worker and `events list` read it. */
const DELIVERY_COLUMNS = `e.seq, e.event_id, e.notif_type, e.payload, e.received_at, d.route, d.state,
  d.attempts, d.queued_at, d.next_attempt_at, d.last_error, d.delivered_at`;
const FROM_DELIVERIES = `vast_gchat.deliveries d JOIN vast_gchat.events e ON e.seq = d.seq`;
/** A route row the replica named by `me` (a parameter) may act on: its own claim, or no live claim. */
const freeOrMine = (me: string) => `(claimed_by = ${me} OR claimed_by IS NULL
  OR claim_expires_at IS NULL OR claim_expires_at <= clock_timestamp())`;

/**
 * An event with its deliveries summed (event-store.ts): pending while any delivery is, else dead
 * while any is, else delivered; attempts added; the latest queuing; the soonest pending retry; the
 * error of the first undelivered one.
 */
const EVENT_COLUMNS = `e.seq, e.event_id, e.notif_type, e.payload, e.received_at,
  CASE WHEN bool_or(d.state = 'pending') THEN 'pending'
       WHEN bool_or(d.state = 'dead') THEN 'dead' ELSE 'delivered' END AS state,
  COALESCE(sum(d.attempts), 0)::integer AS attempts,
  COALESCE(max(d.queued_at), e.received_at) AS queued_at,
  COALESCE(min(d.next_attempt_at) FILTER (WHERE d.state = 'pending'), min(d.next_attempt_at),
           e.received_at) AS next_attempt_at,
  (array_agg(d.last_error ORDER BY d.route) FILTER (WHERE d.state <> 'delivered'))[1] AS last_error,
  CASE WHEN bool_and(d.state = 'delivered') THEN max(d.delivered_at) END AS delivered_at,
  COALESCE(json_agg(json_build_object('route', d.route, 'state', d.state, 'attempts', d.attempts,
    'queuedAt', d.queued_at, 'nextAttemptAt', d.next_attempt_at, 'lastError', d.last_error,
    'deliveredAt', d.delivered_at) ORDER BY d.route) FILTER (WHERE d.route IS NOT NULL), '[]')
    AS deliveries`;

/** An event row with its deliveries summed (EVENT_COLUMNS) and listed (json, in route order). */
interface SummedEventRow extends EventRow {
  deliveries: DeliveryState[];
}

/** json numbers: the deliveries' bigint columns arrive as numbers here already. */
const toEvent = (row: SummedEventRow): StoredEvent => toStoredEvent(row, row.deliveries);

function poolFor(where: PostgresLocation, options: PostgresStoreOptions): pg.Pool {
  const statementTimeoutMs = options.statementTimeoutMs ?? 2000;
  const pool = new pg.Pool({
    connectionString: where.url,
    max: options.poolMax ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    // The client gives up a little after the server would, so the server's own error comes first.
    query_timeout: statementTimeoutMs + 500,
    statement_timeout: statementTimeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: "vast-gchat",
    types,
    // An acknowledgement means committed: a role or database set to synchronous_commit off (or
    // local) would answer before the commit is safe, so every connection of ours raises it back to
    // on (a stronger setting, remote_apply, is left alone). The pool awaits this before it hands
    // the connection out, so it is never a second query running beside the first.
    onConnect: async (client) => {
      await client.query(
        "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') IN ('off', 'local')",
      );
    },
  });
  // A pooled connection that breaks while idle (the server restarted) is dropped by the pool; the
  // event must not be left unhandled, or it would end the process.
  pool.on("error", (error) => {
    options.log?.warn(
      { reason: describePgError(error, where.secrets) },
      "a database connection was lost; it is replaced on next use",
    );
  });
  return pool;
}

/** Opens the store (creating its tables when they are missing); rejects with StoreUnavailableError. */
export async function openPostgresStore(
  where: PostgresLocation,
  options: PostgresStoreOptions = {},
): Promise<EventStore> {
  const statementTimeoutMs = Math.max(2000, options.busyTimeoutMs ?? 0);
  const pool = poolFor(where, { statementTimeoutMs, ...options });
  try {
    const client = await pool.connect();
    try {
      await migrate(client, where.shown);
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => {});
    throw unavailable(error, where.secrets);
  }
  const envTtl = Number(process.env[CLAIM_TTL_ENV]);
  return new PostgresEventStore(pool, where, {
    ...options,
    claimTtlMs: options.claimTtlMs ?? (envTtl > 0 ? envTtl : DEFAULT_CLAIM_TTL_MS),
  });
}

/**
 * What `status` says of a PostgreSQL store without opening it for work: null when it answers at
 * this schema (or has none yet), else why not, in a sentence without the password.
 */
export async function probePostgresStore(where: PostgresLocation): Promise<string | null> {
  const client = new pg.Client({
    connectionString: where.url,
    connectionTimeoutMillis: 2000,
    query_timeout: 2000,
    application_name: "vast-gchat status",
  });
  client.on("error", () => {});
  try {
    await client.connect();
    const version = await schemaVersion(client);
    if (version > SCHEMA_VERSION) return newerSchemaError(version, where.shown).message;
    return null;
  } catch (error) {
    return `cannot reach ${where.shown} (${describePgError(error, where.secrets)})`;
  } finally {
    await client.end().catch(() => {});
  }
}

class PostgresEventStore implements EventStore {
  readonly kind = "postgresql (pg)";
  private readonly pool: pg.Pool;
  private readonly secrets: readonly string[];
  private readonly retentionMs: number;
  private readonly maxDelivered: number;
  private readonly claimTtlMs: number;
  /** Route → the name of its Chat space, for routes that share one (StoreOptions.sharedSpaces). */
  private readonly sharedSpaces: ReadonlyMap<string, string>;
  /** This replica, in the claims it takes. */
  readonly instance: string;
  private closing: Promise<void> | undefined;
  private readonly knownRoutes = new Set<string>();

  constructor(pool: pg.Pool, where: PostgresLocation, options: PostgresStoreOptions) {
    this.pool = pool;
    this.secrets = where.secrets;
    this.retentionMs = options.retentionMs ?? 7 * DAY_MS;
    this.maxDelivered = options.maxDelivered ?? 100_000;
    this.claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
    this.sharedSpaces = options.sharedSpaces ?? new Map();
    // Host and pid, for an operator who looks at who holds a route; the random part tells a
    // restarted process from the one it replaces.
    this.instance =
      options.instance ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  }

  private async query<R extends pg.QueryResultRow>(
    sql: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, values);
    } catch (error) {
      throw unavailable(error, this.secrets);
    }
  }

  /** Runs `work` in one transaction on one connection; a failed one is rolled back and dropped. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailable(error, this.secrets);
    }
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      client.release();
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      // The connection's state is unknown (a timeout mid-statement): never reuse it.
      client.release(true);
      throw unavailable(error, this.secrets);
    }
  }

  // --- the receiver ---

  async accept(input: AcceptInput): Promise<{ duplicate: boolean }> {
    // One statement, so one implicit transaction: the event and its deliveries, or nothing.
    const result = await this.query<{ inserted: number }>(
      `WITH e AS (
         INSERT INTO vast_gchat.events (event_id, notif_type, payload, received_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING seq, received_at),
       d AS (
         INSERT INTO vast_gchat.deliveries (seq, route, queued_at, next_attempt_at)
         SELECT e.seq, r.route, e.received_at, e.received_at
         FROM e CROSS JOIN unnest($5::text[]) AS r(route)
         RETURNING 1)
       SELECT (SELECT count(*) FROM e)::integer AS inserted, (SELECT count(*) FROM d) AS deliveries`,
      [
        input.eventId,
        input.notifType ?? null,
        input.payload,
        input.receivedAt,
        deliveryRoutes(input),
      ],
    );
    return { duplicate: result.rows[0]?.inserted === 0 };
  }

  // --- the delivery worker ---

  /**
   * Takes (or renews) this replica's claim on the route: true when the route is this replica's to
   * post now. A route that shares its Chat space with others is claimed with the space first (a
   * row of its own, named `space:...`, which no route name can be), so the routes of one space
   * are all delivered by one replica and share its pace.
   */
  private async claim(route: string): Promise<boolean> {
    const space = this.sharedSpaces.get(route);
    if (space !== undefined && !(await this.claimRow(space))) return false;
    return this.claimRow(route);
  }

  /**
   * Takes or renews the claim of one row of `routes`. A row another transaction holds at this
   * instant is skipped, not waited for.
   */
  private async claimRow(route: string): Promise<boolean> {
    await this.ensureRoute(route);
    const result = await this.query(
      `UPDATE vast_gchat.routes SET claimed_by = $2,
         claim_expires_at = GREATEST(
           CASE WHEN claimed_by = $2 THEN claim_expires_at END,
           clock_timestamp() + $3 * interval '1 millisecond')
       WHERE route = (
         SELECT route FROM vast_gchat.routes
         WHERE route = $1 AND ${freeOrMine("$2")}
         FOR UPDATE SKIP LOCKED)
       RETURNING route`,
      [route, this.instance, this.claimTtlMs],
    );
    return (result.rowCount ?? 0) > 0;
  }

  /** The route's row, made on first use (the claim and the note live in it). */
  private async ensureRoute(route: string): Promise<void> {
    if (this.knownRoutes.has(route)) return;
    await this.query(
      "INSERT INTO vast_gchat.routes (route) VALUES ($1) ON CONFLICT (route) DO NOTHING",
      [route],
    );
    this.knownRoutes.add(route);
  }

  async nextPending(route: string): Promise<StoredDelivery | undefined> {
    const result = await this.query<DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM ${FROM_DELIVERIES}
       WHERE d.route = $1 AND d.state = 'pending' ORDER BY d.seq LIMIT 1`,
      [route],
    );
    const head = result.rows[0];
    // Work for the route: it is this replica's only if it can claim the route.
    if (!head || !(await this.claim(route))) return undefined;
    return toStoredDelivery(head);
  }

  async dueBatch(route: string, now: number, limit: number): Promise<StoredDelivery[]> {
    // Only the replica that holds the route hands its events out.
    if (!(await this.claim(route))) return [];
    const result = await this.query<DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM ${FROM_DELIVERIES}
       WHERE d.route = $1 AND d.state = 'pending' AND d.next_attempt_at <= $2
         AND EXISTS (SELECT 1 FROM vast_gchat.routes r WHERE r.route = $1 AND r.claimed_by = $4
                     AND r.claim_expires_at > clock_timestamp())
       ORDER BY d.seq LIMIT $3`,
      [route, now, limit, this.instance],
    );
    return result.rows.map(toStoredDelivery);
  }

  async notePosting(route: string, seqs: readonly number[]): Promise<void> {
    // Notes the post and takes or renews the claim: the post may take up to Chat's timeout.
    await this.ensureRoute(route);
    const result = await this.query(
      `UPDATE vast_gchat.routes SET posting = $2::bigint[], claimed_by = $3,
         claim_expires_at = GREATEST(
           CASE WHEN claimed_by = $3 THEN claim_expires_at END,
           clock_timestamp() + $4 * interval '1 millisecond')
       WHERE route = $1 AND ${freeOrMine("$3")} RETURNING route`,
      [route, seqs, this.instance, this.claimTtlMs],
    );
    if ((result.rowCount ?? 0) === 0) {
      // Another replica took the route over (this one was cut off from the database longer than
      // the claim lives): posting now could double its post.
      throw new ClaimLostError(`route ${route} is delivered by another replica now`);
    }
  }

  async unfinishedPosting(route: string): Promise<StoredDelivery[] | undefined> {
    // This replica's note, or the note a replica whose claim expired left behind (a takeover);
    // never the note of a post another replica has under way.
    const noted = await this.query<{ posting: number[] | null }>(
      `SELECT posting FROM vast_gchat.routes WHERE route = $1 AND ${freeOrMine("$2")}`,
      [route, this.instance],
    );
    const posting = noted.rows[0]?.posting;
    if (!posting) return undefined;
    const result = await this.query<DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM ${FROM_DELIVERIES}
       WHERE d.route = $1 AND d.state = 'pending' AND d.seq = ANY($2::bigint[]) ORDER BY d.seq`,
      [route, posting],
    );
    return result.rows.map(toStoredDelivery);
  }

  async clearPosting(route: string): Promise<void> {
    await this.query(
      `UPDATE vast_gchat.routes SET posting = NULL
       WHERE route = $1 AND ${freeOrMine("$2")}`,
      [route, this.instance],
    );
  }

  recordOutcome(route: string, record: OutcomeRecord): Promise<void> {
    const { post } = record;
    return this.transaction(async (client) => {
      // Each marking and its attempts in one statement; a delivery no longer pending here (its
      // route given up by `route remove` while the post was under way) gets no attempt.
      const mark = (
        set: string,
        seqs: readonly number[],
        outcome: Attempt["outcome"],
        error: string | null,
        extra: unknown[] = [],
      ) =>
        client.query(
          `WITH changed AS (
             UPDATE vast_gchat.deliveries SET ${set}
             WHERE route = $1 AND seq = ANY($2::bigint[]) AND state = 'pending' RETURNING seq)
           INSERT INTO vast_gchat.attempts (seq, route, at, outcome, status, error, carried)
           SELECT seq, $1, $3, $4, $5, $6, $7 FROM changed`,
          [route, seqs, post.at, outcome, post.status ?? null, error, post.carried, ...extra],
        );
      if (record.delivered?.length) {
        await mark(
          "state = 'delivered', attempts = attempts + 1, delivered_at = $3, last_error = NULL",
          record.delivered,
          "delivered",
          null,
        );
      }
      if (record.dead?.seqs.length) {
        const { seqs, error } = record.dead;
        await mark("state = 'dead', attempts = attempts + 1, last_error = $6", seqs, "dead", error);
      }
      if (record.retry?.seqs.length) {
        const { seqs, nextAttemptAt, error } = record.retry;
        await mark(
          "attempts = attempts + 1, next_attempt_at = $8, last_error = $6",
          seqs,
          "retry",
          error,
          [nextAttemptAt],
        );
      }
      // The post is over: its time paces the route, and the claim lives on from it. The note is
      // forgotten only by the replica that holds the claim (another may have taken it meanwhile,
      // with a note of its own).
      // Its space's claim too, when it shares one: the space's next claimant keeps its pace.
      const space = this.sharedSpaces.get(route);
      await client.query(
        `UPDATE vast_gchat.routes SET last_post_at = clock_timestamp(),
           posting = CASE WHEN $3 AND route = $1 THEN NULL ELSE posting END,
           claim_expires_at = GREATEST(claim_expires_at,
             clock_timestamp() + $4 * interval '1 millisecond')
         WHERE route = ANY($5::text[]) AND claimed_by = $2`,
        [route, this.instance, record.clearPosting, this.claimTtlMs, [route, space ?? route]],
      );
    });
  }

  // --- the commands and the metrics ---

  private async events(where: string, values: unknown[], tail = ""): Promise<StoredEvent[]> {
    const result = await this.query<SummedEventRow>(
      `SELECT ${EVENT_COLUMNS} FROM vast_gchat.events e
       LEFT JOIN vast_gchat.deliveries d ON d.seq = e.seq
       WHERE ${where} GROUP BY e.seq ${tail}`,
      values,
    );
    return result.rows.map(toEvent);
  }

  async get(eventId: string): Promise<StoredEvent | undefined> {
    return (await this.events("e.event_id = $1", [eventId]))[0];
  }

  async latestOfType(notifType: string, since: number): Promise<StoredEvent | undefined> {
    const found = await this.events(
      `e.seq = (SELECT seq FROM vast_gchat.events WHERE notif_type = $1 AND received_at >= $2
                ORDER BY seq DESC LIMIT 1)`,
      [notifType, since],
    );
    return found[0];
  }

  async list(options: ListOptions = {}): Promise<StoredDelivery[]> {
    const result = await this.query<DeliveryEventRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM ${FROM_DELIVERIES}
       WHERE ($1::text IS NULL OR d.state = $1) AND ($3::text IS NULL OR d.route = $3)
       ORDER BY d.seq DESC, d.route LIMIT $2`,
      [options.state ?? null, options.limit ?? 50, options.route ?? null],
    );
    return result.rows.map(toStoredDelivery);
  }

  async attemptsOf(seq: number): Promise<Attempt[]> {
    const result = await this.query<Attempt>(
      `SELECT route, at, outcome, status, error, carried FROM vast_gchat.attempts WHERE seq = $1
       ORDER BY id`,
      [seq],
    );
    return result.rows.map((row) => ({ ...row }));
  }

  async replay(
    eventId: string,
    now: number,
    options: { route?: string | undefined } = {},
  ): Promise<boolean> {
    // Every delivery of the event again, or one route's (made if the event never went there).
    const requeue =
      options.route === undefined
        ? `UPDATE vast_gchat.deliveries SET state = 'pending', next_attempt_at = $2, queued_at = $2,
             delivered_at = NULL
           WHERE seq = (SELECT seq FROM e) RETURNING 1`
        : `INSERT INTO vast_gchat.deliveries (seq, route, queued_at, next_attempt_at)
           SELECT e.seq, $3, $2, $2 FROM e
           ON CONFLICT (seq, route) DO UPDATE SET state = 'pending', next_attempt_at = $2,
             queued_at = $2, delivered_at = NULL
           RETURNING 1`;
    // FOR SHARE: a prune that has chosen this event waits for the requeue, or the requeue for
    // the prune (and then finds no event); see prune().
    const result = await this.query<{ known: boolean }>(
      `WITH e AS (SELECT seq FROM vast_gchat.events WHERE event_id = $1 FOR SHARE),
       d AS (${requeue})
       SELECT EXISTS (SELECT 1 FROM e) AS known, (SELECT count(*) FROM d) AS n`,
      options.route === undefined ? [eventId, now] : [eventId, now, options.route],
    );
    return result.rows[0]?.known === true;
  }

  async retryDead(now: number, route?: string): Promise<number> {
    const result = await this.query(
      `UPDATE vast_gchat.deliveries SET state = 'pending', next_attempt_at = $1, queued_at = $1
       WHERE state = 'dead' AND ($2::text IS NULL OR route = $2)`,
      [now, route ?? null],
    );
    return result.rowCount ?? 0;
  }

  forgetRoute(route: string): Promise<number> {
    return this.transaction(async (client) => {
      const dropped = await client.query<{ seq: number }>(
        `DELETE FROM vast_gchat.deliveries WHERE route = $1 AND state <> 'delivered'
         RETURNING seq`,
        [route],
      );
      // Its claim and its note go with it; an event that went nowhere else is forgotten: were
      // Vast.ai to send it again, it would be routed afresh.
      await client.query("DELETE FROM vast_gchat.routes WHERE route = $1", [route]);
      await client.query(
        `DELETE FROM vast_gchat.events e WHERE e.seq = ANY($1::bigint[])
           AND NOT EXISTS (SELECT 1 FROM vast_gchat.deliveries d WHERE d.seq = e.seq)`,
        [dropped.rows.map((row) => row.seq)],
      );
      this.knownRoutes.delete(route);
      return dropped.rowCount ?? 0;
    });
  }

  async stats(): Promise<StoreStats> {
    const result = await this.query<CountRow>(
      `SELECT d.route, d.state, count(*)::integer AS n,
         min(e.received_at) FILTER (WHERE d.state = 'pending') AS oldest
       FROM ${FROM_DELIVERIES} GROUP BY d.route, d.state`,
    );
    return sumStats(result.rows);
  }

  async queue(): Promise<QueueStats> {
    // Only the small partial indexes of pending and dead deliveries, never the delivered ones.
    const result = await this.query<CountRow<"pending" | "dead">>(
      `SELECT d.route, 'pending' AS state, count(*)::integer AS n, min(e.received_at) AS oldest
         FROM ${FROM_DELIVERIES} WHERE d.state = 'pending' GROUP BY d.route
       UNION ALL
       SELECT route, 'dead' AS state, count(*)::integer AS n, NULL AS oldest
         FROM vast_gchat.deliveries WHERE state = 'dead' GROUP BY route`,
    );
    return sumQueue(result.rows);
  }

  // --- housekeeping ---

  /**
   * Events whose every delivery is made: past retention, then the oldest beyond the bound. Two
   * statements in one transaction, so that a replay on another connection is never undone: the
   * first locks the candidates' event rows (a replay locks its event's row too, and so waits, then
   * finds the event gone), the second deletes only those still fully delivered, seen with a fresh
   * snapshot (READ COMMITTED) that holds every replay committed before the lock was taken.
   */
  prune(now: number): Promise<number> {
    return this.transaction(async (client) => {
      const candidates = await client.query<{ seq: number }>(
        `WITH done AS (
           SELECT seq, max(delivered_at) AS at FROM vast_gchat.deliveries GROUP BY seq
           HAVING bool_and(state = 'delivered')),
         doomed AS (
           SELECT seq FROM done WHERE at < $1
           UNION
           SELECT seq FROM (SELECT seq FROM done ORDER BY seq DESC OFFSET $2) AS excess)
         SELECT seq FROM vast_gchat.events WHERE seq IN (SELECT seq FROM doomed) FOR UPDATE`,
        [now - this.retentionMs, this.maxDelivered],
      );
      if (candidates.rows.length === 0) return 0;
      const gone = await client.query(
        `DELETE FROM vast_gchat.events e WHERE e.seq = ANY($1::bigint[])
           AND NOT EXISTS (SELECT 1 FROM vast_gchat.deliveries d
                           WHERE d.seq = e.seq AND d.state <> 'delivered')`,
        [candidates.rows.map((row) => row.seq)],
      );
      return gone.rowCount ?? 0;
    });
  }

  /**
   * Stops work (the worker has finished or cancelled its post by now) and closes the pool. A
   * route this replica holds is let go early: its claim now ends a second after its last post
   * rather than 20 s after its last renewal, so a restart or a rolling upgrade delays the space by
   * about a second, and the next claimant still keeps Chat's pace. The note of a cancelled post
   * stays, for the next claimant to post again whole.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.knownRoutes.size > 0) {
        await this.pool
          .query(
            `UPDATE vast_gchat.routes SET claim_expires_at = LEAST(claim_expires_at,
               GREATEST(clock_timestamp(), last_post_at + interval '1 second'))
             WHERE claimed_by = $1`,
            [this.instance],
          )
          .catch(() => {});
      }
      await this.pool.end().catch(() => {});
    })();
    return this.closing;
  }
}

/** This replica no longer holds the route's claim: another one delivers it now. */
export class ClaimLostError extends StoreUnavailableError {
  override name = "ClaimLostError";
}
