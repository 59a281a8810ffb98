import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { deliveryOutcome } from "../src/vast/delivery-outcome.js";
import { sampleEvent } from "../src/vast/sample-events.js";
import type { FakeChat } from "../test/support/fake-chat.js";
import type { BenchConfig } from "./config.js";
import { createPool, type LoadTarget } from "./load.js";
import { Slots } from "./slots.js";
import { attemptDelivery } from "./vast-attempt.js";

/**
 * The burst benchmark: N events (subjects `burst 0001`…) sent at once, with bounded concurrency,
 * into one Chat space that takes one message a second (FakeChat.ratePerSecond, 429 beyond). The
 * sender plays Vast.ai, retries included, the same way for every adapter: an adapter that answers
 * 502 on Chat's 429 (the tutorial's) is measured with the help it relies on.
 *
 * Vast.ai does not publish its retry schedule, so this one is an assumption (see RetryPolicy).
 */
export interface RetryPolicy {
  /** Delay before the 2nd attempt; doubles each attempt up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Attempts per event, the first included; after the last failure the sender gives up. */
  maxAttempts: number;
  /** An attempt without an answer within this is a failure (Vast.ai waits 10 s). */
  timeoutMs: number;
}

/**
 * Delay after failed attempt `attempt` (1-based): 1 s, 2 s, 4 s … capped, with "equal jitter"
 * (uniform in the upper half), so 500 events that failed together do not all come back in the
 * same millisecond. Jitter is the kinder assumption for an adapter that needs retries to get
 * through a 1/s limit.
 */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** A small seeded PRNG (mulberry32): both adapters get the same jitter sequence, run after run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface BurstEvent {
  subject: string;
  eventId: string;
  /** The same bytes on every attempt; only the timestamp and signature headers change. */
  body: Buffer;
}

// A mix of real types, so our digests group several types, as a real burst would.
const EVENT_TYPES = ["instance_stopped", "outbid", "low_credit", "machine_error", "billing_failed"];

/** `types` in turn (the burst's five by default). */
export function makeBurst(count: number, types: readonly string[] = EVENT_TYPES): BurstEvent[] {
  if (count > 9999) throw new Error("a burst has at most 9,999 events (four-digit subjects)");
  return Array.from({ length: count }, (_, index) => {
    const event = sampleEvent(types[index % types.length] ?? "low_credit", {
      subject: `burst ${String(index + 1).padStart(4, "0")}`,
      message: `Burst event ${index + 1} of ${count}.`,
    });
    const body = Buffer.from(JSON.stringify(event), "utf8");
    return { subject: event.subject, eventId: event.event_id, body };
  });
}

export interface SenderStats {
  /** Requests sent, retries included. */
  attempts: number;
  /** Events that got a 2xx (the sender stops there), and those answered a final 4xx (not 408/429). */
  acked: number;
  refused: number;
  /** Events still failing after maxAttempts: a real sender would drop them here. */
  gaveUp: number;
  /** Events still being retried when the run's cap ended it. */
  cutOff: number;
  /** Non-2xx answers by status; attempts without an answer by error code. */
  statuses: Map<number, number>;
  errors: Map<string, number>;
  /** When the last event's 2xx arrived, ms from the start of the run. */
  lastAckMs: number | undefined;
}

function count<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Sends every event, each with its own retry loop, at most `concurrency` requests in flight.
 * Every event ends in at most maxAttempts attempts, or when `stop` aborts (no new attempt then,
 * and the ones in flight are cancelled).
 */
export async function sendBurst(
  target: LoadTarget,
  events: readonly BurstEvent[],
  { concurrency, policy, seed }: { concurrency: number; policy: RetryPolicy; seed: number },
  stop: AbortSignal,
  startMs: number,
): Promise<SenderStats> {
  const stats: SenderStats = {
    attempts: 0,
    acked: 0,
    refused: 0,
    gaveUp: 0,
    cutOff: 0,
    statuses: new Map(),
    errors: new Map(),
    lastAckMs: undefined,
  };
  const random = seededRandom(seed);
  const pool = createPool(target.origin, concurrency, policy.timeoutMs);
  const slots = new Slots(concurrency);
  const onStop = () => slots.releaseAll();
  stop.addEventListener("abort", onStop, { once: true });

  const attempt = async (event: BurstEvent, number: number) => {
    await slots.acquire();
    if (stop.aborted) return "stopped";
    stats.attempts++;
    const signal = AbortSignal.any([stop, AbortSignal.timeout(policy.timeoutMs)]);
    const result = await attemptDelivery(pool, target, event, number, signal).finally(() =>
      slots.release(),
    );
    if (result.kind === "acked") return "acked";
    if (result.kind === "no answer") {
      if (stop.aborted) return "stopped";
      count(stats.errors, result.code);
      return "retry";
    }
    count(stats.statuses, result.status);
    return deliveryOutcome(result.status) === "retry" ? "retry" : "refused";
  };

  const deliver = async (event: BurstEvent): Promise<void> => {
    for (let number = 1; number <= policy.maxAttempts; number++) {
      const outcome = await attempt(event, number);
      if (outcome === "acked") {
        stats.acked++;
        stats.lastAckMs = performance.now() - startMs;
        return;
      }
      if (outcome === "refused") {
        stats.refused++;
        return;
      }
      if (outcome === "stopped") break;
      if (number === policy.maxAttempts) {
        stats.gaveUp++;
        return;
      }
      try {
        await sleep(retryDelayMs(number, policy, random), undefined, { signal: stop });
      } catch {
        break; // stopped while waiting
      }
    }
    stats.cutOff++;
  };

  try {
    await Promise.all(events.map(deliver));
  } finally {
    stop.removeEventListener("abort", onStop);
    await pool.destroy();
  }
  return stats;
}

export interface BurstResult {
  events: number;
  /** The run's cap, seconds. */
  capS: number;
  /** Seconds from the first send until every subject was visible; undefined if not within the cap. */
  allVisibleS: number | undefined;
  visible: number;
  /** Events not visible in Chat when the run ended. */
  lost: number;
  /** Subjects seen more than once (the same event in two messages). */
  duplicates: number;
  /** Every request Chat got, 429s included; the messages it accepted; the posts its limit refused. */
  posts: number;
  accepted: number;
  throttled: number;
  /** Most burst subjects carried by one message. */
  maxPerMessage: number;
  sender: SenderStats;
  /** Seconds from the first send to the end of the run. */
  endedS: number;
}

export const SUBJECT_PATTERN = /\bburst \d{4}\b/g;

/** The text a person sees: a card's fallbackText (ours), else the message's text (the tutorial). */
export function visibleText(body: Record<string, unknown>): string {
  if (typeof body.fallbackText === "string") return body.fallbackText;
  return typeof body.text === "string" ? body.text : "";
}

/** The same seed for every run: the senders draw the same jitter sequence. */
export const BURST_SEED = 0x5eed_b0b5;

interface BurstOptions {
  label: string;
  capS: number;
  /**
   * Whether the adapter keeps delivering after it answered 2xx (ours queues; the tutorial posts
   * inside the request, so once the sender is done nothing more can reach Chat).
   */
  deliversAfterAck: boolean;
}

/**
 * One burst against one adapter posting to `chat` (limited to burstChatRate messages a second):
 * send, then watch Chat until every subject is visible, the cap is reached, or (for an adapter
 * that posts inline) the sender has finished. Bounded by capS.
 */
export async function runBurst(
  config: BenchConfig,
  chat: FakeChat,
  target: LoadTarget,
  { label, capS, deliversAfterAck }: BurstOptions,
  progress: (message: string) => void,
): Promise<BurstResult> {
  const events = makeBurst(config.burstEvents);
  progress(
    `  ${label}: burst of ${events.length} events, ${config.burstConcurrency} in flight, Chat at ${config.burstChatRate}/s, cap ${capS} s`,
  );
  const stop = new AbortController();
  // Every in-flight request and every retry wait listens to it: not a leak.
  setMaxListeners(events.length * 2 + 16, stop.signal);
  const startMs = performance.now();
  const capEndMs = startMs + capS * 1000;

  // Which subjects have reached Chat (ms from the start when each first did), read incrementally.
  const expected = new Set(events.map((event) => event.subject));
  const firstSeenMs = new Map<string, number>();
  let cursor = 0;
  let occurrences = 0;
  let maxPerMessage = 0;
  let allVisibleMs: number | undefined;
  const allVisible = (): boolean => {
    const now = performance.now() - startMs;
    for (; cursor < chat.messages.length; cursor++) {
      let carried = 0;
      for (const [subject] of visibleText(chat.messages[cursor]?.body ?? {}).matchAll(
        SUBJECT_PATTERN,
      )) {
        if (!expected.has(subject)) continue;
        carried++;
        occurrences++;
        if (!firstSeenMs.has(subject)) firstSeenMs.set(subject, now);
      }
      maxPerMessage = Math.max(maxPerMessage, carried);
    }
    if (firstSeenMs.size >= expected.size) allVisibleMs ??= now;
    return allVisibleMs !== undefined;
  };

  let senderDone = false;
  const policy = {
    initialDelayMs: config.burstInitialDelayMs,
    maxDelayMs: config.burstMaxDelayMs,
    maxAttempts: config.burstMaxAttempts,
    timeoutMs: config.requestTimeoutMs,
  };
  const sending = sendBurst(
    target,
    events,
    { concurrency: config.burstConcurrency, policy, seed: BURST_SEED },
    stop.signal,
    startMs,
  ).finally(() => {
    senderDone = true;
  });
  // A failure of the sender itself (not of a request) would be a bench bug: surface it after cleanup.
  sending.catch(() => {});

  let nextProgressMs = startMs + 10_000;
  try {
    for (;;) {
      if (allVisible()) break;
      const now = performance.now();
      if (now >= capEndMs || (senderDone && !deliversAfterAck)) break;
      if (now >= nextProgressMs) {
        progress(
          `  ${((now - startMs) / 1000).toFixed(0)} s: ${firstSeenMs.size} of ${events.length} visible, ` +
            `${chat.requests} posts, ${chat.throttled} 429s`,
        );
        nextProgressMs += 10_000;
      }
      // Wakes on every request Chat handles; at most every 250 ms otherwise.
      await chat.waitFor(allVisible, Math.max(1, Math.min(250, capEndMs - now))).catch(() => {});
    }
  } finally {
    stop.abort();
  }
  const sender = await sending;
  allVisible();
  const visible = firstSeenMs.size;
  const result: BurstResult = {
    events: events.length,
    capS,
    allVisibleS: allVisibleMs === undefined ? undefined : allVisibleMs / 1000,
    visible,
    lost: events.length - visible,
    duplicates: occurrences - visible,
    posts: chat.requests,
    accepted: chat.messages.length,
    throttled: chat.throttled,
    maxPerMessage,
    sender,
    endedS: (performance.now() - startMs) / 1000,
  };
  progress(
    `  ${label}: ${visible} of ${result.events} visible` +
      (result.allVisibleS === undefined
        ? ` when the run ended after ${result.endedS.toFixed(1)} s`
        : ` after ${result.allVisibleS.toFixed(1)} s`) +
      `; ${result.posts} posts, ${result.throttled} 429s, ${result.accepted} messages;` +
      ` sender: ${sender.attempts} deliveries, ${sender.gaveUp} given up`,
  );
  return result;
}
