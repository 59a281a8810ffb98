import { request } from "undici";
import { deliveryHeaders } from "./delivery-headers.js";

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
  const timeoutMs = options.timeoutMs ?? 10_000;
  const response = await request(url, {
    method: "POST",
    headers: deliveryHeaders({
      secret,
      body,
      eventId: event.event_id,
      attempt: options.attempt ?? 1,
      timestampSeconds: Math.floor((options.now?.() ?? Date.now()) / 1000),
    }),
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
