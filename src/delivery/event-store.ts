/**
 * The event store as the rest of the adapter sees it: the dedupe memory (an event id is kept once)
 * and the outbox the delivery worker drains. The receiver, the worker, the metrics and the commands
 * know only this interface; which database stands behind it (SQLite now, in src/delivery/sqlite/;
 * `node:sqlite` or PostgreSQL later) is chosen in one place, open-store.ts.
 *
 * Every method is async, though SQLite answers at once: a database server's driver cannot, and the
 * seam should not have to change again when one stands in. What each method promises is the same
 * whatever the database:
 * - `accept` resolves only once the event is committed (the receiver acknowledges after it), and
 *   rejects with StoreUnavailableError, never waiting long, when it cannot commit (locked, disk full,
 *   unreachable): the receiver answers 503 and Vast.ai retries.
 * - Every other method also rejects with StoreUnavailableError when the store cannot do it.
 * - `recordOutcome` writes everything it is given in one transaction: all of it or none.
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

/**
 * What one post (or a message that could not be made) did to its events, written as one
 * transaction: were it refused, the worker writes it again whole, so nothing is recorded twice.
 */
export interface OutcomeRecord {
  /** Recorded as an attempt of every event named below. */
  post: PostRecord;
  delivered?: readonly number[];
  retry?: { seqs: readonly number[]; nextAttemptAt: number; error: string };
  dead?: { seqs: readonly number[]; error: string };
  /**
   * Forget the noted post in the same transaction. Not after a post that got no answer: Chat may
   * have made the message, so exactly those events go again.
   */
  clearPosting: boolean;
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

export interface EventStore {
  /** What stands behind it, for logs and `status`: e.g. "sqlite (node:sqlite)". */
  readonly kind: string;

  // --- the receiver ---

  /** Keeps an event unless its id is already known; resolves once committed. */
  accept(input: AcceptInput): Promise<{ duplicate: boolean }>;

  // --- the delivery worker ---

  /** The oldest undelivered event: delivery keeps the order of arrival. */
  nextPending(): Promise<StoredEvent | undefined>;
  /**
   * The oldest pending events that are due, in order of arrival: what the worker posts next
   * (several at once become one digest message).
   */
  dueBatch(now: number, limit: number): Promise<StoredEvent[]>;
  /**
   * Notes the events of the post about to be sent, until its outcome is recorded: after a crash in
   * between, the same events go again under the same requestId, which lets Chat drop the repeat.
   */
  notePosting(seqs: readonly number[]): Promise<void>;
  /**
   * The events of a post that was sent but whose outcome was never recorded, those still pending,
   * oldest first; undefined when no such post is noted.
   */
  unfinishedPosting(): Promise<StoredEvent[] | undefined>;
  clearPosting(): Promise<void>;
  /** Marks the events and records the attempt, in one transaction. */
  recordOutcome(record: OutcomeRecord): Promise<void>;

  // --- the commands and the metrics ---

  get(eventId: string): Promise<StoredEvent | undefined>;
  /** The newest event of a type received since `since` (ms), e.g. the test event `test` waits for. */
  latestOfType(notifType: string, since: number): Promise<StoredEvent | undefined>;
  /** Recent events, newest first, optionally of one state. */
  list(options?: { state?: EventState | undefined; limit?: number }): Promise<StoredEvent[]>;
  /** Every post that carried the event, oldest first. */
  attemptsOf(seq: number): Promise<Attempt[]>;
  /** Queues an event again, delivered or not: a new delivery. False when the id is unknown. */
  replay(eventId: string, now: number): Promise<boolean>;
  /** Queues every dead letter again; returns how many. */
  retryDead(now: number): Promise<number>;
  stats(): Promise<StoreStats>;
  /** What /health and /metrics report: cheap enough to poll (never counts delivered events). */
  queue(): Promise<QueueStats>;

  // --- housekeeping ---

  /**
   * Forgets delivered events past their retention, and the oldest beyond the count bound; returns
   * how many. Pending and dead events are never pruned: they still need the user.
   */
  prune(now: number): Promise<number>;
  /** Ends background work (SQLite's checkpointer) and closes the connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Where a store logs what the adapter should hear of (the adapter's log has this shape). */
export interface StoreLog {
  warn(fields: object, message: string): void;
}

export interface StoreOptions {
  /** How long delivered events (and so their ids, for dedupe) are kept. Default 7 days. */
  retentionMs?: number;
  /** The most delivered events kept, whatever their age. Default 100,000. */
  maxDelivered?: number;
  /**
   * "normal": a commit survives the process being killed; "full": also a power cut, at the cost
   * of a disk flush per commit.
   */
  durability?: "normal" | "full";
  /** How long a write waits for another writer's lock before giving up (→ 503). Default 100 ms. */
  busyTimeoutMs?: number;
  /**
   * A long-running adapter: keep housekeeping (SQLite's WAL checkpoints) off the request path.
   * A short command leaves it out.
   */
  background?: boolean;
  log?: StoreLog;
}

/** The store cannot do what was asked now (locked, disk full, unreadable, unreachable). */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/**
 * No SQLite driver loads on this Node (nor the one asked for): retrying will not help, the message
 * says what to install or which Node to run.
 */
export class NoStoreDriverError extends StoreUnavailableError {
  override name = "NoStoreDriverError";
}
