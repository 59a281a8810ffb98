import { request } from "undici";
import { signPayload } from "./signature.js";

/**
 * Sends one notification the way Vast.ai delivers it (docs/vast-api.md): JSON body, the
 * X-Vast-* headers, a signature over a fresh timestamp. Used by `trigger` and the demo.
 */
export interface SentEvent {
  status: number;
  /** The receiver's answer, parsed when it is JSON. */
  answer: unknown;
}

export async function sendSignedEvent(
  url: URL | string,
  secret: string,
  event: { event_id: string },
  options: { attempt?: number; timeoutMs?: number; now?: () => number } = {},
): Promise<SentEvent> {
  const body = Buffer.from(JSON.stringify(event), "utf8");
  const timestamp = String(Math.floor((options.now?.() ?? Date.now()) / 1000));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const response = await request(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-vast-event-id": event.event_id,
      "x-vast-delivery-attempt": String(options.attempt ?? 1),
      "x-vast-timestamp": timestamp,
      "x-vast-signature-256": signPayload(secret, timestamp, body),
    },
    body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await response.body.text();
  let answer: unknown = text;
  try {
    answer = JSON.parse(text);
  } catch {
    // Not JSON: keep the text as it came.
  }
  return { status: response.statusCode, answer };
}
