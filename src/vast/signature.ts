import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Vast.ai signs each delivery with HMAC-SHA256 over `<X-Vast-Timestamp>.<raw body bytes>`,
 * keyed by the webhook secret's UTF-8 bytes, sent as `sha256=<hex>` (docs/vast-api.md).
 */
export const SIGNATURE_PREFIX = "sha256=";

/** Deliveries whose timestamp is further than this from now, either way, are refused. */
export const MAX_SIGNATURE_AGE_SECONDS = 300;

export function signPayload(secret: string, timestamp: string, rawBody: Uint8Array): string {
  const hmac = createHmac("sha256", Buffer.from(secret, "utf8"));
  hmac.update(`${timestamp}.`, "utf8");
  hmac.update(rawBody);
  return SIGNATURE_PREFIX + hmac.digest("hex");
}

export interface SignedHeaders {
  timestamp: string | undefined;
  signature: string | undefined;
}

export type VerifyResult = { ok: true } | { ok: false; reason: "missing" | "stale" | "mismatch" };

/**
 * Checks a delivery against every secret still accepted (the current one and, during a rotation,
 * the previous one). The raw bytes are verified, never re-encoded JSON.
 */
export function verifySignature(
  secrets: readonly string[],
  headers: SignedHeaders,
  rawBody: Uint8Array,
  nowSeconds: number,
): VerifyResult {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return { ok: false, reason: "missing" };
  // Only plain decimal seconds: anything else cannot have come from Vast.ai.
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "mismatch" };
  if (Math.abs(nowSeconds - Number(timestamp)) > MAX_SIGNATURE_AGE_SECONDS) {
    return { ok: false, reason: "stale" };
  }
  const received = Buffer.from(signature, "utf8");
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(signPayload(secret, timestamp, rawBody), "utf8");
    // timingSafeEqual needs equal lengths; a length difference reveals nothing about the secret.
    // Every secret is checked so the time taken does not tell which one matched.
    if (received.length === expected.length && timingSafeEqual(received, expected)) matched = true;
  }
  return matched ? { ok: true } : { ok: false, reason: "mismatch" };
}
