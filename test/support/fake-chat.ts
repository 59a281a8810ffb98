import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { checkChatMessage } from "./chat-schema/check.js";

/**
 * A stand-in for a Google Chat incoming webhook (docs/google-chat.md), on loopback. It refuses what
 * Google refuses, with 400 INVALID_ARGUMENT: a body that is not a google.chat.v1.Message by Google's
 * own protos (unknown fields, bad enum values, broken cards, lone surrogates: chat-schema/check.ts),
 * `text` over 4,096 characters, a body over 32,000 bytes. It records the messages it accepted and
 * can be told to fail the way Chat does: 429 RESOURCE_EXHAUSTED, 500, 400 INVALID_ARGUMENT, or a
 * request that never gets an answer; everywhere (`behaviour`) or in one space (`spaceBehaviour`,
 * e.g. a space whose webhook was deleted answering 404 beside healthy ones).
 */
export type ChatBehaviour =
  | { kind: "ok"; delayMs?: number }
  | { kind: "status"; status: number; retryAfter?: string; message?: string }
  | { kind: "hang" };

export interface ReceivedMessage {
  space: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

/** Google's documented cap on a whole message (create-messages page, message.proto). */
const MAX_BODY_BYTES = 32_000;
/** Seen refused as "Message is longer than 4096 characters" (docs/google-chat.md, "Size"). */
const MAX_TEXT_CHARACTERS = 4096;

/** Why Google would refuse this body, or undefined when it would take it. */
function refusal(raw: Buffer): string | undefined {
  if (raw.length > MAX_BODY_BYTES) return `Message is larger than ${MAX_BODY_BYTES} bytes`;
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    return "Invalid JSON payload received.";
  }
  const problems = checkChatMessage(body);
  if (problems.length > 0) return `Invalid JSON payload received. ${problems.join("; ")}`;
  const text = (body as { text?: unknown }).text;
  if (typeof text === "string" && text.length > MAX_TEXT_CHARACTERS) {
    return `Message is longer than ${MAX_TEXT_CHARACTERS} characters`;
  }
  return undefined;
}

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
};

export class FakeChat {
  readonly messages: ReceivedMessage[] = [];
  /** Every request, answered or not. */
  requests = 0;
  behaviour: ChatBehaviour = { kind: "ok" };
  /** How one space answers, by space id, instead of `behaviour`. */
  readonly spaceBehaviour = new Map<string, ChatBehaviour>();
  /** Requests by space id, answered or not. */
  readonly requestsBySpace = new Map<string, number>();
  /**
   * Chat's own limit: about one message a second per space, 429 RESOURCE_EXHAUSTED beyond
   * (docs/google-chat.md). Off (undefined) by default.
   */
  ratePerSecond: number | undefined;
  /** How many posts the limit refused. */
  throttled = 0;
  /** Answer 400 INVALID_ARGUMENT to messages this picks out (a bad message among good ones). */
  refuseIf: ((body: Record<string, unknown>) => boolean) | undefined;
  /**
   * Decides every post's answer itself (the soak's chaos Chat) instead of `behaviour`: the key
   * check and the rate limit are then left to it. A message it lets through is still refused as
   * Google would refuse it.
   */
  decide:
    | ((post: { space: string; query: URLSearchParams; raw: Buffer }) => ChatBehaviour)
    | undefined;
  /** The reasons of every 400 it answered because Google would have refused the message. */
  readonly refused: string[] = [];
  private readonly lastAcceptedAt = new Map<string, number>();
  private readonly server: Server;
  private readonly hanging = new Set<IncomingMessage>();
  /** The requestId of every post left without an answer, in order. */
  readonly hungRequestIds: string[] = [];
  private waiters: Array<() => void> = [];

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(): Promise<FakeChat> {
    const server = createServer();
    const chat = new FakeChat(server);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "http://fake");
        const space = /^\/v1\/spaces\/([^/]+)\/messages$/.exec(url.pathname)?.[1];
        // As Google's front end does: an unknown path is 404, another method on it 405; neither
        // counts as a post to any space.
        if (space === undefined || req.method !== "POST") {
          const status = space === undefined ? 404 : 405;
          res.writeHead(status, { "content-type": "application/json" });
          const name = status === 404 ? "NOT_FOUND" : "METHOD_NOT_ALLOWED";
          res.end(JSON.stringify({ error: { code: status, message: "fake", status: name } }));
          return;
        }
        chat.requests++;
        chat.requestsBySpace.set(space, (chat.requestsBySpace.get(space) ?? 0) + 1);
        chat.notify();
        const raw = Buffer.concat(chunks);
        const decided = chat.decide?.({ space, query: url.searchParams, raw });
        // A webhook URL carries its key and token (docs/google-chat.md); Chat refuses a post
        // without them. Its exact answer is not published: 403 PERMISSION_DENIED, as Google's
        // APIs answer a request without a valid API key, is inferred.
        if (!decided && (!url.searchParams.get("key") || !url.searchParams.get("token"))) {
          res.writeHead(403, { "content-type": "application/json" });
          const message = "The request is missing a valid API key or webhook token.";
          res.end(JSON.stringify({ error: { code: 403, message, status: "PERMISSION_DENIED" } }));
          return;
        }
        const behaviour = decided ?? chat.spaceBehaviour.get(space) ?? chat.behaviour;
        if (behaviour.kind === "hang") {
          chat.hanging.add(req);
          chat.hungRequestIds.push(
            new URL(req.url ?? "/", "http://chat.invalid").searchParams.get("requestId") ?? "",
          );
          return;
        }
        if (behaviour.kind === "status") {
          const status = STATUS_NAMES[behaviour.status] ?? "UNKNOWN";
          res.writeHead(behaviour.status, {
            "content-type": "application/json",
            ...(behaviour.retryAfter ? { "retry-after": behaviour.retryAfter } : {}),
          });
          res.end(
            JSON.stringify({
              error: {
                code: behaviour.status,
                message: behaviour.message ?? `fake ${status}`,
                status,
              },
            }),
          );
          chat.notify();
          return;
        }
        if (!decided && chat.isOverLimit(space)) {
          chat.throttled++;
          res.writeHead(429, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: {
                code: 429,
                message: "Resource has been exhausted (e.g. check quota).",
                status: "RESOURCE_EXHAUSTED",
              },
            }),
          );
          chat.notify();
          return;
        }
        const invalid = refusal(raw);
        if (invalid !== undefined) {
          chat.refused.push(invalid);
          res.writeHead(400, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: { code: 400, message: invalid, status: "INVALID_ARGUMENT" },
            }),
          );
          chat.notify();
          return;
        }
        const body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
        if (chat.refuseIf?.(body)) {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: { code: 400, message: "Invalid message", status: "INVALID_ARGUMENT" },
            }),
          );
          chat.notify();
          return;
        }
        const answer = () => {
          chat.messages.push({ space, query: url.searchParams, body });
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ name: `spaces/${space}/messages/${chat.messages.length}` }));
          chat.notify();
        };
        if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
        else answer();
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return chat;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** A webhook URL of Chat's shape; key and token are what a real one would carry as secrets. */
  webhookUrl(space = "AAAAfakeSpace"): string {
    return `http://127.0.0.1:${this.port}/v1/spaces/${space}/messages?key=fake-key-123&token=fake-token-456`;
  }

  /** Resolves once `predicate` holds, checked after every request the fake handles. */
  async waitFor(predicate: (chat: FakeChat) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `fake Chat: condition not met in ${timeoutMs} ms (${this.messages.length} messages, ${this.requests} requests)`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForMessages(count: number, timeoutMs?: number): Promise<void> {
    return this.waitFor((chat) => chat.messages.length >= count, timeoutMs);
  }

  /** Ends hung requests by dropping their connections, as a dying Chat frontend would. */
  releaseHanging(): void {
    for (const req of this.hanging) req.socket.destroy();
    this.hanging.clear();
  }

  async close(): Promise<void> {
    this.releaseHanging();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }

  private isOverLimit(space: string): boolean {
    if (this.ratePerSecond === undefined) return false;
    const now = Date.now();
    const last = this.lastAcceptedAt.get(space);
    if (last !== undefined && now - last < 1000 / this.ratePerSecond) return true;
    this.lastAcceptedAt.set(space, now);
    return false;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
