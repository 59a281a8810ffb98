import type { Agent, IncomingHttpHeaders } from "node:http";
import { http, https } from "../http-modules.js";
import type { ChatMessage } from "./render.js";

/**
 * Posting one message to a Chat incoming webhook, and classifying the answer the way
 * docs/google-chat.md says it behaves: 429 and 5xx pass, a 400/403/404 never gets better.
 */
export type PostOutcome =
  | { kind: "delivered"; status: number }
  | { kind: "retry"; reason: string; status?: number; retryAfterMs?: number }
  | { kind: "rejected"; reason: string; status: number };

export interface ChatPoster {
  /**
   * `requestId` makes the create idempotent (Chat's spaces.messages.create): a repeat of a post
   * whose answer was lost creates no second message.
   */
  post(message: ChatMessage, signal?: AbortSignal, requestId?: string): Promise<PostOutcome>;
}

export interface ChatPosterOptions {
  /** Give up on one post after this long (connect, headers or body). */
  timeoutMs?: number;
}

/** Chat's own error body: `{"error": {"code", "message", "status"}}`. Never contains the token. */
function describeChatError(status: number, body: string): string {
  let detail = "";
  try {
    const parsed = JSON.parse(body) as { error?: { status?: unknown; message?: unknown } };
    const parts = [parsed.error?.status, parsed.error?.message].filter(
      (p) => typeof p === "string",
    );
    detail = parts.join(": ");
  } catch {
    detail = body.replace(/\s+/g, " ").trim();
  }
  detail = detail.length > 300 ? `${detail.slice(0, 300)}…` : detail;
  return detail ? `Chat answered ${status} (${detail})` : `Chat answered ${status}`;
}

/** Retry-After as seconds or an HTTP date (Chat documents none, but proxies send it). */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Why a post got no answer; an aborted one by why its signal fired (the deadline or the caller). */
function networkReason(error: unknown, connected: boolean): string {
  const { code, name, message } = error as { code?: string; name?: string; message?: string };
  if (name === "AbortError") return "post cancelled";
  if (name === "TimeoutError") return connected ? "Chat timed out" : "connecting to Chat timed out";
  return `could not reach Chat (${code ?? message ?? "network error"})`;
}

/**
 * The most of an answer's body that is read: Chat's error bodies are a few hundred bytes, and
 * the reason keeps 300 characters of one. What is beyond is not waited for.
 */
const MAX_ANSWER_BYTES = 64 * 1024;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, or what arrived of it before the cap, the deadline or a dropped connection. */
  body: string;
}

/**
 * One POST and its answer. Rejects (with why, see networkReason) only when no answer's headers
 * came; `signal` ends it at any point, the body's reading included.
 */
function exchange(url: URL, body: string, agent: Agent, signal: AbortSignal): Promise<Answer> {
  const { request } = url.protocol === "https:" ? https : http;
  let connected = false;
  /** Set once the answer's headers are in: ends the reading with what came. */
  let answered: (() => void) | undefined;
  let stop = () => {};
  return new Promise<Answer>((resolve, reject) => {
    // Node's own abort error says neither which signal fired nor in which phase: the reason does.
    const fail = (error: unknown) => reject(new PostError(networkReason(error, connected)));
    stop = () => {
      if (answered) answered();
      else fail(signal.reason);
      req.destroy();
    };
    const req = request(url, {
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json; charset=UTF-8",
        "content-length": Buffer.byteLength(body),
      },
    });
    req.on("error", fail);
    if (signal.aborted) return stop();
    signal.addEventListener("abort", stop, { once: true });
    req.on("socket", (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once("connect", () => (connected = true));
    });
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      answered = () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk.subarray(0, Math.max(0, MAX_ANSWER_BYTES - size)));
        size += chunk.length;
        if (size >= MAX_ANSWER_BYTES) stop();
      });
      // The end of the body, or a connection cut while it came: either way, what came.
      response.on("end", answered);
      response.on("error", answered);
      response.on("close", answered);
    });
    req.end(body);
  }).finally(() => signal.removeEventListener("abort", stop));
}

/** A post that got no answer, with the reason the outcome gives. */
class PostError extends Error {}

export function createChatPoster(chatUrl: URL, options: ChatPosterOptions = {}): ChatPoster {
  const timeoutMs = options.timeoutMs ?? 15_000;
  // One connection kept open between posts: a worker posts one message at a time, every second.
  // An idle one is closed after 4 s (undici's default), before a server's own idle timeout can cut
  // it under a new post; an open post is bounded by its deadline, not by this.
  const { Agent: KeepAliveAgent } = chatUrl.protocol === "https:" ? https : http;
  const agent = new KeepAliveAgent({ keepAlive: true, timeout: 4_000 });

  /**
   * Whether webhooks honour requestId is not confirmed (docs/google-chat.md). Should Chat ever
   * refuse the parameter itself, it is dropped for good rather than dead-letter every message.
   */
  let sendRequestId = true;

  async function postOnce(
    message: ChatMessage,
    signal: AbortSignal,
    requestId: string | undefined,
  ): Promise<PostOutcome> {
    const url = new URL(chatUrl);
    if (requestId) url.searchParams.set("requestId", requestId);
    // Without this parameter Chat ignores thread.threadKey and starts a new thread each time.
    if (message.thread) {
      url.searchParams.set("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    }
    let answer: Answer;
    try {
      answer = await exchange(url, JSON.stringify(message), agent, signal);
    } catch (error) {
      const reason = error instanceof PostError ? error.message : networkReason(error, false);
      return { kind: "retry", reason };
    }
    const { status } = answer;
    // Chat has created the message: what its body says, or whether it all arrived, changes nothing.
    if (status >= 200 && status < 300) return { kind: "delivered", status };
    const reason = describeChatError(status, answer.body);
    if (!isRetryableStatus(status)) return { kind: "rejected", status, reason };
    const retryAfterMs = parseRetryAfter(answer.headers["retry-after"], Date.now());
    return retryAfterMs === undefined
      ? { kind: "retry", status, reason }
      : { kind: "retry", status, reason, retryAfterMs };
  }

  return {
    async post(message, cancel, requestId) {
      // One deadline for the whole post, however its time is spent (connecting, waiting, reading,
      // a second try without the requestId): a shared store's claim on the route outlives it.
      const deadline = AbortSignal.timeout(timeoutMs);
      const signal = cancel ? AbortSignal.any([cancel, deadline]) : deadline;
      const outcome = await postOnce(message, signal, sendRequestId ? requestId : undefined);
      const refusedTheId =
        outcome.kind === "rejected" &&
        outcome.status === 400 &&
        requestId &&
        sendRequestId &&
        /request.?id/i.test(outcome.reason);
      if (!refusedTheId) return outcome;
      sendRequestId = false;
      return postOnce(message, signal, undefined);
    },
  };
}
