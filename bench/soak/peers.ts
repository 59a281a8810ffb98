import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { text } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { deliveryOutcome } from "../../src/vast/delivery-outcome.js";
import { type RetryPolicy, retryDelayMs, seededRandom } from "../burst.js";
import { attemptDelivery } from "../vast-attempt.js";
import {
  countInto,
  type PartContext,
  type SoakEvent,
  type SoakSecrets,
  TOKEN_PATTERN,
} from "./harness.js";

/** The two sides serve talks to: Vast.ai sending it events, and Google Chat failing at random. */

/**
 * A Google Chat incoming webhook on loopback that fails the way Chat does, at random: spells of
 * 500 INTERNAL, of 429 RESOURCE_EXHAUSTED with Retry-After, and of requests that get no answer at
 * all (ended by dropping the connection when the spell is over, as a dying frontend would), with
 * single failures sprinkled in between. A message is recorded only when it is answered 200, so a
 * failed post is never in Chat: repeats can only come from the adapter.
 *
 * The test/support FakeChat has one behaviour for all requests and keeps every body; this one
 * changes its behaviour by itself and keeps only the event tokens, so it can run for minutes.
 */
type Mode = "ok" | "error500" | "throttle429" | "hang";

/** Spells: chance of each mode when one ends, and how long (ms, uniform) it lasts. */
const SPELLS: ReadonlyArray<[Mode, number, [number, number]]> = [
  ["ok", 0.6, [1000, 4000]],
  ["error500", 0.15, [300, 2500]],
  ["throttle429", 0.15, [300, 2500]],
  ["hang", 0.1, [500, 3000]],
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

export class ChaosChat {
  readonly stats = {
    requests: 0,
    accepted: 0,
    answered500: 0,
    answered429: 0,
    hung: 0,
    /** Posts with the wrong key or token: would mean the adapter mangled its URL. */
    wrongCredentials: 0,
    unparseable: 0,
  };
  /** How many accepted messages carried each token (once per message, however often shown). */
  readonly copies = new Map<string, number>();
  /** Accepted messages that carried at least one event Chat already had: a repeated post. */
  repeatPosts = 0;
  /** Of those, how many repeated a requestId Chat had accepted (real Chat could drop them). */
  repeatPostsWithKnownRequestId = 0;
  private readonly requestIds = new Set<string>();
  private mode: Mode = "ok";
  private chaos = false;
  private spellsPlayed = 0;
  private spellTimer: NodeJS.Timeout | undefined;
  private readonly hanging = new Set<Socket>();
  private readonly server = createServer((req, res) => void this.handle(req, res).catch(() => {}));

  private constructor(
    private readonly secrets: SoakSecrets,
    private readonly random: () => number,
  ) {}

  /** Closed after the part, with its other leftovers. */
  static async start(context: PartContext, seedOffset: number): Promise<ChaosChat> {
    const chat = new ChaosChat(context.secrets, seededRandom(context.seed + seedOffset));
    chat.server.listen(0, "127.0.0.1");
    await once(chat.server, "listening");
    context.later(() => chat.close());
    return chat;
  }

  /** The webhook URL, shaped like Chat's, with this run's key and token. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    const { chatKey, chatToken } = this.secrets;
    return `http://127.0.0.1:${port}/v1/spaces/${SPACE}/messages?key=${chatKey}&token=${chatToken}`;
  }

  /** On: random spells of failure from now on. Off: every post is accepted from now on. */
  setChaos(on: boolean): void {
    this.chaos = on;
    clearTimeout(this.spellTimer);
    if (on) this.nextSpell();
    else this.enter("ok");
  }

  missing(tokens: readonly string[]): string[] {
    return tokens.filter((token) => !this.copies.has(token));
  }

  /** Among `tokens`: events that arrived more than once, and the most copies of one. */
  duplicates(tokens: readonly string[]): { events: number; maxCopies: number } {
    const copies = tokens.map((token) => this.copies.get(token) ?? 0);
    return { events: copies.filter((n) => n > 1).length, maxCopies: Math.max(0, ...copies) };
  }

  /** Resolves true once every token is in Chat, false at the timeout. */
  async waitForTokens(tokens: readonly string[], timeoutMs: number): Promise<boolean> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
      if (this.missing(tokens).length === 0) return true;
    }
    return this.missing(tokens).length === 0;
  }

  async close(): Promise<void> {
    this.setChaos(false);
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }

  private nextSpell(): void {
    let [mode, ms]: [Mode, number] = OPENING[this.spellsPlayed++] ?? ["ok", 0];
    if (this.spellsPlayed > OPENING.length) {
      let pick = this.random();
      const spell = SPELLS.find(([, weight]) => {
        pick -= weight;
        return pick < 0;
      });
      const [chosen, , [min, max]] = spell ?? ["ok", 0, [1000, 4000]];
      [mode, ms] = [chosen, min + this.random() * (max - min)];
    }
    this.enter(mode);
    this.spellTimer = setTimeout(() => this.nextSpell(), ms);
  }

  private enter(mode: Mode): void {
    if (mode !== "hang") {
      for (const socket of this.hanging) socket.destroy();
      this.hanging.clear();
    }
    this.mode = mode;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await text(req);
    this.stats.requests++;
    const url = new URL(req.url ?? "/", "http://chat.invalid");
    const error = (code: number, status: string, message: string, headers = {}) =>
      answer(res, code, JSON.stringify({ error: { code, message, status } }), headers);
    if (
      url.pathname !== `/v1/spaces/${SPACE}/messages` ||
      url.searchParams.get("key") !== this.secrets.chatKey ||
      url.searchParams.get("token") !== this.secrets.chatToken
    ) {
      this.stats.wrongCredentials++;
      return error(404, "NOT_FOUND", "Requested entity was not found.");
    }
    let mode = this.mode;
    if (this.chaos && mode === "ok") {
      const roll = this.random();
      if (roll < SPRINKLED_500) mode = "error500";
      else if (roll < SPRINKLED_500 + SPRINKLED_429) mode = "throttle429";
    }
    if (mode === "hang") {
      this.stats.hung++;
      this.hanging.add(req.socket);
      req.socket.once("close", () => this.hanging.delete(req.socket));
      return;
    }
    if (mode === "error500") {
      this.stats.answered500++;
      return error(500, "INTERNAL", "Internal error encountered.");
    }
    if (mode === "throttle429") {
      this.stats.answered429++;
      // Seconds, sometimes an HTTP date, as proxies in front of Chat send it.
      const retryAfter =
        this.random() < 0.8
          ? String(1 + Math.floor(this.random() * 2))
          : new Date(Date.now() + 2000).toUTCString();
      const message = "Resource has been exhausted (e.g. check quota).";
      return error(429, "RESOURCE_EXHAUSTED", message, { "retry-after": retryAfter });
    }
    try {
      JSON.parse(body);
    } catch {
      this.stats.unparseable++;
      return error(400, "INVALID_ARGUMENT", "Invalid JSON payload.");
    }
    // Created now, answered a moment later, as Chat takes its time: a kill in between leaves
    // a message the adapter never heard of, the one case where it may post the same again.
    this.stats.accepted++;
    this.record(body, url.searchParams.get("requestId"));
    const name = `spaces/${SPACE}/messages/${this.stats.accepted}`;
    const [min, max] = this.chaos ? ANSWER_DELAY_MS : [0, 0];
    await sleep(min + this.random() * (max - min));
    answer(res, 200, JSON.stringify({ name }));
  }

  private record(body: string, requestId: string | null): void {
    let repeat = false;
    for (const token of new Set(body.match(TOKEN_PATTERN))) {
      repeat ||= this.copies.has(token);
      countInto(this.copies, token);
    }
    if (repeat) {
      this.repeatPosts++;
      if (requestId !== null && this.requestIds.has(requestId))
        this.repeatPostsWithKnownRequestId++;
    }
    if (requestId !== null) this.requestIds.add(requestId);
  }
}

function answer(res: ServerResponse, status: number, body: string, headers = {}): void {
  // The adapter may have been killed while its answer was on the way.
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(body);
}

/**
 * Plays Vast.ai: each event is sent with a fresh timestamp and signature on every attempt, and
 * retried with growing, jittered delays after a non-2xx retryable answer or a connection error,
 * until it is acknowledged or the deadline passes. First attempts leave at a fixed rate; the
 * pool's connections bound the requests in flight, as a webhook sender's small worker pool.
 *
 * Vast.ai does not publish its retry schedule; the policy here is quicker than a real sender's
 * would likely be (and effectively unbounded in attempts), so that a run of minutes sees every
 * event through.
 */
export const SOAK_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 3000,
  maxAttempts: 10_000,
  timeoutMs: 10_000,
};

export interface SenderReport {
  /** Tokens of the events that got a 2xx. */
  acked: Set<string>;
  attempts: number;
  /** Non-2xx answers, by status. */
  statuses: Map<number, number>;
  /** Attempts without an answer, by error code. */
  errors: Map<string, number>;
  /** Events answered with a final 4xx (not 408/429), by status: a sender gives up on those. */
  refused: Map<number, number>;
  /** Events still unacknowledged at the deadline. */
  cutOff: number;
}

export async function sendLikeVast(
  target: { origin: string; path: string; secret: string },
  events: readonly SoakEvent[],
  options: { concurrency: number; ratePerS: number; random: () => number; deadlineS: number },
): Promise<SenderReport> {
  const policy = SOAK_RETRY_POLICY;
  const deadline = Date.now() + options.deadlineS * 1000;
  const report: SenderReport = {
    acked: new Set(),
    attempts: 0,
    statuses: new Map(),
    errors: new Map(),
    refused: new Map(),
    cutOff: 0,
  };
  const pool = new Pool(target.origin, {
    connections: options.concurrency,
    pipelining: 1,
    connectTimeout: policy.timeoutMs,
    headersTimeout: policy.timeoutMs,
    bodyTimeout: policy.timeoutMs,
  });
  const deliver = async (event: SoakEvent, index: number): Promise<void> => {
    await sleep((index / options.ratePerS) * 1000);
    for (let number = 1; number <= policy.maxAttempts && Date.now() < deadline; number++) {
      report.attempts++;
      const timeout = AbortSignal.timeout(policy.timeoutMs);
      const result = await attemptDelivery(pool, target, event, number, timeout);
      if (result.kind === "acked") return void report.acked.add(event.token);
      if (result.kind === "no answer") countInto(report.errors, result.code);
      else {
        countInto(report.statuses, result.status);
        if (deliveryOutcome(result.status) !== "retry")
          return countInto(report.refused, result.status);
      }
      const delay = retryDelayMs(number, policy, options.random);
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    }
    report.cutOff++;
  };
  try {
    await Promise.all(events.map(deliver));
  } finally {
    await pool.destroy();
  }
  return report;
}
