import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { text } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { type RetryPolicy, seededRandom, sendBurst } from "../burst.js";
import * as h from "./harness.js";

/**
 * The two sides serve talks to: Vast.ai sending it events, and a Google Chat webhook on loopback
 * that fails the way Chat does, at random: spells of 500, of 429 with Retry-After, and of requests
 * never answered (their connections dropped when the spell ends), single failures in between. A
 * message counts only once answered 200, so repeats can only come from the adapter. Unlike
 * test/support's FakeChat it changes its behaviour by itself and keeps only the event tokens.
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
const OPENING: ReadonlyArray<[Mode, number]> = [
  ["ok", 1500],
  ["error500", 1500],
  ["ok", 1500],
  ["throttle429", 1500],
  ["ok", 1500],
  ["hang", 2000],
];
/** How long an accepted post waits for its answer while chaos is on (real Chat: ~100–500 ms). */
const ANSWER_DELAY_MS = [20, 400] as const;
/** While "ok": the odd single failure. */
const SPRINKLED_500 = 0.03;
const SPRINKLED_429 = 0.02;
const SPACE = "AAAAsoakSpace";
/** Chat's answers when it fails, in Google's error shape. */
const ERRORS = {
  error500: [500, "INTERNAL", "Internal error encountered."],
  throttle429: [429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."],
  wrongCredentials: [404, "NOT_FOUND", "Requested entity was not found."],
  badJson: [400, "INVALID_ARGUMENT", "Invalid JSON payload."],
} as const;

export type ChaosChat = Awaited<ReturnType<typeof startChaosChat>>;

/** Closed after the part, with its other leftovers. */
export async function startChaosChat(context: h.PartContext, seedOffset: number) {
  const random = seededRandom(context.seed + seedOffset);
  const { chatKey, chatToken } = context.secrets;
  const stats = {
    requests: 0,
    accepted: 0,
    error500: 0,
    throttle429: 0,
    hang: 0,
    badJson: 0,
    /** Posts with the wrong key or token: would mean the adapter mangled its URL. */
    wrongCredentials: 0,
    /** Accepted messages that carried at least one event Chat already had: a repeated post. */
    repeatPosts: 0,
    /** Of those, how many repeated a requestId Chat had accepted (real Chat could drop them). */
    repeatPostsWithKnownRequestId: 0,
  };
  /** How many accepted messages carried each token (once per message, however often shown). */
  const copies = new Map<string, number>();
  const requestIds = new Set<string>();
  const hanging = new Set<Socket>();
  let [mode, chaos, spellsPlayed]: [Mode, boolean, number] = ["ok", false, 0];
  let spellTimer: NodeJS.Timeout | undefined;
  const enter = (next: Mode) => {
    if (next !== "hang") for (const socket of hanging) socket.destroy();
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

  const server = createServer(async (req, res) => {
    const body = await text(req).catch(() => undefined);
    if (body === undefined) return; // The adapter was killed while it posted.
    stats.requests++;
    const { pathname, searchParams: query } = new URL(req.url ?? "/", "http://chat.invalid");
    const roll = chaos && mode === "ok" ? random() : 1;
    let now: Mode | keyof typeof ERRORS =
      roll < SPRINKLED_500
        ? "error500"
        : roll < SPRINKLED_500 + SPRINKLED_429
          ? "throttle429"
          : mode;
    if (
      pathname !== `/v1/spaces/${SPACE}/messages` ||
      query.get("key") !== chatKey ||
      query.get("token") !== chatToken
    ) {
      now = "wrongCredentials";
    } else if (now === "ok" && !isJson(body)) now = "badJson";
    if (now !== "ok") stats[now]++;
    if (now === "hang") {
      hanging.add(req.socket);
      req.socket.once("close", () => hanging.delete(req.socket));
      return;
    }
    if (now !== "ok") {
      const [code, status, message] = ERRORS[now];
      // Seconds, sometimes an HTTP date, as proxies in front of Chat send it.
      const seconds = () => (random() < 0.8 ? String(1 + Math.floor(random() * 2)) : undefined);
      const retryAfter =
        now === "throttle429" && (seconds() ?? new Date(Date.now() + 2000).toUTCString());
      const headers = retryAfter ? { "retry-after": retryAfter } : {};
      return answer(res, code, JSON.stringify({ error: { code, message, status } }), headers);
    }
    // Created now, answered a moment later, as Chat takes its time: a kill in between leaves
    // a message the adapter never heard of, the one case where it may post the same again.
    stats.accepted++;
    const tokens = [...new Set(body.match(h.TOKEN_PATTERN))];
    const requestId = query.get("requestId");
    if (tokens.some((token) => copies.has(token))) {
      stats.repeatPosts++;
      if (requestId !== null && requestIds.has(requestId)) stats.repeatPostsWithKnownRequestId++;
    }
    for (const token of tokens) h.countInto(copies, token);
    if (requestId !== null) requestIds.add(requestId);
    const name = `spaces/${SPACE}/messages/${stats.accepted}`;
    const [min, max] = chaos ? ANSWER_DELAY_MS : [0, 0];
    await sleep(min + random() * (max - min));
    answer(res, 200, JSON.stringify({ name }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const missing = (tokens: readonly string[]) => tokens.filter((token) => !copies.has(token));
  const chat = {
    stats,
    /** The webhook URL, shaped like Chat's, with this run's key and token. */
    url: `http://127.0.0.1:${port}/v1/spaces/${SPACE}/messages?key=${chatKey}&token=${chatToken}`,
    /** On: random spells of failure from now on. Off: every post is accepted from now on. */
    setChaos,
    missing,
    /** Among `tokens`: events that arrived more than once, and the most copies of one. */
    duplicates(tokens: readonly string[]) {
      const counts = tokens.map((token) => copies.get(token) ?? 0);
      return { events: counts.filter((n) => n > 1).length, maxCopies: Math.max(0, ...counts) };
    },
    /** Resolves true once every token is in Chat, false at the timeout. */
    async waitForTokens(tokens: readonly string[], timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (missing(tokens).length > 0 && Date.now() < deadline) await sleep(100);
      return missing(tokens).length === 0;
    },
  };
  context.later(async () => {
    setChaos(false);
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });
  return chat;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function answer(res: ServerResponse, status: number, body: string, headers = {}): void {
  // The adapter may have been killed while its answer was on the way.
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(body);
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
  const { concurrency, ratePerS } = options;
  const sending = {
    concurrency,
    ratePerS,
    policy: POLICY,
    seed: context.seed + options.seedOffset,
  };
  const acked = new Set<string>();
  const deadline = AbortSignal.timeout(options.deadlineS * 1000);
  const stats = await sendBurst(target, events, sending, deadline, performance.now(), (event) =>
    acked.add(event.token),
  );
  return { ...stats, acked };
}
