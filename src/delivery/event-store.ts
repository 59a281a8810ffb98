import { DEFAULT_ROUTE } from "../route-syntax.js";
/**
 * The event store as the rest of the adapter sees it: the dedupe memory (an event id is kept once)
 * and one outbox per route, which that route's delivery worker drains. The receiver, the workers,
 * the metrics and the commands know only this interface; which database stands behind it (SQLite
 * now, on node:sqlite or better-sqlite3, in src/delivery/sqlite/; PostgreSQL later) is chosen in
 * one place, open-store.ts.
 *
 * Every method is async, though SQLite answers at once: a database server's driver cannot, and the
 * seam should not have to change again when one stands in. What each method promises is the same
 * whatever the database:
 * - `accept` resolves only once the event and its deliveries are committed, together (the receiver
 *   acknowledges after it), and rejects with StoreUnavailableError, never waiting long, when it
 *   cannot commit (locked, disk full, unreachable): the receiver answers 503 and Vast.ai retries.
 * - Every other method also rejects with StoreUnavailableError when the store cannot do it.
 * - `recordOutcome` writes everything it is given in one transaction: all of it or none.
 */
export type EventState = "pending" | "delivered" | "dead";

/**
 * Routes (README, "Several spaces: routes"): an event goes to one or more routes, each its own Chat
 * space, and the store keeps one delivery per (event, route). Each delivery has its own state,
 * attempts, retries and dead letter, and each route's worker sees only its own deliveries, so a
 * space that refuses or throttles holds up nothing for the others. An event is kept once
 * (dedupe by its id), whatever the number of its routes.
 */

/** An event as received: what it is, not where it goes. */
export interface EventRecord {
  seq: number;
  eventId: string;
  notifType: string | null;
  payload: string;
  receivedAt: number;
}

/** How one route's delivery of an event stands. */
export interface DeliveryState {
  route: string;
  state: EventState;
  /** Posts of this event to this route's space. */
  attempts: number;
  /** When it was last queued for this route (receipt, replay or retry-dead). */
  queuedAt: number;
  nextAttemptAt: number;
  lastError: string | null;
  deliveredAt: number | null;
}

/**
 * An event with one route's delivery of it: what that route's worker posts, and one row of
 * `events list`.
 */
export interface StoredDelivery extends EventRecord, DeliveryState {}

/**
 * An event with every delivery of it (in route order), and their sum, which for an event of one
 * route is exactly its delivery: `pending` while any delivery is, else `dead` while any is, else
 * `delivered` (`deliveredAt` the last one's); attempts added up; `queuedAt` the latest;
 * `nextAttemptAt` the soonest of the pending; `lastError` that of the first undelivered.
 */
export interface StoredEvent extends EventRecord, Omit<DeliveryState, "route"> {
  deliveries: DeliveryState[];
}

export interface Attempt {
  /** The route whose space the post went to. */
  route: string;
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
 * What one post (or a message that could not be made) did to its events' deliveries to one route,
 * written as one transaction: were it refused, the worker writes it again whole, so nothing is
 * recorded twice.
 */
export interface OutcomeRecord {
  /** Recorded as an attempt of every event named below. */
  post: PostRecord;
  delivered?: readonly number[];
  retry?: { seqs: readonly number[]; nextAttemptAt: number; error: string };
  dead?: { seqs: readonly number[]; error: string };
  /**
   * Forget the route's noted post in the same transaction. Not after a post that got no answer:
   * Chat may have made the message, so exactly those events go again.
   */
  clearPosting: boolean;
}

export interface AcceptInput {
  eventId: string;
  notifType: string | undefined;
  /** The verified body, as received. */
  payload: string;
  receivedAt: number;
  /**
   * The routes it goes to (vast/routing.ts, routesFor): one delivery each, in the same
   * transaction as the event. Empty means `default`.
   */
  routes: readonly string[];
}

/** The routes an accepted event gets a delivery for: each once, `default` when none is named. */
export function deliveryRoutes(input: AcceptInput): string[] {
  return [...new Set(input.routes.length > 0 ? input.routes : [DEFAULT_ROUTE])];
}

/** Deliveries in each state, and when the oldest pending one's event was received. */
export interface DeliveryCounts {
  pending: number;
  delivered: number;
  dead: number;
  /** Receipt time of the oldest pending delivery's event (ms since epoch), if any. */
  oldestPendingAt: number | null;
}

/** Every delivery counted, and each route's (routes with no delivery are absent). */
export interface StoreStats extends DeliveryCounts {
  routes: Record<string, DeliveryCounts>;
}

export interface QueueCounts {
  pending: number;
  dead: number;
  oldestPendingAt: number | null;
}

export interface QueueStats extends QueueCounts {
  /** Each route with a pending or dead delivery. */
  routes: Record<string, QueueCounts>;
}

/** A route's deliveries in one state, counted by a store's query; `oldest` for pending ones. */
export interface CountRow<State extends EventState = EventState> {
  route: string;
  state: State;
  n: number;
  /** Receipt time of the oldest pending delivery's event; null for other states. */
  oldest: number | null;
}

type Counts = Partial<Record<EventState, number>> & { oldestPendingAt: number | null };

function add(into: Counts, row: CountRow): void {
  into[row.state] = (into[row.state] ?? 0) + row.n;
  if (row.state === "pending" && row.oldest !== null) {
    into.oldestPendingAt = Math.min(into.oldestPendingAt ?? row.oldest, row.oldest);
  }
}

/** The totals and each route's, summed from count rows; `empty` gives the counts to start from. */
function sumRows<C extends Counts>(rows: readonly CountRow[], empty: () => C) {
  const totals = { ...empty(), routes: {} as Record<string, C> };
  for (const row of rows) {
    add(totals, row);
    totals.routes[row.route] ??= empty();
    add(totals.routes[row.route] as C, row);
  }
  return totals;
}

/** A store's count rows as StoreStats: the same sums for every store. */
export function sumStats(rows: readonly CountRow[]): StoreStats {
  return sumRows(rows, () => ({ pending: 0, delivered: 0, dead: 0, oldestPendingAt: null }));
}

/** The same for the queue (pending and dead only). */
export function sumQueue(rows: readonly CountRow<"pending" | "dead">[]): QueueStats {
  return sumRows(rows, () => ({ pending: 0, dead: 0, oldestPendingAt: null }));
}

export interface ListOptions {
  /** Only deliveries in this state. */
  state?: EventState | undefined;
  /** Only this route's deliveries. */
  route?: string | undefined;
  limit?: number;
}

export interface EventStore {
  /** What stands behind it, for logs and `status`: e.g. "sqlite (node:sqlite)". */
  readonly kind: string;

  // --- the receiver ---

  /**
   * Keeps an event and its deliveries, one per route, unless its id is already known; resolves
   * once committed.
   */
  accept(input: AcceptInput): Promise<{ duplicate: boolean }>;

  // --- a route's delivery worker: each method sees only that route's deliveries ---

  /** The route's oldest undelivered event: delivery keeps the order of arrival. */
  nextPending(route: string): Promise<StoredDelivery | undefined>;
  /**
   * The route's oldest pending deliveries that are due, in order of arrival: what its worker posts
   * next (several at once become one digest message).
   */
  dueBatch(route: string, now: number, limit: number): Promise<StoredDelivery[]>;
  /**
   * Notes the events of the route's post about to be sent, until its outcome is recorded: after a
   * crash in between, the same events go again under the same requestId, which lets Chat drop
   * the repeat. One note per route.
   */
  notePosting(route: string, seqs: readonly number[]): Promise<void>;
  /**
   * The events of the route's post that was sent but whose outcome was never recorded, those still
   * pending for it, oldest first; undefined when no such post is noted.
   */
  unfinishedPosting(route: string): Promise<StoredDelivery[] | undefined>;
  clearPosting(route: string): Promise<void>;
  /** Marks the route's deliveries and records the attempt, in one transaction. */
  recordOutcome(route: string, record: OutcomeRecord): Promise<void>;

  // --- the commands and the metrics ---

  get(eventId: string): Promise<StoredEvent | undefined>;
  /** The newest event of a type received since `since` (ms), e.g. the test event `test` waits for. */
  latestOfType(notifType: string, since: number): Promise<StoredEvent | undefined>;
  /** Recent deliveries, newest event first (its routes in order), optionally of one state or route. */
  list(options?: ListOptions): Promise<StoredDelivery[]>;
  /** Every post that carried the event, to any route, oldest first. */
  attemptsOf(seq: number): Promise<Attempt[]>;
  /**
   * Queues an event again, delivered or not: a new delivery to every route it went to, or to
   * `route` only (which it need not have gone to before). False when the id is unknown.
   */
  replay(eventId: string, now: number, options?: { route?: string | undefined }): Promise<boolean>;
  /** Queues every dead delivery again, or the route's; returns how many. */
  retryDead(now: number, route?: string): Promise<number>;
  /**
   * Gives up a route that is no more (`route remove`): its deliveries not yet made are dropped, and
   * an event left with no delivery at all is forgotten. Returns how many deliveries were dropped.
   */
  forgetRoute(route: string): Promise<number>;
  stats(): Promise<StoreStats>;
  /** What /health and /metrics report: cheap enough to poll (never counts delivered events). */
  queue(): Promise<QueueStats>;

  // --- housekeeping ---

  /**
   * Forgets events delivered to every route past their retention, and the oldest such beyond the
   * count bound; returns how many. An event with a pending or dead delivery is never pruned: it
   * still needs the user.
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
  /**
   * For a store shared by replicas: the routes that post to one Chat space, each mapped to a name
   * for that space. Replicas then claim such routes together, with their space, so that one
   * replica at a time posts to it and keeps its pace (delivery/pace.ts). A store that only one
   * process delivers from (SQLite) has no use for it.
   */
  sharedSpaces?: ReadonlyMap<string, string>;
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
