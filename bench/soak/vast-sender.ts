import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { deliveryOutcome } from "../../src/vast/delivery-outcome.js";
import { type RetryPolicy, retryDelayMs } from "../burst.js";
import { Slots } from "../slots.js";
import { attemptDelivery } from "../vast-attempt.js";
import { countInto } from "./results.js";
import type { SoakEvent } from "./soak-events.js";

/**
 * Plays Vast.ai: each event is sent with a fresh timestamp and signature on every attempt, and
 * retried with growing, jittered delays after a non-2xx retryable answer or a connection error,
 * until it is acknowledged or the deadline passes. First attempts leave at a fixed rate.
 *
 * Vast.ai does not publish its retry schedule; the policy here is quicker than a real sender's
 * would likely be, so that a run of minutes sees every event through.
 */
export interface SenderTarget {
  origin: string;
  path: string;
  secret: string;
}

export interface SenderOptions {
  concurrency: number;
  /** First attempts a second; Infinity sends them all at once (bounded by concurrency). */
  ratePerS: number;
  policy: RetryPolicy;
  random: () => number;
  /** Date.now() after which no attempt starts; events not acknowledged by then are cut off. */
  deadline: number;
  /** Ends the run early: no new attempt, in-flight ones are cancelled. */
  stop?: AbortSignal;
}

export interface SenderReport {
  events: number;
  /** Tokens of the events that got a 2xx. */
  acked: Set<string>;
  attempts: number;
  /** Non-2xx answers, by status. */
  statuses: Map<number, number>;
  /** Attempts without an answer, by error code. */
  errors: Map<string, number>;
  /** Events answered with a final 4xx (not 408/429): a webhook sender gives up on those. */
  refused: Map<string, number>;
  /** Events still unacknowledged at the deadline. */
  cutOff: number;
}

type Attempt = { kind: "acked" } | { kind: "refused"; status: number } | { kind: "retry" };

export async function sendLikeVast(
  target: SenderTarget,
  events: readonly SoakEvent[],
  options: SenderOptions,
): Promise<SenderReport> {
  const { policy } = options;
  const report: SenderReport = {
    events: events.length,
    acked: new Set(),
    attempts: 0,
    statuses: new Map(),
    errors: new Map(),
    refused: new Map(),
    cutOff: 0,
  };
  const stop = options.stop ?? new AbortController().signal;
  // Every in-flight request and retry wait listens to it: not a leak.
  setMaxListeners(events.length * 2 + 16, stop);
  const pool = new Pool(target.origin, {
    connections: options.concurrency,
    pipelining: 1,
    connectTimeout: policy.timeoutMs,
    headersTimeout: policy.timeoutMs,
    bodyTimeout: policy.timeoutMs,
  });
  const slots = new Slots(options.concurrency);

  const attempt = async (event: SoakEvent, number: number): Promise<Attempt> => {
    await slots.acquire();
    report.attempts++;
    const signal = AbortSignal.any([stop, AbortSignal.timeout(policy.timeoutMs)]);
    const result = await attemptDelivery(pool, target, event, number, signal).finally(() =>
      slots.release(),
    );
    if (result.kind === "acked") return { kind: "acked" };
    if (result.kind === "no answer") {
      if (!stop.aborted) countInto(report.errors, result.code);
      return { kind: "retry" };
    }
    countInto(report.statuses, result.status);
    return deliveryOutcome(result.status) === "retry"
      ? { kind: "retry" }
      : { kind: "refused", status: result.status };
  };

  const deliver = async (event: SoakEvent, index: number, startedAt: number): Promise<void> => {
    const firstAt =
      startedAt + (Number.isFinite(options.ratePerS) ? index / options.ratePerS : 0) * 1000;
    try {
      await sleep(Math.max(0, firstAt - Date.now()), undefined, { signal: stop });
      for (let number = 1; number <= policy.maxAttempts; number++) {
        if (stop.aborted || Date.now() >= options.deadline) break;
        const outcome = await attempt(event, number);
        if (outcome.kind === "acked") {
          report.acked.add(event.token);
          return;
        }
        if (outcome.kind === "refused") {
          report.refused.set(event.token, outcome.status);
          return;
        }
        const delay = retryDelayMs(number, policy, options.random);
        await sleep(Math.min(delay, Math.max(0, options.deadline - Date.now())), undefined, {
          signal: stop,
        });
      }
    } catch {
      // Stopped while waiting.
    }
    report.cutOff++;
  };

  try {
    const startedAt = Date.now();
    await Promise.all(events.map((event, index) => deliver(event, index, startedAt)));
  } finally {
    await pool.destroy();
  }
  return report;
}

/** The retry policy of the suite's sender: quick, jittered, effectively unbounded in attempts. */
export const SOAK_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 3000,
  maxAttempts: 10_000,
  timeoutMs: 10_000,
};
