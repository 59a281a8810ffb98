import { type ChatBehaviour, FakeChat } from "../../test/support/fake-chat.js";
import { type RetryPolicy, seededRandom, sendBurst } from "../burst.js";
import * as h from "./harness.js";

/**
 * The two sides serve talks to: Vast.ai sending it events, and test/support's FakeChat failing the
 * way Chat does, at random: spells of 500, of 429 with Retry-After, and of requests never answered
 * (their connections dropped when the spell ends), single failures in between. What it lets
 * through is still held to Google's schema by FakeChat (a message Google would refuse is a 400,
 * and the dead letter fails the run); a message counts only once answered 200, so repeats can
 * only come from the adapter.
 */
type Mode = "ok" | "error500" | "throttle429" | "hang";

/** Spells: chance of each mode when one ends (cumulative), and how long (ms, uniform) it lasts. */
const SPELLS: ReadonlyArray<[Mode, number, [number, number]]> = [
  ["ok", 0.6, [1000, 4000]],
  ["error500", 0.75, [300, 2500]],
  ["throttle429", 0.9, [300, 2500]],
  ["hang", 1, [500, 3000]],
];
/** The first spells (mode, ms), so every kind of failure happens however short the run. */
const OPENING = (["ok", "error500", "ok", "throttle429", "ok", "hang"] as const).map(
  (mode): [Mode, number] => [mode, mode === "hang" ? 2000 : 1500],
);
/** How long an accepted post waits for its answer while chaos is on (real Chat: ~100–500 ms). */
const ANSWER_DELAY_MS = [20, 400] as const;
/** While "ok": the odd single failure. */
const SPRINKLED_500 = 0.03;
const SPRINKLED_429 = 0.02;
const SPACE = "AAAAsoakSpace";
/** Chat's answers when it fails, with Google's messages. */
const ERRORS = {
  error500: [500, "Internal error encountered."],
  throttle429: [429, "Resource has been exhausted (e.g. check quota)."],
  wrongCredentials: [404, "Requested entity was not found."],
} as const;

/** Closed after the part, with its other leftovers. */
export async function startChaosChat(context: h.PartContext, seedOffset: number) {
  const random = seededRandom(context.seed + seedOffset);
  const { chatKey, chatToken } = context.secrets;
  const fake = await FakeChat.start();
  /** wrongCredentials: posts with the wrong key or token (the adapter mangled its URL). */
  const failures = { error500: 0, throttle429: 0, hang: 0, wrongCredentials: 0 };
  /** Accepted messages that carried at least one event Chat already had (a repeated post), and
   * how many of them repeated a requestId Chat had accepted (real Chat could drop them). */
  const repeats = { repeatPosts: 0, repeatPostsWithKnownRequestId: 0 };
  /** How many accepted messages carried each token (once per message, however often shown). */
  const copies = new Map<string, number>();
  const requestIds = new Set<string>();
  let read = 0;
  const catchUp = () => {
    for (const { body, query } of fake.messages.slice(read)) {
      const tokens = [...new Set(JSON.stringify(body).match(h.TOKEN_PATTERN))];
      const requestId = query.get("requestId");
      if (tokens.some((token) => copies.has(token))) {
        repeats.repeatPosts++;
        if (requestId !== null && requestIds.has(requestId))
          repeats.repeatPostsWithKnownRequestId++;
      }
      for (const token of tokens) h.countInto(copies, token);
      if (requestId !== null) requestIds.add(requestId);
    }
    read = fake.messages.length;
  };
  let [mode, chaos, spellsPlayed]: [Mode, boolean, number] = ["ok", false, 0];
  let spellTimer: NodeJS.Timeout | undefined;
  const enter = (next: Mode) => {
    if (next !== "hang") fake.releaseHanging();
    mode = next;
  };
  const nextSpell = () => {
    let [next, ms]: [Mode, number] = OPENING[spellsPlayed++] ?? ["ok", 0];
    if (spellsPlayed > OPENING.length) {
      const pick = random();
      const [spell, , [min, max]] = SPELLS.find(([, upTo]) => pick < upTo) ?? ["ok", 1, [0, 0]];
      [next, ms] = [spell, min + random() * (max - min)];
    }
    enter(next);
    spellTimer = setTimeout(nextSpell, ms);
  };
  const setChaos = (on: boolean) => {
    chaos = on;
    clearTimeout(spellTimer);
    if (on) nextSpell();
    else enter("ok");
  };

  // A body that is not JSON is left to FakeChat, which refuses it with 400 as Google does.
  fake.decide = ({ space, query }): ChatBehaviour => {
    const roll = chaos && mode === "ok" ? random() : 1;
    let now: Mode | keyof typeof ERRORS =
      roll < SPRINKLED_500
        ? "error500"
        : roll < SPRINKLED_500 + SPRINKLED_429
          ? "throttle429"
          : mode;
    if (space !== SPACE || query.get("key") !== chatKey || query.get("token") !== chatToken) {
      now = "wrongCredentials";
    }
    if (now === "ok") {
      // Answered a moment later, as Chat takes its time: a kill in between leaves a message the
      // adapter never heard of, the one case where it may post the same again.
      const [min, max] = chaos ? ANSWER_DELAY_MS : [0, 0];
      return { kind: "ok", delayMs: min + random() * (max - min) };
    }
    failures[now]++;
    if (now === "hang") return { kind: "hang" };
    const [status, message] = ERRORS[now];
    // Seconds, sometimes an HTTP date, as proxies in front of Chat send it.
    const seconds = () => (random() < 0.8 ? String(1 + Math.floor(random() * 2)) : undefined);
    const retryAfter =
      now === "throttle429" ? (seconds() ?? new Date(Date.now() + 2000).toUTCString()) : undefined;
    return { kind: "status", status, message, ...(retryAfter ? { retryAfter } : {}) };
  };
  const missing = (tokens: readonly string[]) => {
    catchUp();
    return tokens.filter((token) => !copies.has(token));
  };
  const chat = {
    get stats() {
      catchUp();
      return { requests: fake.requests, accepted: fake.messages.length, ...failures, ...repeats };
    },
    /** The webhook URL, shaped like Chat's, with this run's key and token. */
    url: `http://127.0.0.1:${fake.port}/v1/spaces/${SPACE}/messages?key=${chatKey}&token=${chatToken}`,
    /** On: random spells of failure from now on. Off: every post is accepted from now on. */
    setChaos,
    missing,
    /** Among `tokens`: events that arrived more than once, and the most copies of one. */
    duplicates(tokens: readonly string[]) {
      catchUp();
      const counts = tokens.map((token) => copies.get(token) ?? 0);
      return { events: counts.filter((n) => n > 1).length, maxCopies: Math.max(0, ...counts) };
    },
    /** Resolves true once every token is in Chat, false at the timeout. */
    waitForTokens: (tokens: readonly string[], timeoutMs: number) => {
      const all = fake.waitFor(() => missing(tokens).length === 0, timeoutMs);
      return all.then(() => true).catch(() => false);
    },
  };
  context.later(() => {
    setChaos(false);
    return fake.close();
  });
  return chat;
}

/**
 * Plays Vast.ai (bench/burst.ts's sender): first attempts leave at a fixed rate, each retried with
 * growing, jittered delays until acknowledged or the deadline passes. The policy is quicker than a
 * real sender's would likely be (and effectively unbounded in attempts), so that a run of minutes
 * sees every event through. `acked` holds the tokens of the events that got a 2xx.
 */
const POLICY: RetryPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 3000,
  maxAttempts: 10_000,
  timeoutMs: 10_000,
};

export async function sendLikeVast(
  context: h.PartContext,
  serve: h.Serve,
  events: readonly h.SoakEvent[],
  options: { concurrency: number; ratePerS: number; seedOffset: number; deadlineS: number },
) {
  const target = { ...serve, secret: context.secrets.webhookSecret };
  const { concurrency, ratePerS, seedOffset, deadlineS } = options;
  const sending = { concurrency, ratePerS, policy: POLICY, seed: context.seed + seedOffset };
  const acked = new Set<string>();
  const deadline = AbortSignal.timeout(deadlineS * 1000);
  const onAck = (event: h.SoakEvent) => acked.add(event.token);
  return {
    ...(await sendBurst(target, events, sending, deadline, performance.now(), onAck)),
    acked,
  };
}
