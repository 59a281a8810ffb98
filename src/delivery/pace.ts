/**
 * Chat's pace for one space: about one message a second, counted by Chat per space whoever posts
 * (docs/google-chat.md). Each delivery worker (one per route) holds the Pace of its route's space,
 * and routes that post to the same space share one, so together they keep to the space's rate
 * rather than each to its own.
 *
 * A worker takes the turn before it reads what to post and keeps it until Chat has answered
 * (`posted`) or it finds nothing to post (`release`): two workers of one space are never both
 * between a take and an answer, however their store reads interleave.
 */
export class Pace {
  private nextAt = Number.NEGATIVE_INFINITY;
  /** The worker whose turn it is, if any. */
  private holder: object | undefined;

  /** `intervalMs`: the least time from one answer to the next post (1000 / rate). */
  constructor(readonly intervalMs: number) {}

  /**
   * 0 when the turn is now `worker`'s; otherwise how long to wait before asking again: the rest of
   * the interval, or one interval while another worker has the turn.
   */
  take(worker: object, now: number): number {
    if (this.holder !== undefined && this.holder !== worker) return this.intervalMs;
    const wait = this.nextAt - now;
    if (wait > 0) return wait;
    this.holder = worker;
    return 0;
  }

  /** Chat answered `worker`'s post at `now`: the space's next post waits one interval from then. */
  posted(worker: object, now: number): void {
    this.nextAt = now + this.intervalMs;
    this.release(worker);
  }

  /** `worker` gives its turn back unused (if it has it): the space's pace is unchanged. */
  release(worker: object): void {
    if (this.holder === worker) this.holder = undefined;
  }

  /** The next post may go at once (a digest Chat refused is split and its events sent at once). */
  reset(): void {
    this.nextAt = Number.NEGATIVE_INFINITY;
  }
}
