import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { deliveryOutcome } from "../src/vast/delivery-outcome.js";
import { sampleEvent } from "../src/vast/sample-events.js";
import type { FakeChat } from "../test/support/fake-chat.js";
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

const SUBJECT_PATTERN = /\bburst (\d{4})\b/g;
// A mix of real types, so our digests group several types, as a real burst would.
const EVENT_TYPES = ["instance_stopped", "outbid", "low_credit", "machine_error", "billing_failed"];

export function burstSubject(index: number): string {
  return `burst ${String(index + 1).padStart(4, "0")}`;
}

export function makeBurst(count: number): BurstEvent[] {
  if (count > 9999) throw new Error("a burst has at most 9,999 events (four-digit subjects)");
  return Array.from({ length: count }, (_, index) => {
    const type = EVENT_TYPES[index % EVENT_TYPES.length] ?? "low_credit";
    const event = sampleEvent(type, {
      subject: burstSubject(index),
      message: `Burst event ${index + 1} of ${count}.`,
    });
    return {
      subject: event.subject,
      eventId: event.event_id,
      body: Buffer.from(JSON.stringify(event), "utf8"),
    };
  });
}

export interface SenderStats {
  /** Requests sent, retries included. */
  attempts: number;
  /** Events that got a 2xx (the sender stops there). */
  acked: number;
  /** Events answered with a final 4xx (not 408/429). */
  refused: number;
  /** Events still failing after maxAttempts: a real sender would drop them here. */
  gaveUp: number;
  /** Events still being retried when the run's cap ended it. */
  cutOff: number;
  /** Non-2xx answers, by status. */
  statuses: Map<number, number>;
  /** Attempts without an answer, by error code. */
  errors: Map<string, number>;
  /** When the last event's 2xx arrived, ms from the start of the run. */
  lastAckMs: number | undefined;
}

function count<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export interface SendOptions {
  concurrency: number;
  policy: RetryPolicy;
  random: () => number;
  /** Aborting it ends the run: no new attempt, in-flight ones are cancelled. */
  stop: AbortSignal;
  /** performance.now() at the start of the run. */
  startMs: number;
}

/**
 * Sends every event, each with its own retry loop, at most `concurrency` requests in flight.
 * Every event ends in at most maxAttempts attempts, or when `stop` aborts.
 */
export async function sendBurst(
  target: LoadTarget,
  events: readonly BurstEvent[],
  options: SendOptions,
): Promise<SenderStats> {
  const { policy, stop } = options;
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
  const pool = createPool(target.origin, options.concurrency, policy.timeoutMs);
  const slots = new Slots(options.concurrency);
  const onStop = () => slots.releaseAll();
  stop.addEventListener("abort", onStop, { once: true });

  type Outcome = "acked" | "refused" | "retry" | "stopped";
  const attempt = async (event: BurstEvent, number: number): Promise<Outcome> => {
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
        stats.lastAckMs = performance.now() - options.startMs;
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
        await sleep(retryDelayMs(number, policy, options.random), undefined, { signal: stop });
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

/** The text a person sees: a card's fallbackText (ours), else the message's text (the tutorial). */
export function visibleText(body: Record<string, unknown>): string {
  if (typeof body.fallbackText === "string") return body.fallbackText;
  return typeof body.text === "string" ? body.text : "";
}

/** Which burst subjects have reached Chat, read incrementally from FakeChat.messages. */
export class Visibility {
  /** Subject → ms from the start of the run when it first appeared. */
  readonly firstSeenMs = new Map<string, number>();
  /** Subjects seen, repeats included (a repeat is a duplicate message for that event). */
  occurrences = 0;
  /** Most burst subjects carried by one message. */
  maxPerMessage = 0;
  /** ms from the start when the last subject appeared, once all have. */
  allVisibleMs: number | undefined;
  private cursor = 0;
  private readonly expected: ReadonlySet<string>;
  private readonly startMs: number;

  constructor(events: readonly BurstEvent[], startMs: number) {
    this.expected = new Set(events.map((event) => event.subject));
    this.startMs = startMs;
  }

  get visible(): number {
    return this.firstSeenMs.size;
  }

  get complete(): boolean {
    return this.firstSeenMs.size >= this.expected.size;
  }

  update(chat: FakeChat): void {
    const now = performance.now() - this.startMs;
    for (; this.cursor < chat.messages.length; this.cursor++) {
      const message = chat.messages[this.cursor];
      if (!message) continue;
      let carried = 0;
      for (const match of visibleText(message.body).matchAll(SUBJECT_PATTERN)) {
        const subject = match[0];
        if (!this.expected.has(subject)) continue;
        carried++;
        this.occurrences++;
        if (!this.firstSeenMs.has(subject)) this.firstSeenMs.set(subject, now);
      }
      this.maxPerMessage = Math.max(this.maxPerMessage, carried);
    }
    if (this.complete) this.allVisibleMs ??= now;
  }
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
  /** Every request Chat got, 429s included. */
  posts: number;
  /** Messages Chat accepted. */
  accepted: number;
  /** Posts Chat refused with 429 for its per-space limit. */
  throttled: number;
  maxPerMessage: number;
  sender: SenderStats;
  /** Seconds from the first send to the end of the run. */
  endedS: number;
}

export interface BurstRunOptions {
  chat: FakeChat;
  target: LoadTarget;
  events: readonly BurstEvent[];
  concurrency: number;
  policy: RetryPolicy;
  seed: number;
  capS: number;
  /**
   * Whether the adapter keeps delivering after it answered 2xx (ours queues; the tutorial posts
   * inside the request, so once the sender is done nothing more can reach Chat).
   */
  deliversAfterAck: boolean;
  progress: (message: string) => void;
}

/**
 * One burst against one adapter: send, then watch Chat until every subject is visible, the cap
 * is reached, or (for an adapter that posts inline) the sender has finished. Bounded by capS.
 */
export async function runBurst(options: BurstRunOptions): Promise<BurstResult> {
  const { chat, events, capS } = options;
  const stop = new AbortController();
  // Every in-flight request and every retry wait listens to it: not a leak.
  setMaxListeners(events.length * 2 + 16, stop.signal);
  const startMs = performance.now();
  const capEndMs = startMs + capS * 1000;
  const visibility = new Visibility(events, startMs);
  let senderDone = false;
  const sending = sendBurst(options.target, events, {
    concurrency: options.concurrency,
    policy: options.policy,
    random: seededRandom(options.seed),
    stop: stop.signal,
    startMs,
  }).finally(() => {
    senderDone = true;
  });
  // A failure of the sender itself (not of a request) would be a bench bug: surface it after cleanup.
  sending.catch(() => {});

  let nextProgressMs = startMs + 10_000;
  try {
    for (;;) {
      visibility.update(chat);
      const now = performance.now();
      if (visibility.complete || now >= capEndMs) break;
      if (senderDone && !options.deliversAfterAck) break;
      if (now >= nextProgressMs) {
        options.progress(
          `  ${((now - startMs) / 1000).toFixed(0)} s: ${visibility.visible} of ${events.length} visible, ` +
            `${chat.requests} posts, ${chat.throttled} 429s`,
        );
        nextProgressMs += 10_000;
      }
      // Wakes on every request Chat handles; at most every 250 ms otherwise.
      await chat
        .waitFor(
          (c) => {
            visibility.update(c);
            return visibility.complete;
          },
          Math.max(1, Math.min(250, capEndMs - now)),
        )
        .catch(() => {});
    }
  } finally {
    stop.abort();
  }
  const sender = await sending;
  visibility.update(chat);
  const endedS = (performance.now() - startMs) / 1000;
  return {
    events: events.length,
    capS,
    allVisibleS: visibility.allVisibleMs === undefined ? undefined : visibility.allVisibleMs / 1000,
    visible: visibility.visible,
    lost: events.length - visibility.visible,
    duplicates: visibility.occurrences - visibility.visible,
    posts: chat.requests,
    accepted: chat.messages.length,
    throttled: chat.throttled,
    maxPerMessage: visibility.maxPerMessage,
    sender,
    endedS,
  };
}
