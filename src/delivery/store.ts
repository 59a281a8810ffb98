import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/**
 * The event store: one SQLite file that is both the dedupe memory (a unique `event_id`) and the
 * outbox the delivery worker drains. An event is committed here before Vast.ai gets its 2xx.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (the OS's page cache) before
 * `accept` returns, so a killed process (kill -9, crash) loses nothing it acknowledged. Only a power
 * cut or kernel crash could lose the last commits; `durability: "full"` fsyncs every commit to
 * close that gap too, at the cost of a disk flush per event.
 */
export type EventState = "pending" | "delivered" | "dead";

export interface StoredEvent {
  seq: number;
  eventId: string;
  notifType: string | null;
  payload: string;
  state: EventState;
  attempts: number;
  receivedAt: number;
  /** When it was last queued (receipt, replay or retry-dead). */
  queuedAt: number;
  nextAttemptAt: number;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface Attempt {
  at: number;
  outcome: "delivered" | "retry" | "dead";
  status: number | null;
  error: string | null;
  /** How many events the posted message carried (a digest carries several). */
  carried: number;
}

/** How one post ended, for every event the message carried. */
export interface PostRecord {
  at: number;
  status?: number | undefined;
  carried: number;
}

export interface AcceptInput {
  eventId: string;
  notifType: string | undefined;
  /** The verified body, as received. */
  payload: string;
  receivedAt: number;
}

export interface StoreStats {
  pending: number;
  delivered: number;
  dead: number;
  /** Receipt time of the oldest pending event (ms since epoch), if any. */
  oldestPendingAt: number | null;
}

export interface QueueStats {
  pending: number;
  dead: number;
  oldestPendingAt: number | null;
}

export interface StoreOptions {
  /** How long delivered events (and so their ids, for dedupe) are kept. Default 7 days. */
  retentionMs?: number;
  /** The most delivered events kept, whatever their age. Default 100,000. */
  maxDelivered?: number;
  durability?: "normal" | "full";
  /** How long a write waits for another process's lock before giving up (→ 503). */
  busyTimeoutMs?: number;
  /** Leave WAL checkpoints to a background checkpointer instead of the committing request. */
  backgroundCheckpoints?: boolean;
}

export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

const DAY_MS = 24 * 60 * 60 * 1000;
const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq             INTEGER PRIMARY KEY,
  event_id        TEXT    NOT NULL UNIQUE,
  notif_type      TEXT,
  payload         TEXT    NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  received_at     INTEGER NOT NULL,
  -- When it was last queued: at receipt, or by a replay or retry-dead. The maximum age counts
  -- from here, and it tells the posts of a replay apart from a repeat of the same post.
  queued_at       INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  delivered_at    INTEGER
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_delivered ON events (delivered_at) WHERE state = 'delivered';
CREATE INDEX IF NOT EXISTS events_dead ON events (seq) WHERE state = 'dead';
-- Every post that carried an event, for \`events show\`: when, how it ended, and Chat's answer.
CREATE TABLE IF NOT EXISTS attempts (
  id       INTEGER PRIMARY KEY,
  seq      INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  at       INTEGER NOT NULL,
  outcome  TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status   INTEGER,
  error    TEXT,
  -- How many events the posted message carried (more than one for a digest).
  carried  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS attempts_seq ON attempts (seq);
-- The post under way (version 3): its events are noted before it is sent and forgotten once its
-- outcome is recorded, so after a crash in between the same events go again, under the same
-- requestId, which lets Chat drop the repeat. One row at most.
CREATE TABLE IF NOT EXISTS posting (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seqs TEXT    NOT NULL
);
`;

interface EventRow {
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

function toStoredEvent(row: EventRow): StoredEvent {
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

/** better-sqlite3 errors carry SQLite's code (SQLITE_BUSY, SQLITE_FULL, SQLITE_READONLY...). */
function unavailable(error: unknown): StoreUnavailableError {
  const code = (error as { code?: string }).code ?? "unknown";
  return new StoreUnavailableError(`event store unavailable (${code})`, { cause: error });
}

export class EventStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly retentionMs: number;
  private readonly maxDelivered: number;
  private readonly statements;

  private constructor(path: string, db: Database.Database, options: StoreOptions) {
    this.path = path;
    this.db = db;
    this.retentionMs = options.retentionMs ?? 7 * DAY_MS;
    this.maxDelivered = options.maxDelivered ?? 100_000;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO events (event_id, notif_type, payload, received_at, queued_at, next_attempt_at)
         VALUES (@eventId, @notifType, @payload, @receivedAt, @receivedAt, @receivedAt)
         ON CONFLICT (event_id) DO NOTHING`,
      ),
      nextPending: db.prepare(`SELECT * FROM events WHERE state = 'pending' ORDER BY seq LIMIT 1`),
      markDelivered: db.prepare(
        `UPDATE events SET state = 'delivered', attempts = attempts + 1, delivered_at = @at, last_error = NULL
         WHERE seq = @seq AND state = 'pending'`,
      ),
      markRetry: db.prepare(
        `UPDATE events SET attempts = attempts + 1, next_attempt_at = @nextAttemptAt, last_error = @error
         WHERE seq = @seq AND state = 'pending'`,
      ),
      markDead: db.prepare(
        `UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = @error
         WHERE seq = @seq AND state = 'pending'`,
      ),
      recordAttempt: db.prepare(
        `INSERT INTO attempts (seq, at, outcome, status, error, carried)
         VALUES (@seq, @at, @outcome, @status, @error, @carried)`,
      ),
      dueBatch: db.prepare(
        `SELECT * FROM events WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY seq LIMIT ?`,
      ),
      list: db.prepare(
        `SELECT * FROM events WHERE (@state IS NULL OR state = @state) ORDER BY seq DESC LIMIT @limit`,
      ),
      attemptsOf: db.prepare(
        `SELECT at, outcome, status, error, carried FROM attempts WHERE seq = ? ORDER BY id`,
      ),
      requeue: db.prepare(
        `UPDATE events SET state = 'pending', next_attempt_at = @now, queued_at = @now, delivered_at = NULL
         WHERE event_id = @eventId`,
      ),
      requeueDead: db.prepare(
        `UPDATE events SET state = 'pending', next_attempt_at = @now, queued_at = @now WHERE state = 'dead'`,
      ),
      byEventId: db.prepare(`SELECT * FROM events WHERE event_id = ?`),
      notePosting: db.prepare(`INSERT OR REPLACE INTO posting (id, seqs) VALUES (1, ?)`),
      posting: db.prepare(`SELECT seqs FROM posting WHERE id = 1`),
      clearPosting: db.prepare(`DELETE FROM posting`),
      pendingOf: db.prepare(
        `SELECT * FROM events WHERE state = 'pending' AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq`,
      ),
      latestOfType: db.prepare(
        `SELECT * FROM events WHERE notif_type = ? AND received_at >= ? ORDER BY seq DESC LIMIT 1`,
      ),
      counts: db.prepare(
        `SELECT state, COUNT(*) AS n, MIN(received_at) AS oldest FROM events GROUP BY state`,
      ),
      queue: db.prepare(
        `SELECT
           (SELECT COUNT(*) FROM events WHERE state = 'pending') AS pending,
           (SELECT MIN(received_at) FROM events WHERE state = 'pending') AS oldest,
           (SELECT COUNT(*) FROM events WHERE state = 'dead') AS dead`,
      ),
      pruneOld: db.prepare(`DELETE FROM events WHERE state = 'delivered' AND delivered_at < ?`),
      pruneExcess: db.prepare(
        `DELETE FROM events WHERE seq IN (
           SELECT seq FROM events WHERE state = 'delivered' ORDER BY seq DESC LIMIT -1 OFFSET ?)`,
      ),
    };
  }

  /** Opens (creating if needed) the store file. Throws StoreUnavailableError when it cannot. */
  static open(path: string, options: StoreOptions = {}): EventStore {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // better-sqlite3 waits synchronously: keep it short, a 503 makes Vast.ai retry anyway.
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 100 });
      db.pragma("journal_mode = WAL");
      // Attempts go with their event when it is pruned (ON DELETE CASCADE).
      db.pragma("foreign_keys = ON");
      db.pragma(`synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
      // Checkpoints run in another thread (checkpointer.ts), never inside an acknowledged commit.
      if (options.backgroundCheckpoints) db.pragma("wal_autocheckpoint = 0");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new StoreUnavailableError(
          `the event store ${path} was written by a newer vast-gchat (schema ${version}); upgrade vast-gchat`,
        );
      }
      // Only a new or older file is written to: opening to read (`events list`) takes no lock.
      if (version < SCHEMA_VERSION) {
        db.exec(SCHEMA);
        // A version 1 file has the events table without queued_at: add it, from received_at.
        const columns = db.pragma("table_info(events)") as { name: string }[];
        if (!columns.some((column) => column.name === "queued_at")) {
          db.exec(`ALTER TABLE events ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
                   UPDATE events SET queued_at = received_at;`);
        }
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
      return new EventStore(path, db, options);
    } catch (error) {
      db?.close();
      if (error instanceof StoreUnavailableError) throw error;
      throw unavailable(error);
    }
  }

  /**
   * Keeps an event unless its id is already known. Returns whether it was a duplicate.
   * Throws StoreUnavailableError when the write could not be committed (disk full, locked, ...).
   */
  accept(input: AcceptInput): { duplicate: boolean } {
    try {
      const result = this.statements.insert.run({ ...input, notifType: input.notifType ?? null });
      return { duplicate: result.changes === 0 };
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The oldest undelivered event: delivery keeps the order of arrival. */
  nextPending(): StoredEvent | undefined {
    const row = this.statements.nextPending.get() as EventRow | undefined;
    return row && toStoredEvent(row);
  }

  /** The newest event of a type received since `since` (ms), e.g. the test event `test` waits for. */
  latestOfType(notifType: string, since: number): StoredEvent | undefined {
    const row = this.statements.latestOfType.get(notifType, since) as EventRow | undefined;
    return row && toStoredEvent(row);
  }

  get(eventId: string): StoredEvent | undefined {
    const row = this.statements.byEventId.get(eventId) as EventRow | undefined;
    return row && toStoredEvent(row);
  }

  /**
   * The oldest pending events that are due, in order of arrival: what the worker posts next
   * (several at once become one digest message).
   */
  dueBatch(now: number, limit: number): StoredEvent[] {
    return (this.statements.dueBatch.all(now, limit) as EventRow[]).map(toStoredEvent);
  }

  /** Marks the events a post carried as delivered, and records the attempt. One transaction. */
  markDelivered(seqs: readonly number[], post: PostRecord): void {
    this.recordOutcome(seqs, post, "delivered", null, (seq) =>
      this.statements.markDelivered.run({ seq, at: post.at }),
    );
  }

  markRetry(seqs: readonly number[], post: PostRecord, nextAttemptAt: number, error: string): void {
    this.recordOutcome(seqs, post, "retry", error, (seq) =>
      this.statements.markRetry.run({ seq, nextAttemptAt, error }),
    );
  }

  markDead(seqs: readonly number[], post: PostRecord, error: string): void {
    this.recordOutcome(seqs, post, "dead", error, (seq) =>
      this.statements.markDead.run({ seq, error }),
    );
  }

  /** Notes the events of the post about to be sent (see the posting table). */
  notePosting(seqs: readonly number[]): void {
    this.statements.notePosting.run(JSON.stringify(seqs));
  }

  /**
   * The events of a post that was sent but whose outcome was never recorded (the process died in
   * between), those still pending, oldest first; undefined when no such post is noted.
   */
  unfinishedPosting(): StoredEvent[] | undefined {
    const row = this.statements.posting.get() as { seqs: string } | undefined;
    if (!row) return undefined;
    return (this.statements.pendingOf.all(row.seqs) as EventRow[]).map(toStoredEvent);
  }

  clearPosting(): void {
    this.statements.clearPosting.run();
  }

  /** Runs `writes` as one transaction (nested ones become savepoints): all of them or none. */
  atomically(writes: () => void): void {
    this.db.transaction(writes)();
  }

  private recordOutcome(
    seqs: readonly number[],
    post: PostRecord,
    outcome: Attempt["outcome"],
    error: string | null,
    update: (seq: number) => void,
  ): void {
    this.db.transaction(() => {
      for (const seq of seqs) {
        update(seq);
        this.statements.recordAttempt.run({
          seq,
          at: post.at,
          outcome,
          status: post.status ?? null,
          error,
          carried: post.carried,
        });
      }
    })();
  }

  /** Recent events, newest first, optionally of one state. */
  list(options: { state?: EventState | undefined; limit?: number } = {}): StoredEvent[] {
    const rows = this.statements.list.all({
      state: options.state ?? null,
      limit: options.limit ?? 50,
    });
    return (rows as EventRow[]).map(toStoredEvent);
  }

  /** Every post that carried the event, oldest first. */
  attemptsOf(seq: number): Attempt[] {
    return this.statements.attemptsOf.all(seq) as Attempt[];
  }

  /** Queues an event again, delivered or not: a new delivery. False when the id is unknown. */
  replay(eventId: string, now: number): boolean {
    return this.statements.requeue.run({ eventId, now }).changes > 0;
  }

  /** Queues every dead letter again; returns how many. */
  retryDead(now: number): number {
    return this.statements.requeueDead.run({ now }).changes;
  }

  stats(): StoreStats {
    const stats: StoreStats = { pending: 0, delivered: 0, dead: 0, oldestPendingAt: null };
    const rows = this.statements.counts.all() as { state: EventState; n: number; oldest: number }[];
    for (const row of rows) {
      stats[row.state] = row.n;
      if (row.state === "pending") stats.oldestPendingAt = row.oldest;
    }
    return stats;
  }

  /**
   * What /health reports, cheap enough to poll: it reads only the small partial indexes of
   * pending and dead events, never the (up to 100,000) delivered ones.
   */
  queue(): QueueStats {
    const row = this.statements.queue.get() as {
      pending: number;
      oldest: number | null;
      dead: number;
    };
    return { pending: row.pending, dead: row.dead, oldestPendingAt: row.oldest };
  }

  /**
   * Forgets delivered events past their retention, and the oldest beyond the count bound.
   * Pending and dead events are never pruned: they still need the user.
   */
  prune(now: number): number {
    const old = this.statements.pruneOld.run(now - this.retentionMs).changes;
    const excess = this.statements.pruneExcess.run(this.maxDelivered).changes;
    return old + excess;
  }

  /** Back to SQLite's own checkpoints, for when the background checkpointer is gone. */
  checkpointInline(): void {
    this.db.pragma("wal_autocheckpoint = 1000");
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
