import { deliveryHeaders } from "../../src/vast/delivery-headers.js";

/**
 * Headers exactly as Vast.ai sends them with a delivery, from the one builder the emulator uses;
 * a first attempt signed now unless told otherwise (`timestamp` in Unix seconds).
 */
export function vastHeaders(
  secret: string,
  body: Buffer,
  options: { timestamp?: number; eventId?: string; attempt?: number } = {},
): Record<string, string> {
  return deliveryHeaders({
    secret,
    body,
    eventId: options.eventId ?? "header-id",
    attempt: options.attempt ?? 1,
    timestampSeconds: options.timestamp ?? Math.floor(Date.now() / 1000),
  });
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
