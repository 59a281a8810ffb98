import type { PostOutcome } from "../chat/post-message.js";
import type { ChatMessage } from "../chat/render.js";
import type { EventStore, StoredEvent } from "./store.js";

/**
 * The delivery worker: drains the store's outbox to one Chat space, oldest first, one post at a
 * time. An event is marked delivered only after Chat's 2xx; a passing failure holds the queue and
 * retries with growing backoff (Chat failures are space-wide, so later events would fail too); a
 * permanent refusal moves the event to the dead letters so it cannot block the rest.
 */
export interface DeliveryObserver {
  delivered(event: StoredEvent, latencyMs: number): void;
  retrying(event: StoredEvent, reason: string, delayMs: number): void;
  dead(event: StoredEvent, reason: string): void;
  /** The store failed under the worker (locked, disk full); it tries again shortly. */
  storeError(error: unknown): void;
}

export interface WorkerOptions {
  store: EventStore;
  render: (event: StoredEvent) => ChatMessage;
  post: (message: ChatMessage, signal: AbortSignal) => Promise<PostOutcome>;
  observer?: Partial<DeliveryObserver>;
  now?: () => number;
  /** Backoff after the first failure; doubles each attempt, jittered. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

const STORE_RETRY_MS = 1000;
const MAX_SLEEP_MS = 60 * 60 * 1000;

export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  // Full jitter on the upper half keeps restarts of many adapters from retrying in step.
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

export class DeliveryWorker {
  private readonly options: WorkerOptions;
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The post under way, so that shutdown can cancel it once its grace period is over. */
  private currentPost: AbortController | undefined;

  constructor(options: WorkerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Tells the worker that an event was kept, so it need not wait for its timer. */
  notify(): void {
    this.wake?.();
  }

  /**
   * Stops taking new work. A post under way may finish for up to `graceMs`; after that it is
   * cancelled and its event stays pending, to be delivered on the next start.
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
      let event: StoredEvent | undefined;
      try {
        event = this.options.store.nextPending();
      } catch (error) {
        this.options.observer?.storeError?.(error);
        await this.sleep(STORE_RETRY_MS);
        continue;
      }
      if (!event) await this.sleep();
      else if (event.nextAttemptAt > this.now()) await this.sleep(event.nextAttemptAt - this.now());
      else await this.deliver(event);
    }
  }

  private async deliver(event: StoredEvent): Promise<void> {
    const controller = new AbortController();
    this.currentPost = controller;
    let outcome: PostOutcome;
    try {
      outcome = await this.options.post(this.options.render(event), controller.signal);
    } catch (error) {
      outcome = { kind: "retry", reason: `could not post: ${(error as Error).message}` };
    } finally {
      this.currentPost = undefined;
    }
    // A post cancelled by shutdown is not a failed attempt: the event simply stays pending.
    if (controller.signal.aborted && outcome.kind !== "delivered") return;
    await this.record(event, outcome);
  }

  /**
   * Writes the outcome down, retrying the write (never the post) while the store refuses it:
   * posting again because a write failed would put the message in Chat twice.
   */
  private async record(event: StoredEvent, outcome: PostOutcome): Promise<void> {
    const { store, observer } = this.options;
    for (;;) {
      const now = this.now();
      try {
        if (outcome.kind === "delivered") {
          store.markDelivered(event.seq, now);
          observer?.delivered?.(event, now - event.receivedAt);
        } else if (outcome.kind === "rejected") {
          store.markDead(event.seq, outcome.reason);
          observer?.dead?.(event, outcome.reason);
        } else {
          const delay = this.retryDelay(event, outcome.retryAfterMs);
          store.markRetry(event.seq, now + delay, outcome.reason);
          observer?.retrying?.(event, outcome.reason, delay);
        }
        return;
      } catch (error) {
        observer?.storeError?.(error);
        // Shutting down with the write still refused: the event stays pending and may be posted
        // once more after the restart, the only case where a duplicate can reach Chat.
        if (!this.running) return;
        await this.sleep(STORE_RETRY_MS);
      }
    }
  }

  /** Chat's Retry-After, when it sends one, but never longer than our own longest backoff. */
  private retryDelay(event: StoredEvent, retryAfterMs: number | undefined): number {
    const maxMs = this.options.maxBackoffMs ?? 5 * 60_000;
    const backoff = backoffDelay(event.attempts + 1, this.options.initialBackoffMs ?? 1000, maxMs);
    return Math.min(maxMs, Math.max(retryAfterMs ?? 0, backoff));
  }

  /** Waits until notified, stopped, or `ms` elapse (forever when omitted). */
  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      // Timers overflow past 2^31-1 ms; a long wait is simply re-checked after an hour.
      const timer = ms === undefined ? undefined : setTimeout(done, Math.min(ms, MAX_SLEEP_MS));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
