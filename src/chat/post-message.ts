import { Agent, request } from "undici";
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

function networkReason(error: unknown): string {
  const { code, name, message } = error as { code?: string; name?: string; message?: string };
  if (name === "AbortError") return "post cancelled";
  if (name === "TimeoutError") return "Chat timed out";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT")
    return "Chat timed out";
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "connecting to Chat timed out";
  return `could not reach Chat (${code ?? message ?? "network error"})`;
}

export function createChatPoster(chatUrl: URL, options: ChatPosterOptions = {}): ChatPoster {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const dispatcher = new Agent({
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });

  /**
   * Whether webhooks honour requestId is not confirmed (docs/google-chat.md). Should Chat ever
   * refuse the parameter itself, it is dropped for good rather than dead-letter every message.
   */
  let sendRequestId = true;

  async function postOnce(
    message: ChatMessage,
    signal: AbortSignal | undefined,
    requestId: string | undefined,
  ): Promise<PostOutcome> {
    const url = new URL(chatUrl);
    if (requestId) url.searchParams.set("requestId", requestId);
    // Without this parameter Chat ignores thread.threadKey and starts a new thread each time.
    if (message.thread) {
      url.searchParams.set("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    }
    try {
      const response = await request(url, {
        method: "POST",
        dispatcher,
        headers: { "content-type": "application/json; charset=UTF-8" },
        body: JSON.stringify(message),
        signal,
      });
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        // Chat has created the message: what its body says, or whether it arrives, changes nothing.
        await response.body.dump().catch(() => {});
        return { kind: "delivered", status };
      }
      const body = await response.body.text().catch(() => "");
      const reason = describeChatError(status, body);
      if (!isRetryableStatus(status)) return { kind: "rejected", status, reason };
      const header = response.headers["retry-after"];
      const retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, Date.now());
      return retryAfterMs === undefined
        ? { kind: "retry", status, reason }
        : { kind: "retry", status, reason, retryAfterMs };
    } catch (error) {
      return { kind: "retry", reason: networkReason(error) };
    }
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
