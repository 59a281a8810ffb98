import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  type AcceptInput,
  type Attempt,
  type EventState,
  type EventStore,
  type OutcomeRecord,
  type QueueStats,
  type StoredEvent,
  type StoreOptions,
  type StoreStats,
  StoreUnavailableError,
} from "../event-store.js";
import { type Checkpointer, type CheckpointerOptions, startCheckpointer } from "./checkpointer.js";
import { migrate } from "./schema.js";
import {
  chooseSqliteDriver,
  type SqliteConnection,
  type SqliteDriverName,
  sqliteErrorCode,
} from "./sqlite-driver.js";
import { prepareStatements, type Statements, toStoredEvent } from "./statements.js";

/**
 * The event store in one SQLite file: a unique `event_id` is the dedupe memory, the pending rows
 * are the outbox. An event is committed here before Vast.ai gets its 2xx. It runs on node:sqlite
 * or better-sqlite3, whichever sqlite-driver.ts chooses, with the same SQL.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (the OS's page cache) before
 * `accept` resolves, so a killed process (kill -9, crash) loses nothing it acknowledged. Only a
 * power cut or kernel crash could lose the last commits; `durability: "full"` fsyncs every commit to
 * close that gap too, at the cost of a disk flush per event.
 *
 * Both drivers are synchronous: each method does its work at once and returns a settled promise.
 * A write waits for another process's lock at most `busyTimeoutMs` (100 ms), blocking the event
 * loop meanwhile, so keep it short: a 503 makes Vast.ai retry anyway.
 */
export interface SqliteStoreOptions extends StoreOptions {
  /**
   * Who checkpoints the WAL: SQLite itself, inside whichever commit crosses its threshold
   * ("inline", the default); a second connection in a worker thread ("thread", the default with
   * `background`; see checkpointer.ts); or nobody here ("external": whoever runs startCheckpointer).
   */
  checkpoints?: "inline" | "thread" | "external";
  /** The checkpointer thread's timing and reports (tests). */
  checkpointer?: Omit<CheckpointerOptions, "onFailure" | "driver">;
  /** This driver rather than the automatic choice (and VAST_GCHAT_SQLITE_DRIVER): tests. */
  driver?: SqliteDriverName;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** SQLite's own default: checkpoint once the WAL holds this many pages. */
const AUTOCHECKPOINT_PAGES = 1000;

/** Named by SQLite's code (SQLITE_BUSY, SQLITE_FULL, SQLITE_READONLY...), whichever the driver. */
function unavailable(error: unknown): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  const code = sqliteErrorCode(error) ?? "unknown";
  return new StoreUnavailableError(`event store unavailable (${code})`, { cause: error });
}

/** Opens (creating if needed) the store file; rejects with StoreUnavailableError when it cannot. */
export async function openSqliteStore(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<EventStore> {
  const checkpoints = options.checkpoints ?? (options.background ? "thread" : "inline");
  const driver = await chooseSqliteDriver(options.driver);
  let db: SqliteConnection | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = driver.open(path, { timeoutMs: options.busyTimeoutMs ?? 100 });
    db.exec("PRAGMA journal_mode = WAL");
    // Attempts go with their event when it is pruned (ON DELETE CASCADE).
    db.exec("PRAGMA foreign_keys = ON");
    db.exec(`PRAGMA synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
    // Checkpoints run in another thread (checkpointer.ts), never inside an acknowledged commit.
    if (checkpoints !== "inline") db.exec("PRAGMA wal_autocheckpoint = 0");
    migrate(db, path);
    return new SqliteEventStore(db, options, checkpoints === "thread" ? path : undefined);
  } catch (error) {
    db?.close();
    throw unavailable(error);
  }
}

class SqliteEventStore implements EventStore {
  readonly kind: string;
  private readonly db: SqliteConnection;
  private readonly statements: Statements;
  private readonly retentionMs: number;
  private readonly maxDelivered: number;
  private readonly checkpointer: Checkpointer | undefined;
  private closing: Promise<void> | undefined;

  /** `checkpointPath`: start the checkpointer thread on this file. */
  constructor(db: SqliteConnection, options: SqliteStoreOptions, checkpointPath?: string) {
    this.db = db;
    this.kind = `sqlite (${db.driver})`;
    this.statements = prepareStatements(db);
    this.retentionMs = options.retentionMs ?? 7 * DAY_MS;
    this.maxDelivered = options.maxDelivered ?? 100_000;
    if (checkpointPath !== undefined) {
      this.checkpointer = startCheckpointer(checkpointPath, {
        ...options.checkpointer,
        driver: db.driver,
        onFailure: (error) => {
          // Back to SQLite's own checkpoints: slower acknowledgements now and then, but a WAL
          // that no longer grows without bound.
          options.log?.warn(
            { reason: error.message },
            "checkpointer stopped; SQLite checkpoints inline again",
          );
          if (this.db.open) this.db.exec(`PRAGMA wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
        },
      });
    }
  }

  /** Runs one piece of synchronous driver work; whatever the driver throws becomes unavailable. */
  private async run<T>(work: () => T): Promise<T> {
    try {
      return work();
    } catch (error) {
      throw unavailable(error);
    }
  }

  accept(input: AcceptInput): Promise<{ duplicate: boolean }> {
    return this.run(() => {
      // Exactly the statement's parameters: node:sqlite refuses a name the SQL does not have.
      const result = this.statements.insert.run({
        eventId: input.eventId,
        notifType: input.notifType ?? null,
        payload: input.payload,
        receivedAt: input.receivedAt,
      });
      return { duplicate: result.changes === 0 };
    });
  }

  nextPending(): Promise<StoredEvent | undefined> {
    return this.run(() => {
      const row = this.statements.nextPending.get();
      return row && toStoredEvent(row);
    });
  }

  dueBatch(now: number, limit: number): Promise<StoredEvent[]> {
    return this.run(() => this.statements.dueBatch.all(now, limit).map(toStoredEvent));
  }

  notePosting(seqs: readonly number[]): Promise<void> {
    return this.run(() => {
      this.statements.notePosting.run(JSON.stringify(seqs));
    });
  }

  unfinishedPosting(): Promise<StoredEvent[] | undefined> {
    return this.run(() => {
      const row = this.statements.posting.get();
      if (!row) return undefined;
      return this.statements.pendingOf.all(row.seqs).map(toStoredEvent);
    });
  }

  clearPosting(): Promise<void> {
    return this.run(() => {
      this.statements.clearPosting.run();
    });
  }

  recordOutcome(record: OutcomeRecord): Promise<void> {
    return this.run(() => this.db.transaction(() => this.write(record)));
  }

  /** The writes of recordOutcome; run inside one transaction. */
  private write(record: OutcomeRecord): void {
    const { statements } = this;
    const { post } = record;
    const attempt = (seq: number, outcome: Attempt["outcome"], error: string | null) =>
      statements.recordAttempt.run({
        seq,
        at: post.at,
        outcome,
        status: post.status ?? null,
        error,
        carried: post.carried,
      });
    for (const seq of record.delivered ?? []) {
      statements.markDelivered.run({ seq, at: post.at });
      attempt(seq, "delivered", null);
    }
    if (record.dead) {
      const { error } = record.dead;
      for (const seq of record.dead.seqs) {
        statements.markDead.run({ seq, error });
        attempt(seq, "dead", error);
      }
    }
    if (record.retry) {
      const { nextAttemptAt, error } = record.retry;
      for (const seq of record.retry.seqs) {
        statements.markRetry.run({ seq, nextAttemptAt, error });
        attempt(seq, "retry", error);
      }
    }
    if (record.clearPosting) statements.clearPosting.run();
  }

  get(eventId: string): Promise<StoredEvent | undefined> {
    return this.run(() => {
      const row = this.statements.byEventId.get(eventId);
      return row && toStoredEvent(row);
    });
  }

  latestOfType(notifType: string, since: number): Promise<StoredEvent | undefined> {
    return this.run(() => {
      const row = this.statements.latestOfType.get(notifType, since);
      return row && toStoredEvent(row);
    });
  }

  list(options: { state?: EventState | undefined; limit?: number } = {}): Promise<StoredEvent[]> {
    return this.run(() =>
      this.statements.list
        .all({ state: options.state ?? null, limit: options.limit ?? 50 })
        .map(toStoredEvent),
    );
  }

  attemptsOf(seq: number): Promise<Attempt[]> {
    // Plain objects: node:sqlite's rows have no prototype.
    return this.run(() => this.statements.attemptsOf.all(seq).map((row) => ({ ...row })));
  }

  replay(eventId: string, now: number): Promise<boolean> {
    return this.run(() => this.statements.requeue.run({ eventId, now }).changes > 0);
  }

  retryDead(now: number): Promise<number> {
    return this.run(() => this.statements.requeueDead.run({ now }).changes);
  }

  stats(): Promise<StoreStats> {
    return this.run(() => {
      const stats: StoreStats = { pending: 0, delivered: 0, dead: 0, oldestPendingAt: null };
      for (const row of this.statements.counts.all()) {
        stats[row.state] = row.n;
        if (row.state === "pending") stats.oldestPendingAt = row.oldest;
      }
      return stats;
    });
  }

  queue(): Promise<QueueStats> {
    return this.run(() => {
      const row = this.statements.queue.get();
      if (!row) throw new Error("the queue query returned no row");
      return { pending: row.pending, dead: row.dead, oldestPendingAt: row.oldest };
    });
  }

  prune(now: number): Promise<number> {
    return this.run(() => {
      const old = this.statements.pruneOld.run(now - this.retentionMs).changes;
      const excess = this.statements.pruneExcess.run(this.maxDelivered).changes;
      return old + excess;
    });
  }

  close(): Promise<void> {
    const closeConnection = () => this.db.close();
    // The checkpointer's last checkpoint first, then the connection; without one, at once.
    this.closing ??= this.checkpointer
      ? this.checkpointer.stop().then(closeConnection)
      : Promise.resolve(closeConnection());
    return this.closing;
  }
}
