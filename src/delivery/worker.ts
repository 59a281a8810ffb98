import { createHash } from "node:crypto";
import type { PostOutcome } from "../chat/post-message.js";
import type { ChatMessage } from "../chat/render.js";
import { DEFAULT_ROUTE } from "../route-syntax.js";
import type { EventStore, PostRecord, StoredDelivery } from "./event-store.js";
import { Pace } from "./pace.js";

/**
 * The delivery worker of one route: drains that route's outbox in the store to its Chat space,
 * oldest first, at most `rate` messages a second (Chat allows about one per space and answers 429
 * beyond). When several events wait, they go out together as one digest message, so a burst takes
 * a handful of posts. An event is marked delivered only after Chat's 2xx. A passing failure holds
 * the route's queue (Chat failures are space-wide) and is retried with growing, jittered backoff up
 * to a maximum age; a permanent refusal sends the event to the route's dead letters. Nothing
 * retries forever; nothing is dropped silently. Each route has a worker of its own (the adapter
 * starts one per route), so one space refusing or throttling holds up nothing for the others.
 */
export interface DeliveryObserver {
  delivered(event: StoredDelivery, latencyMs: number): void;
  retrying(event: StoredDelivery, reason: string, delayMs: number): void;
  dead(event: StoredDelivery, reason: string): void;
  /** The store failed under the worker (locked, disk full); it tries again shortly. */
  storeError(error: unknown): void;
}

export interface PostRequest {
  message: ChatMessage;
  /** Lets Chat drop a repeat of this very post (after a crash between its 2xx and our record). */
  requestId: string;
}

export interface WorkerOptions {
  store: EventStore;
  /** The route whose deliveries this worker makes. Default `default`. */
  route?: string;
  render: (event: StoredDelivery) => ChatMessage;
  /** Several events as one message; returns the message and how many of them it carries. */
  renderDigest?: (events: StoredDelivery[]) => { message: ChatMessage; carried: number };
  post: (request: PostRequest, signal: AbortSignal) => Promise<PostOutcome>;
  observer?: Partial<DeliveryObserver>;
  now?: () => number;
  /** Messages per second to the space. Default 1. */
  rate?: number;
  /**
   * The pace of the route's space, shared with the other routes that post there (pace.ts).
   * Default: one of its own, at `rate`.
   */
  pace?: Pace;
  /** From this many due events on, they go as one digest. Default 3. */
  digestFrom?: number;
  /** The most events one digest may carry (its size cuts it further). Default 50. */
  digestMax?: number;
  /** An event still failing after this long goes to the dead letters. Default 72 h. */
  maxAgeMs?: number;
  /** Backoff after the first failure; doubles each attempt, jittered. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** What /health tells about Chat: failing since when, and why, while it fails. */
export interface DeliveryHealth {
  failingSince: number | null;
  lastError: string | null;
}

const STORE_RETRY_MS = 1000;
/** Another process (`events replay`) may queue work: look at the store at least this often. */
const IDLE_POLL_MS = 2000;
const MAX_SLEEP_MS = 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  // Full jitter on the upper half keeps restarts of many adapters from retrying in step.
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

/**
 * The same for every post of the same events in the same queuing to the same route (a retry after a
 * timeout or 5xx that Chat did act on, or after a crash between its 2xx and our record), different
 * after a replay or retry-dead, which must create a message again, and different between routes:
 * two routes may post to one space, and each must make its message. The route `default` derives
 * it as versions before routes did, so a post noted by one of them before an upgrade goes again
 * under the requestId it was first sent with.
 */
export function requestIdFor(
  events: readonly StoredDelivery[],
  route: string = DEFAULT_ROUTE,
): string {
  const ids = events.map((event) => `${event.eventId}@${event.queuedAt}`).join(",");
  const source = route === DEFAULT_ROUTE ? ids : `${route}\n${ids}`;
  return `vast-${createHash("sha256").update(source).digest("hex").slice(0, 40)}`;
}

export class DeliveryWorker {
  private readonly options: WorkerOptions;
  readonly route: string;
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Set by notify(); a loop turn that finds it set does not go idle (see run). */
  private notified = false;
  /** The post under way, so that shutdown can cancel it once its grace period is over. */
  private currentPost: AbortController | undefined;
  private readonly pace: Pace;
  /**
   * Whether the post about to go is the repeat of one whose fate is unknown (a crash before its
   * outcome was recorded, or no answer): Chat may have made it, so only a 2xx or a refusal for good
   * settles it.
   */
  private repeating = false;
  /** Events whose digest Chat refused for good: each goes alone, to find the one at fault. */
  private readonly alone = new Set<number>();
  readonly health: DeliveryHealth = { failingSince: null, lastError: null };

  constructor(options: WorkerOptions) {
    this.options = options;
    this.route = options.route ?? DEFAULT_ROUTE;
    this.now = options.now ?? Date.now;
    this.pace = options.pace ?? new Pace(1000 / (options.rate ?? 1));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Tells the worker that an event was kept, so it need not wait for its timer. */
  notify(): void {
    this.notified = true;
    this.wake?.();
  }

  /**
   * Stops taking new work. A post under way may finish for up to `graceMs`; after that it is
   * cancelled and its events stay pending, to be delivered on the next start.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.notify();
    const timer = setTimeout(() => this.currentPost?.abort(), graceMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      // The store answers asynchronously: an event kept while this turn reads it must not wait
      // for the idle poll, so a notify() since the turn began skips going idle.
      this.notified = false;
      try {
        // Paced: nothing can be posted before the space's interval is over, so new events need
        // not wake the worker; reading the queue on every event kept would cost a batch read per
        // request. The turn is this worker's until Chat answers or there is nothing to post.
        const wait = this.pace.take(this, this.now());
        if (wait > 0) {
          await this.sleep(wait, { wakeOnNotify: false });
          continue;
        }
        try {
          // The oldest event waiting to be retried holds the rest back: order of arrival is kept.
          const head = await this.options.store.nextPending(this.route);
          const due = head && head.nextAttemptAt <= this.now() ? await this.nextDue(head) : [];
          if (due.length) {
            await this.deliver(due);
          } else {
            this.pace.release(this);
            if (!this.notified) await this.sleep(this.untilDue(head));
          }
        } finally {
          // Nothing posted (a store error, an event that cannot be rendered): the turn goes back.
          this.pace.release(this);
        }
      } catch (error) {
        // A store that refuses a read, or an event that cannot be rendered: never let the loop die
        // (nothing would deliver any more); report it and try again shortly.
        this.options.observer?.storeError?.(error);
        await this.sleep(STORE_RETRY_MS);
      }
    }
  }

  /** The events to post now, oldest first, from a head of the queue that is due. */
  private async nextDue(first: StoredDelivery): Promise<StoredDelivery[]> {
    this.repeating = false;
    const unfinished = await this.unfinishedPost(first);
    this.repeating = unfinished !== undefined;
    if (unfinished) return unfinished;
    const max = this.options.renderDigest ? (this.options.digestMax ?? 50) : 1;
    const due = await this.options.store.dueBatch(this.route, this.now(), max);
    const head = due[0];
    if (!head) return [];
    // A head that must go alone, or too few waiting for a digest: one event.
    if (this.alone.has(head.seq) || due.length < (this.options.digestFrom ?? 3)) return [head];
    return due.filter((event) => !this.alone.has(event.seq));
  }

  /**
   * A post whose outcome was never recorded (a crash between sending it and the record, or a
   * shutdown that cancelled it) goes again with exactly the same events, so its requestId is the
   * same and Chat can drop it if the first one got through. Only while it still starts at the head
   * of the queue: otherwise order comes first, and it is forgotten.
   */
  private async unfinishedPost(head: StoredDelivery): Promise<StoredDelivery[] | undefined> {
    const { store } = this.options;
    const events = await store.unfinishedPosting(this.route);
    if (events === undefined) return undefined;
    if (events[0]?.seq === head.seq) return events;
    await store.clearPosting(this.route);
    return undefined;
  }

  /** How long to sleep with nothing to post: until the head is due, polling for other writers. */
  private untilDue(head: StoredDelivery | undefined): number {
    if (!head) return IDLE_POLL_MS;
    return Math.max(1, Math.min(IDLE_POLL_MS, head.nextAttemptAt - this.now()));
  }

  private async deliver(due: StoredDelivery[]): Promise<void> {
    let rendered: { carried: StoredDelivery[]; message: ChatMessage };
    try {
      rendered = this.renderDue(due);
    } catch (error) {
      await this.cannotRender(due, error);
      return;
    }
    const { carried, message } = rendered;
    await this.options.store.notePosting(
      this.route,
      carried.map((event) => event.seq),
    );
    const controller = new AbortController();
    this.currentPost = controller;
    let outcome: PostOutcome;
    try {
      outcome = await this.options.post(
        { message, requestId: requestIdFor(carried, this.route) },
        controller.signal,
      );
    } catch (error) {
      outcome = { kind: "retry", reason: `could not post: ${(error as Error).message}` };
    } finally {
      this.currentPost = undefined;
      // Paced from Chat's answer, not from our request: the answer is when Chat counted the
      // message, so the next one cannot arrive early however slow the network was.
      this.pace.posted(this, this.now());
    }
    // A post cancelled by shutdown is not a failed attempt: the events simply stay pending.
    if (controller.signal.aborted && outcome.kind !== "delivered") return;
    await this.record(carried, outcome);
  }

  private renderDue(due: StoredDelivery[]): { carried: StoredDelivery[]; message: ChatMessage } {
    if (due.length > 1 && this.options.renderDigest) {
      const digest = this.options.renderDigest(due);
      return { carried: due.slice(0, digest.carried), message: digest.message };
    }
    const head = due[0] as StoredDelivery;
    return { carried: [head], message: this.options.render(head) };
  }

  /**
   * An event that cannot be rendered now never will be: it goes to the dead letters (with the
   * reason, for `events show`) rather than hold every event behind it. A digest that cannot be
   * rendered is split, so only the event at fault is given up on.
   */
  private async cannotRender(due: StoredDelivery[], error: unknown): Promise<void> {
    const { store } = this.options;
    if (due.length > 1) {
      await store.clearPosting(this.route);
      for (const event of due) this.alone.add(event.seq);
      return;
    }
    const event = due[0] as StoredDelivery;
    const reason = `could not render the message: ${(error as Error).message}`;
    await store.recordOutcome(this.route, {
      post: { at: this.now(), carried: 1 },
      dead: { seqs: [event.seq], error: reason },
      clearPosting: true,
    });
    this.alone.delete(event.seq);
    this.options.observer?.dead?.(event, reason);
  }

  /**
   * Writes the outcome down, retrying the write (never the post) while the store refuses it:
   * posting again because a write failed would put the message in Chat twice.
   */
  private async record(events: StoredDelivery[], outcome: PostOutcome): Promise<void> {
    for (;;) {
      try {
        await this.apply(events, outcome);
        return;
      } catch (error) {
        this.options.observer?.storeError?.(error);
        // Shutting down with the write still refused: the events stay pending and may be posted
        // once more after the restart, the only case where a duplicate can reach Chat.
        if (!this.running) return;
        await this.sleep(STORE_RETRY_MS);
      }
    }
  }

  private async apply(events: StoredDelivery[], outcome: PostOutcome): Promise<void> {
    const { store, observer } = this.options;
    const now = this.now();
    const seqs = events.map((event) => event.seq);
    const post: PostRecord = { at: now, status: outcome.status, carried: events.length };

    if (outcome.kind === "delivered") {
      await store.recordOutcome(this.route, { post, delivered: seqs, clearPosting: true });
      this.health.failingSince = null;
      this.health.lastError = null;
      for (const event of events) {
        this.alone.delete(event.seq);
        observer?.delivered?.(event, now - event.receivedAt);
      }
      return;
    }
    if (outcome.kind === "rejected" && events.length > 1) {
      // Which event made Chat refuse the digest is unknown: send each alone, now.
      await store.clearPosting(this.route);
      for (const event of events) this.alone.add(event.seq);
      this.pace.reset();
      return;
    }
    if (outcome.kind === "rejected") {
      await store.recordOutcome(this.route, {
        post,
        dead: { seqs, error: outcome.reason },
        clearPosting: true,
      });
      for (const event of events) {
        this.alone.delete(event.seq);
        observer?.dead?.(event, outcome.reason);
      }
      return;
    }

    this.health.failingSince ??= now;
    this.health.lastError = outcome.reason;
    const maxAgeMs = this.options.maxAgeMs ?? 72 * HOUR_MS;
    const expired = events.filter((event) => now - event.queuedAt >= maxAgeMs);
    const waiting = events.filter((event) => now - event.queuedAt < maxAgeMs);
    const hours = Math.round((maxAgeMs / HOUR_MS) * 10) / 10;
    const deadReason = `gave up after ${hours} h: ${outcome.reason}`;
    const head = waiting[0];
    const delay = head ? this.retryDelay(head, outcome.retryAfterMs) : 0;
    const expiredSeqs = expired.map((event) => event.seq);
    const waitingSeqs = waiting.map((event) => event.seq);
    // Without an answer (a timeout, a cut connection) Chat may have made the message: the retry
    // carries the same events, so the same requestId. So does a retry of such a post that got an
    // error answer (a 429 after a restart, say): that answer is about the repeat, not about the
    // first, which Chat may still have made. An error answer to a first post made nothing: the
    // retry may carry whatever is due by then, as may one after some events were given up on.
    const ambiguous = (outcome.status === undefined || this.repeating) && !expiredSeqs.length;
    // One transaction: were a later write refused, the retry of all must not record the dead
    // letters twice.
    await store.recordOutcome(this.route, {
      post,
      ...(expiredSeqs.length ? { dead: { seqs: expiredSeqs, error: deadReason } } : {}),
      ...(waitingSeqs.length
        ? { retry: { seqs: waitingSeqs, nextAttemptAt: now + delay, error: outcome.reason } }
        : {}),
      clearPosting: !ambiguous,
    });
    for (const event of expired) {
      this.alone.delete(event.seq);
      observer?.dead?.(event, deadReason);
    }
    for (const event of waiting) observer?.retrying?.(event, outcome.reason, delay);
  }

  /** Chat's Retry-After, when it sends one, but never longer than our own longest backoff. */
  private retryDelay(event: StoredDelivery, retryAfterMs: number | undefined): number {
    const maxMs = this.options.maxBackoffMs ?? 5 * 60_000;
    const backoff = backoffDelay(event.attempts + 1, this.options.initialBackoffMs ?? 1000, maxMs);
    return Math.min(maxMs, Math.max(retryAfterMs ?? 0, backoff));
  }

  /** Waits `ms`; stop() always ends the wait early, notify() too unless `wakeOnNotify` is false. */
  private sleep(ms: number, { wakeOnNotify = true } = {}): Promise<void> {
    // Stopped while the store was being read: nothing to wait for.
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      // Timers overflow past 2^31-1 ms; a long wait is simply re-checked after an hour.
      const timer = setTimeout(done, Math.min(ms, MAX_SLEEP_MS));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = wakeOnNotify ? done : () => this.running || done();
    });
  }
}
