import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { deliveryOutcome } from "../src/vast/delivery-outcome.js";
import { sampleEvent } from "../src/vast/sample-events.js";
import type { FakeChat } from "../test/support/fake-chat.js";
import { vastHeaders } from "../test/support/sign.js";
import type { BenchConfig } from "./config.js";
import { countInto, createPool, type LoadTarget } from "./load.js";

/**
 * The burst: N events (subjects `burst 0001`…) sent at once into Chat spaces that take one message
 * a second (FakeChat.ratePerSecond, 429 beyond), by a sender that plays Vast.ai, retries included,
 * the same way for every adapter (and for the soak's). Vast.ai does not publish its retry schedule:
 * this one is an assumption (BENCHMARKS.md, the method).
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

/** Delay after failed attempt `attempt` (1-based): 1 s, 2 s, 4 s … capped, with equal jitter. */
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

/** The same bytes on every attempt; only the timestamp and signature headers change. */
export type BurstEvent = { subject: string; eventId: string; body: Buffer };

/** A mix of real types, so our digests group several types, as a real burst would. */
export const EVENT_TYPES = [
  ...["instance_stopped", "outbid", "low_credit", "machine_error", "billing_failed"],
];

/** `count` events (subjects `burst 0001`…) of `types` in turn (the five above by default). */
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

/** What the sender saw, as load.ts's RunStats: a class for its starting values, read back as data. */
export class SenderStats {
  /** Requests sent, retries included. */
  attempts = 0;
  /** Events that got a 2xx, that got a final 4xx (not 408/429), that failed maxAttempts times
   * (a real sender would drop them), and that were still being retried when the run ended. */
  acked = 0;
  refused = 0;
  gaveUp = 0;
  cutOff = 0;
  /** Non-2xx answers by status; attempts without an answer by error code. */
  statuses = new Map<number, number>();
  errors = new Map<string, number>();
  /** When the last event's 2xx arrived, ms from the start of the run. */
  lastAckMs: number | undefined = undefined;
}

/**
 * Sends every event, each with its own retry loop, at most `concurrency` requests in flight (the
 * first attempt of event i after i/ratePerS s, when given), each attempt signed as it leaves.
 * Every event ends in at most maxAttempts attempts, or when `stop` aborts (the ones in flight are
 * cancelled then).
 */
export async function sendBurst<E extends { eventId: string; body: Buffer }>(
  target: LoadTarget,
  events: readonly E[],
  options: { concurrency: number; policy: RetryPolicy; seed: number; ratePerS?: number },
  stop: AbortSignal,
  startMs: number,
  onAck: (event: E) => void = () => {},
): Promise<SenderStats> {
  const { concurrency, policy, ratePerS } = options;
  const { path, secret } = target;
  // Every in-flight request and every retry wait listens to it: not a leak.
  setMaxListeners(events.length * 2 + 16, stop);
  const stats = new SenderStats();
  const random = seededRandom(options.seed);
  const pool = createPool(target.origin, concurrency, policy.timeoutMs);
  // At most `concurrency` in flight, so an attempt's timeout runs from when it leaves.
  let free = concurrency;
  let waiting: Array<() => void> = [];
  const release = () => (waiting.length ? waiting.shift()?.() : free++);
  const onStop = () => {
    for (const wake of waiting.splice(0)) wake();
  };
  stop.addEventListener("abort", onStop, { once: true });

  const attempt = async (event: E, number: number) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    if (stop.aborted) return "stopped";
    stats.attempts++;
    let status: number;
    const { eventId, body } = event;
    try {
      const headers = vastHeaders(secret, body, { eventId, attempt: number });
      const signal = AbortSignal.any([stop, AbortSignal.timeout(policy.timeoutMs)]);
      const response = await pool.request({ path, method: "POST", headers, body, signal });
      await response.body.text();
      status = response.statusCode;
    } catch (error) {
      if (stop.aborted) return "stopped";
      const { code, name } = error as { code?: string; name?: string };
      countInto(stats.errors, code ?? name ?? "error");
      return "retry";
    } finally {
      release();
    }
    const outcome = deliveryOutcome(status);
    if (outcome === "success") return "acked";
    countInto(stats.statuses, status);
    return outcome === "retry" ? "retry" : "refused";
  };

  const deliver = async (event: E, index: number): Promise<void> => {
    try {
      if (ratePerS) await sleep((index / ratePerS) * 1000, undefined, { signal: stop });
      for (let number = 1; number <= policy.maxAttempts; number++) {
        const outcome = await attempt(event, number);
        if (outcome === "acked") {
          stats.acked++;
          stats.lastAckMs = performance.now() - startMs;
          return onAck(event);
        }
        if (outcome === "refused") return void stats.refused++;
        if (outcome === "stopped") break;
        if (number === policy.maxAttempts) return void stats.gaveUp++;
        await sleep(retryDelayMs(number, policy, random), undefined, { signal: stop });
      }
    } catch {
      // Stopped while waiting.
    }
    stats.cutOff++;
  };

  try {
    await Promise.all(events.map(deliver));
  } finally {
    stop.removeEventListener("abort", onStop);
    waiting = [];
    await pool.destroy();
  }
  return stats;
}

/** One burst's figures; times are seconds from the first send, allVisibleS undefined when not all were. */
export type BurstResult = Awaited<ReturnType<typeof runBurst>>;

/** The subjects a person sees: a card's fallbackText (ours), else the message's text (the tutorial). */
export function visibleSubjects(body: Record<string, unknown>): string[] {
  const text = [body.fallbackText, body.text, ""].find((v) => typeof v === "string") as string;
  return text.match(/\bburst \d{4}\b/g) ?? [];
}

/** The same seed for every run: the senders draw the same jitter sequence. */
const BURST_SEED = 0x5eed_b0b5;

export interface WatchOptions {
  label: string;
  capS: number;
  /** Whether the adapter keeps delivering after its 2xx (ours queues; the tutorial posts inside
   * the request, so once the sender is done nothing more can reach Chat). */
  deliversAfterAck: boolean;
  /** Once every event is visible, wait until Chat has had no post for quietMs (at most settleMs). */
  settle?: { quietMs: number; settleMs: number };
}

/** The space of a Chat webhook URL (`/v1/spaces/SPACE/messages`). */
export function spaceOf(url: string): string {
  const space = /\/v1\/spaces\/([^/]+)\/messages/.exec(new URL(url).pathname)?.[1];
  if (space === undefined) throw new Error(`not a Chat webhook URL: ${url}`);
  return space;
}

/**
 * What Chat shows, read incrementally: an event is visible once its subject appears in a message
 * Chat accepted in the event's own space (`spaces`: subject → space). `observe` returns how many
 * are; `result` sums up every space that was expected or got a message.
 */
function watchChat(chat: FakeChat, spaces: ReadonlyMap<string, string>) {
  const firstSeenMs = new Map<string, number>();
  const seen = new Map<string, number>(); // `${space} ${subject}` → occurrences
  const zero = { messages: 0, maxPerMessage: 0, otherMessages: 0, misplaced: 0 };
  const perSpace = new Map<string, typeof zero & { arrivals: number[] }>();
  const of = (space: string) => {
    const mine = perSpace.get(space) ?? { ...zero, arrivals: [] };
    perSpace.set(space, mine);
    return mine;
  };
  for (const space of spaces.values()) of(space);
  let cursor = 0;
  const observe = (now: number) => {
    for (const [space, requests] of chat.requestsBySpace) {
      const { arrivals } = of(space);
      // One wake per request: the fake notifies on each arrival.
      while (arrivals.length < requests) arrivals.push(now);
    }
    for (const message of chat.messages.slice(cursor)) {
      const mine = of(message.space);
      let carried = 0;
      for (const subject of visibleSubjects(message.body)) {
        const expected = spaces.get(subject);
        if (expected === undefined) continue;
        carried++;
        const key = `${message.space} ${subject}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (expected !== message.space) mine.misplaced++;
        else if (!firstSeenMs.has(subject)) firstSeenMs.set(subject, now);
      }
      mine.messages++;
      mine.maxPerMessage = Math.max(mine.maxPerMessage, carried);
      if (carried === 0) mine.otherMessages++;
    }
    cursor = chat.messages.length;
    return firstSeenMs.size;
  };
  const result = () =>
    [...perSpace].flatMap(([space, mine]) => {
      const subjects = [...spaces].filter(([, s]) => s === space).map(([subject]) => subject);
      if (subjects.length === 0 && mine.messages === 0) return [];
      const times = subjects.map((subject) => firstSeenMs.get(subject));
      const visible = times.filter((time) => time !== undefined).length;
      const { arrivals, ...counted } = mine;
      const gaps = arrivals.slice(1).map((at, index) => at - (arrivals[index] ?? at));
      const posts = chat.requestsBySpace.get(space) ?? 0;
      const lastVisibleMs = Math.max(...times.map((time) => time ?? 0));
      const counts = subjects.map((subject) => seen.get(`${space} ${subject}`) ?? 1);
      const all = subjects.length && visible === subjects.length;
      return {
        space,
        events: subjects.length,
        visible,
        posts,
        ...counted,
        lastVisibleS: all ? lastVisibleMs / 1000 : undefined,
        // The fake refuses a post with 429 (over the rate) or 400 (a bad message, counted apart).
        throttled: posts - mine.messages,
        duplicates: counts.reduce((total, n) => total + n - 1, 0),
        shortestGapMs: gaps.length && subjects.length ? Math.min(...gaps) : undefined,
      };
    });
  return { observe, result };
}
export type SpaceResult = ReturnType<ReturnType<typeof watchChat>["result"]>[number];

/**
 * Sends `events` like Vast.ai (config's burst knobs) and watches Chat (`spaces`: each event's
 * space, by subject): the watch ends once every event is visible, at the cap, or (for an adapter
 * that posts inline) once the sender has finished.
 */
export async function sendAndWatch(
  config: BenchConfig,
  chat: FakeChat,
  target: LoadTarget,
  events: readonly BurstEvent[],
  spaces: ReadonlyMap<string, string>,
  { capS, deliversAfterAck, settle }: WatchOptions,
  progress: (message: string) => void,
) {
  const watcher = watchChat(chat, spaces);
  const stop = new AbortController();
  const startMs = performance.now();
  const capEndMs = startMs + capS * 1000;
  let allVisibleMs: number | undefined;
  let visible = 0;
  const allVisible = () => {
    const now = performance.now() - startMs;
    visible = watcher.observe(now);
    if (visible >= events.length) allVisibleMs ??= now;
    return allVisibleMs !== undefined;
  };
  let senderDone = false;
  const policy = {
    initialDelayMs: config.burstInitialDelayMs,
    maxDelayMs: config.burstMaxDelayMs,
    maxAttempts: config.burstMaxAttempts,
    timeoutMs: config.requestTimeoutMs,
  };
  const options = { concurrency: config.burstConcurrency, policy, seed: BURST_SEED };
  const sending = sendBurst(target, events, options, stop.signal, startMs).finally(() => {
    senderDone = true;
  });
  // A failure of the sender itself (not of a request) would be a bench bug: surface it after cleanup.
  sending.catch(() => {});
  try {
    for (let nextProgressMs = startMs + 10_000; !allVisible(); ) {
      const now = performance.now();
      if (now >= capEndMs || (senderDone && !deliversAfterAck)) break;
      if (now >= nextProgressMs) {
        const at = ((now - startMs) / 1000).toFixed(0);
        progress(
          `  ${at} s: ${visible} of ${events.length} visible, ${chat.requests} posts, ${chat.throttled} 429s`,
        );
        nextProgressMs += 10_000;
      }
      // Wakes on every request Chat handles; at most every 250 ms otherwise.
      await chat.waitFor(allVisible, Math.max(1, Math.min(250, capEndMs - now))).catch(() => {});
    }
    // Late posts (a repeat, a stray message) and answers still under way, before counting.
    const settleEnd = performance.now() + (settle?.settleMs ?? 0);
    for (let before = -1; settle && chat.requests !== before && performance.now() < settleEnd; ) {
      before = chat.requests;
      await sleep(settle.quietMs);
      allVisible();
    }
  } finally {
    stop.abort();
  }
  const sender = await sending;
  allVisible();
  const allVisibleS = allVisibleMs === undefined ? undefined : allVisibleMs / 1000;
  const endedS = (performance.now() - startMs) / 1000;
  return { sender, allVisibleS, endedS, visible, spaces: watcher.result() };
}

/** One burst against one adapter posting to `chat` (limited to burstChatRate messages a second). */
export async function runBurst(
  config: BenchConfig,
  chat: FakeChat,
  target: LoadTarget,
  options: WatchOptions,
  progress: (message: string) => void,
) {
  const { label, capS } = options;
  const events = makeBurst(config.burstEvents);
  progress(
    `  ${label}: burst of ${events.length} events, ${config.burstConcurrency} in flight, Chat at ${config.burstChatRate}/s, cap ${capS} s`,
  );
  const space = spaceOf(chat.webhookUrl());
  const spaces = new Map(events.map((event) => [event.subject, space]));
  const watched = await sendAndWatch(config, chat, target, events, spaces, options, progress);
  const { sender, allVisibleS, endedS, visible } = watched;
  const { duplicates = 0, maxPerMessage = 0 } = watched.spaces.find((s) => s.space === space) ?? {};
  const [posts, accepted, throttled] = [chat.requests, chat.messages.length, chat.throttled];
  progress(
    `  ${label}: ${visible} of ${events.length} visible after ${(allVisibleS ?? endedS).toFixed(1)} s; ${posts} posts, ${throttled} 429s, ${accepted} messages; sender: ${sender.attempts} deliveries, ${sender.gaveUp} given up`,
  );
  const lost = events.length - visible;
  return {
    events: events.length,
    capS,
    allVisibleS,
    visible,
    lost,
    duplicates,
    posts,
    accepted,
    throttled,
    maxPerMessage,
    sender,
    endedS,
  };
}
