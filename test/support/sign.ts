import { signPayload } from "../../src/vast/signature.js";

/** Headers exactly as Vast.ai sends them with a delivery (docs/vast-api.md). */
export function vastHeaders(
  secret: string,
  body: Buffer,
  options: { timestamp?: number; eventId?: string; attempt?: number } = {},
): Record<string, string> {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  return {
    "content-type": "application/json",
    "x-vast-event-id": options.eventId ?? "header-id",
    "x-vast-delivery-attempt": String(options.attempt ?? 1),
    "x-vast-timestamp": timestamp,
    "x-vast-signature-256": signPayload(secret, timestamp, body),
  };
}

export async function postSigned(
  url: string,
  secret: string,
  payload: unknown,
  options: { timestamp?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload), "utf8");
  const response = await fetch(url, {
    method: "POST",
    headers: vastHeaders(secret, body, options),
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
