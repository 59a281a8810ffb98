import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ChatLedger } from "./chat-ledger.js";
import type { SoakSecrets } from "./secret-values.js";

/**
 * A Google Chat incoming webhook on loopback that fails the way Chat does, at random: spells of
 * 500 INTERNAL, of 429 RESOURCE_EXHAUSTED with Retry-After, and of requests that get no answer
 * at all (ended by dropping the connection when the spell is over, as a dying frontend would),
 * with single failures sprinkled in between. A message is recorded only when it is answered 200,
 * so a failed post is never in Chat: repeats can only come from the adapter.
 *
 * The test/support FakeChat has one behaviour for all requests and keeps every body; this one
 * changes its behaviour by itself and keeps only the event tokens, so it can run for minutes.
 */
type Mode = "ok" | "error500" | "throttle429" | "hang";

export interface ChaosStats {
  requests: number;
  accepted: number;
  answered500: number;
  answered429: number;
  hung: number;
  /** Posts with the wrong key or token: would mean the adapter mangled its URL. */
  wrongCredentials: number;
  unparseable: number;
}

const SPACE = "AAAAsoakSpace";

/** Spells: chance of each mode when one ends, and how long (ms, uniform) it lasts. */
const SPELLS: ReadonlyArray<{ mode: Mode; weight: number; ms: readonly [number, number] }> = [
  { mode: "ok", weight: 0.6, ms: [1000, 4000] },
  { mode: "error500", weight: 0.15, ms: [300, 2500] },
  { mode: "throttle429", weight: 0.15, ms: [300, 2500] },
  { mode: "hang", weight: 0.1, ms: [500, 3000] },
];
/** The first spells, so that every kind of failure happens at least once however short the run. */
const OPENING: ReadonlyArray<{ mode: Mode; ms: number }> = [
  { mode: "ok", ms: 1500 },
  { mode: "error500", ms: 1500 },
  { mode: "ok", ms: 1500 },
  { mode: "throttle429", ms: 1500 },
  { mode: "ok", ms: 1500 },
  { mode: "hang", ms: 2000 },
];
/** How long an accepted post waits for its answer while chaos is on (real Chat: ~100–500 ms). */
const ANSWER_DELAY_MS: readonly [number, number] = [20, 400];
/** While "ok": the odd single failure. */
const SPRINKLED_500 = 0.03;
const SPRINKLED_429 = 0.02;

function errorBody(code: number, status: string, message: string): string {
  return JSON.stringify({ error: { code, message, status } });
}

export class ChaosChat {
  readonly ledger = new ChatLedger();
  readonly stats: ChaosStats = {
    requests: 0,
    accepted: 0,
    answered500: 0,
    answered429: 0,
    hung: 0,
    wrongCredentials: 0,
    unparseable: 0,
  };
  private mode: Mode = "ok";
  private chaos = false;
  private spellsPlayed = 0;
  private spellTimer: NodeJS.Timeout | undefined;
  private readonly hanging = new Set<Socket>();
  private readonly server: Server;
  private readonly secrets: SoakSecrets;
  private readonly random: () => number;

  private constructor(server: Server, secrets: SoakSecrets, random: () => number) {
    this.server = server;
    this.secrets = secrets;
    this.random = random;
  }

  static async start(secrets: SoakSecrets, random: () => number): Promise<ChaosChat> {
    const server = createServer();
    const chat = new ChaosChat(server, secrets, random);
    server.on("request", (req, res) => chat.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
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
    this.spellTimer = undefined;
    if (on) this.nextSpell();
    else this.enter("ok");
  }

  /** Resolves true once every token is in Chat, false at the timeout. */
  async waitForTokens(tokens: readonly string[], timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let left = [...tokens];
    for (;;) {
      left = this.ledger.missing(left);
      if (left.length === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async close(): Promise<void> {
    this.setChaos(false);
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }

  private nextSpell(): void {
    const opening = OPENING[this.spellsPlayed++];
    if (opening) {
      this.enter(opening.mode);
      this.spellTimer = setTimeout(() => this.nextSpell(), opening.ms);
      return;
    }
    let pick = this.random();
    let spell = SPELLS[0];
    for (const candidate of SPELLS) {
      spell = candidate;
      pick -= candidate.weight;
      if (pick < 0) break;
    }
    if (!spell) return;
    this.enter(spell.mode);
    const [min, max] = spell.ms;
    this.spellTimer = setTimeout(() => this.nextSpell(), min + this.random() * (max - min));
  }

  private enter(mode: Mode): void {
    if (this.mode === "hang" && mode !== "hang") {
      for (const socket of this.hanging) socket.destroy();
      this.hanging.clear();
    }
    this.mode = mode;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      this.stats.requests++;
      const url = new URL(req.url ?? "/", "http://chat.invalid");
      if (
        url.pathname !== `/v1/spaces/${SPACE}/messages` ||
        url.searchParams.get("key") !== this.secrets.chatKey ||
        url.searchParams.get("token") !== this.secrets.chatToken
      ) {
        this.stats.wrongCredentials++;
        this.answer(res, 404, errorBody(404, "NOT_FOUND", "Requested entity was not found."));
        return;
      }
      const mode = this.effectiveMode();
      if (mode === "hang") {
        this.stats.hung++;
        const socket = req.socket;
        this.hanging.add(socket);
        socket.once("close", () => this.hanging.delete(socket));
        return;
      }
      if (mode === "error500") {
        this.stats.answered500++;
        this.answer(res, 500, errorBody(500, "INTERNAL", "Internal error encountered."));
        return;
      }
      if (mode === "throttle429") {
        this.stats.answered429++;
        // Seconds, sometimes an HTTP date, as proxies in front of Chat send it.
        const retryAfter =
          this.random() < 0.8
            ? String(1 + Math.floor(this.random() * 2))
            : new Date(Date.now() + 2000).toUTCString();
        this.answer(
          res,
          429,
          errorBody(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
          { "retry-after": retryAfter },
        );
        return;
      }
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        JSON.parse(text);
      } catch {
        this.stats.unparseable++;
        this.answer(res, 400, errorBody(400, "INVALID_ARGUMENT", "Invalid JSON payload."));
        return;
      }
      // Created now, answered a moment later, as Chat takes its time: a kill in between leaves
      // a message the adapter never heard of, the one case where it may post the same again.
      this.stats.accepted++;
      this.ledger.record(text, url.searchParams.get("requestId"));
      const name = `spaces/${SPACE}/messages/${this.stats.accepted}`;
      const [min, max] = this.chaos ? ANSWER_DELAY_MS : [0, 0];
      const delay = min + this.random() * (max - min);
      setTimeout(() => this.answer(res, 200, JSON.stringify({ name })), delay);
    });
  }

  private effectiveMode(): Mode {
    if (!this.chaos || this.mode !== "ok") return this.mode;
    const roll = this.random();
    if (roll < SPRINKLED_500) return "error500";
    if (roll < SPRINKLED_500 + SPRINKLED_429) return "throttle429";
    return "ok";
  }

  private answer(
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    // The adapter may have been killed while its answer was on the way.
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(body);
  }
}
