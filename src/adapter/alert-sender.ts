import type { PostOutcome } from "../chat/post-message.js";
import type { ChatMessage } from "../chat/render.js";
import type { AdapterLog } from "./adapter.js";
import type { Scheduler } from "./scheduler.js";

/**
 * Posts the adapter's alerts to Chat, in order, one at a time, each until Chat takes it: a small
 * queue in memory beside the event store's outbox (an alert is about the adapter, not an event of
 * Vast.ai's, and must not wait behind a backlog of them). A failure Chat may get over (429, 5xx,
 * no answer) is retried with growing backoff, 1 s doubling to 5 min, for as long as serve runs; a
 * refusal for good (400, 403, 404) is logged as an error and the alert dropped, since it will never
 * be taken. Nothing is dropped silently, but the queue lives in memory: alerts not yet posted when
 * serve stops are logged as such, and lost.
 */
export interface AlertSenderOptions {
  post: (message: ChatMessage) => Promise<PostOutcome>;
  log: AdapterLog;
  scheduler: Scheduler;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** The most alerts held; past it the oldest is dropped, with an error in the log. */
  maxQueued?: number;
}

interface Queued {
  message: ChatMessage;
  /** For the log: which alert. */
  label: string;
  attempts: number;
}

export class AlertSender {
  private readonly queue: Queued[] = [];
  private sending = false;
  private stopped = false;
  private cancelWait: (() => void) | undefined;
  private readonly options: AlertSenderOptions;

  constructor(options: AlertSenderOptions) {
    this.options = options;
  }

  /** Queues an alert; posting starts at once unless one is under way or waiting to be retried. */
  send(message: ChatMessage, label: string): void {
    if (this.stopped) {
      this.options.log.error({ alert: label }, "alert not sent: serve is stopping");
      return;
    }
    const max = this.options.maxQueued ?? 100;
    while (this.queue.length >= max) {
      const dropped = this.queue.shift();
      this.options.log.error({ alert: dropped?.label }, "alert dropped: too many waiting");
    }
    this.queue.push({ message, label, attempts: 0 });
    if (!this.sending) void this.drain();
  }

  /** How many alerts wait to be posted. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stops posting; what is still queued is logged, and lost (it lives in memory). */
  stop(): void {
    this.stopped = true;
    this.cancelWait?.();
    for (const item of this.queue.splice(0)) {
      this.options.log.error({ alert: item.label }, "alert not sent: serve is stopping");
    }
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      for (;;) {
        const head = this.queue[0];
        if (!head || this.stopped) return;
        const outcome = await this.options
          .post(head.message)
          .catch(
            (error: unknown): PostOutcome => ({ kind: "retry", reason: (error as Error).message }),
          );
        if (this.stopped) return;
        head.attempts++;
        if (outcome.kind === "delivered") {
          this.queue.shift();
          this.options.log.info({ alert: head.label, attempts: head.attempts }, "alert posted");
          continue;
        }
        if (outcome.kind === "rejected") {
          this.queue.shift();
          this.options.log.error(
            { alert: head.label, reason: outcome.reason },
            "alert refused by Chat, not sent",
          );
          continue;
        }
        const delayMs = this.backoff(head.attempts, outcome.retryAfterMs);
        this.options.log.warn(
          { alert: head.label, reason: outcome.reason, retry_in_s: delayMs / 1000 },
          "alert not posted yet",
        );
        await this.wait(delayMs);
      }
    } finally {
      this.sending = false;
    }
  }

  private backoff(attempts: number, retryAfterMs: number | undefined): number {
    const initial = this.options.initialBackoffMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 5 * 60_000;
    const backoff = Math.min(max, initial * 2 ** Math.max(0, attempts - 1));
    return Math.min(max, Math.max(backoff, retryAfterMs ?? 0));
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.options.scheduler.after(ms, () => {
        this.cancelWait = undefined;
        resolve();
      });
      this.cancelWait = () => {
        cancel();
        this.cancelWait = undefined;
        resolve();
      };
    });
  }
}
