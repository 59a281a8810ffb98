/**
 * Time for the chain watcher and the alerts, passed in (STYLE.md, "Inject the clock"): tests drive
 * it by hand, serve uses the real one. A timer never keeps the process alive by itself: serve
 * lives for its listeners, and stopping it must not wait for the next check.
 */
export interface Scheduler {
  now(): number;
  /** Calls `fn` once after `ms`; returns the cancel. */
  after(ms: number, fn: () => void): () => void;
}

/** The longest a Node timer waits (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
