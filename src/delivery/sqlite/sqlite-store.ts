import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  type AcceptInput,
  type Attempt,
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
import { GroupCommit } from "../group-commit.js";
import { type EventRow, toDeliveryState, toStoredDelivery, toStoredEvent } from "../rows.js";
import { type Checkpointer, type CheckpointerOptions, startCheckpointer } from "./checkpointer.js";
import { adoptOlderWrites, migrate } from "./schema.js";
import {
  chooseSqliteDriver,
  type SqliteConnection,
  type SqliteDriverName,
  sqliteErrorCode,
} from "./sqlite-driver.js";
import { prepareStatements, type Statements } from "./statements.js";

/**
 * The event store in one SQLite file: a unique `event_id` is the dedupe memory, each route's
 * pending deliveries are its outbox. An event is committed here before Vast.ai gets its 2xx. It runs on node:sqlite
 * or better-sqlite3, whichever sqlite-driver.ts chooses, with the same SQL.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (the OS's page cache) before
 * `accept` resolves, so a killed process (kill -9, crash) loses nothing it acknowledged. Only a
 * power cut or kernel crash could lose the last commits; `durability: "full"` fsyncs every commit to
 * close that gap too, at the cost of a disk flush per event.
 *
 * Both drivers are synchronous: each method does its work at once and returns a settled promise,
 * except `accept`, which waits for the end of the event-loop turn to commit every event that
 * arrived in it in one transaction (group-commit.ts).
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
    // The adapter's own store: take over what an older serve may have written since the upgrade.
    if (options.background) {
      const connection = db;
      connection.transaction(() => adoptOlderWrites(connection));
    }
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
  /** Acknowledgements wait for this: one transaction for every event of one event-loop turn. */
  private readonly accepts: GroupCommit<AcceptInput, { duplicate: boolean }>;
  private closing: Promise<void> | undefined;

  /** `checkpointPath`: start the checkpointer thread on this file. */
  constructor(db: SqliteConnection, options: SqliteStoreOptions, checkpointPath?: string) {
    this.db = db;
    this.kind = `sqlite (${db.driver})`;
    this.statements = prepareStatements(db);
    this.retentionMs = options.retentionMs ?? 7 * DAY_MS;
    this.maxDelivered = options.maxDelivered ?? 100_000;
    this.accepts = new GroupCommit({
      commit: (inputs) => this.db.transaction(() => inputs.map((input) => this.insertEvent(input))),
      // A constraint refuses one event (a trigger, a corrupt row); a full disk or a lock, all.
      isolates: (error) => sqliteErrorCode(error)?.startsWith("SQLITE_CONSTRAINT") === true,
    });
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
    return this.accepts.submit(input).catch((error: unknown) => Promise.reject(unavailable(error)));
  }

  /** One event and its deliveries, inside the shared transaction of group-commit.ts. */
  private insertEvent(input: AcceptInput): { duplicate: boolean } {
    // Exactly the statement's parameters: node:sqlite refuses a name the SQL does not have.
    const inserted = this.statements.insert.get({
      eventId: input.eventId,
      notifType: input.notifType ?? null,
      payload: input.payload,
      receivedAt: input.receivedAt,
    });
    // Already here, committed earlier or earlier in this same transaction.
    if (!inserted) return { duplicate: true };
    for (const route of deliveryRoutes(input)) {
      this.statements.insertDelivery.run(inserted.seq, route, input.receivedAt, input.receivedAt);
    }
    return { duplicate: false };
  }

  nextPending(route: string): Promise<StoredDelivery | undefined> {
    return this.run(() => {
      const row = this.statements.nextPending.get(route);
      return row && toStoredDelivery(row);
    });
  }

  dueBatch(route: string, now: number, limit: number): Promise<StoredDelivery[]> {
    return this.run(() => this.statements.dueBatch.all(route, now, limit).map(toStoredDelivery));
  }

  notePosting(route: string, seqs: readonly number[]): Promise<void> {
    return this.run(() => {
      this.statements.notePosting.run(route, JSON.stringify(seqs));
    });
  }

  unfinishedPosting(route: string): Promise<StoredDelivery[] | undefined> {
    return this.run(() => {
      const row = this.statements.posting.get(route);
      if (!row) return undefined;
      return this.statements.pendingOf.all(route, row.seqs).map(toStoredDelivery);
    });
  }

  clearPosting(route: string): Promise<void> {
    return this.run(() => {
      this.statements.clearPosting.run(route);
    });
  }

  recordOutcome(route: string, record: OutcomeRecord): Promise<void> {
    return this.run(() => this.db.transaction(() => this.write(route, record)));
  }

  /** The writes of recordOutcome; run inside one transaction. */
  private write(route: string, record: OutcomeRecord): void {
    const { statements } = this;
    const { post } = record;
    const attempt = (seq: number, outcome: Attempt["outcome"], error: string | null) =>
      statements.recordAttempt.run({
        seq,
        route,
        at: post.at,
        outcome,
        status: post.status ?? null,
        error,
        carried: post.carried,
      });
    // A delivery that is no longer pending here (its route given up by `route remove` while the
    // post was under way) gets no attempt: there is nothing of it left to record against.
    const changed: number[] = [];
    for (const seq of record.delivered ?? []) {
      if (statements.markDelivered.run({ seq, route, at: post.at }).changes === 0) continue;
      attempt(seq, "delivered", null);
      changed.push(seq);
    }
    if (record.dead) {
      const { error } = record.dead;
      for (const seq of record.dead.seqs) {
        if (statements.markDead.run({ seq, route, error }).changes === 0) continue;
        attempt(seq, "dead", error);
        changed.push(seq);
      }
    }
    if (record.retry) {
      const { nextAttemptAt, error } = record.retry;
      for (const seq of record.retry.seqs) {
        if (statements.markRetry.run({ seq, route, nextAttemptAt, error }).changes === 0) continue;
        attempt(seq, "retry", error);
        changed.push(seq);
      }
    }
    this.summarise(changed);
    if (record.clearPosting) statements.clearPosting.run(route);
  }

  /** Writes each event's sum of its deliveries (schema.ts); inside the caller's transaction. */
  private summarise(seqs: Iterable<number>): void {
    for (const seq of new Set(seqs)) this.statements.summarise.run(seq);
  }

  private eventOf(row: EventRow | undefined): StoredEvent | undefined {
    return (
      row && toStoredEvent(row, this.statements.deliveriesOf.all(row.seq).map(toDeliveryState))
    );
  }

  get(eventId: string): Promise<StoredEvent | undefined> {
    return this.run(() => this.eventOf(this.statements.byEventId.get(eventId)));
  }

  latestOfType(notifType: string, since: number): Promise<StoredEvent | undefined> {
    return this.run(() => this.eventOf(this.statements.latestOfType.get(notifType, since)));
  }

  list(options: ListOptions = {}): Promise<StoredDelivery[]> {
    return this.run(() =>
      this.statements.list
        .all({
          state: options.state ?? null,
          route: options.route ?? null,
          limit: options.limit ?? 50,
        })
        .map(toStoredDelivery),
    );
  }

  attemptsOf(seq: number): Promise<Attempt[]> {
    // Plain objects: node:sqlite's rows have no prototype.
    return this.run(() => this.statements.attemptsOf.all(seq).map((row) => ({ ...row })));
  }

  replay(
    eventId: string,
    now: number,
    options: { route?: string | undefined } = {},
  ): Promise<boolean> {
    return this.run(() =>
      this.db.transaction(() => {
        const event = this.statements.byEventId.get(eventId);
        if (!event) return false;
        const { seq } = event;
        if (options.route === undefined) this.statements.requeue.run({ seq, now });
        else this.statements.requeueRoute.run({ seq, route: options.route, now });
        this.summarise([seq]);
        return true;
      }),
    );
  }

  retryDead(now: number, route?: string): Promise<number> {
    return this.run(() =>
      this.db.transaction(() => {
        const filter = { route: route ?? null };
        const seqs = this.statements.deadSeqs.all(filter).map((row) => row.seq);
        const { changes } = this.statements.requeueDead.run({ now, ...filter });
        this.summarise(seqs);
        return changes;
      }),
    );
  }

  forgetRoute(route: string): Promise<number> {
    return this.run(() =>
      this.db.transaction(() => {
        const { statements } = this;
        const seqs = statements.undeliveredOfRoute.all(route).map((row) => row.seq);
        const { changes } = statements.dropUndelivered.run(route);
        statements.clearPosting.run(route);
        for (const seq of seqs) {
          // An event that went nowhere else is forgotten: were Vast.ai to send it again, it would
          // be routed afresh.
          if (statements.dropIfBare.run({ seq }).changes === 0) statements.summarise.run(seq);
        }
        return changes;
      }),
    );
  }

  stats(): Promise<StoreStats> {
    return this.run(() => {
      // Pending and dead (with the oldest pending) from the queue's statement, which reads only
      // their small indexes; delivered ones counted apart.
      return sumStats([...this.statements.queue.all(), ...this.statements.deliveredCounts.all()]);
    });
  }

  queue(): Promise<QueueStats> {
    return this.run(() => sumQueue(this.statements.queue.all()));
  }

  prune(now: number): Promise<number> {
    return this.run(() => {
      // Only events delivered to every route (their state is the sum of their deliveries).
      const old = this.statements.pruneOld.run(now - this.retentionMs).changes;
      const excess = this.statements.pruneExcess.run(this.maxDelivered).changes;
      return old + excess;
    });
  }

  close(): Promise<void> {
    // What was accepted in this turn is committed before the connection goes.
    if (this.db.open) this.accepts.flush();
    const closeConnection = () => this.db.close();
    // The checkpointer's last checkpoint first, then the connection; without one, at once.
    this.closing ??= this.checkpointer
      ? this.checkpointer.stop().then(closeConnection)
      : Promise.resolve(closeConnection());
    return this.closing;
  }
}
