import type { Scheduler } from "../../src/adapter/scheduler.js";

/**
 * A clock the test moves (src/adapter/scheduler.ts): timers fire in order as `advance` passes
 * them, and the promises they start are let settle before the next one fires, so a chain of
 * checks runs as it would in time, with no waiting.
 */
export class ManualScheduler implements Scheduler {
  private time: number;
  private readonly timers = new Set<{ at: number; fn: () => void }>();

  constructor(start = Date.UTC(2026, 10, 30, 8, 0, 0)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + Math.max(0, ms), fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Timers still set. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time on by `ms`, firing each timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.at - b.at)[0];
      if (!next || next.at > end) break;
      this.timers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = end;
  }
}

/** Lets every promise that can settle without I/O settle. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
