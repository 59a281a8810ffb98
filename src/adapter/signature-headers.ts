import {
  MAX_SIGNATURE_AGE_SECONDS,
  SIGNATURE_PREFIX,
  type SignedHeaders,
} from "../vast/signature.js";

/**
 * What the signature headers alone can tell, before a byte of the body is read: a delivery without
 * them, with a timestamp outside the window, or with a signature no HMAC could produce is refused
 * at once, so an anonymous sender cannot make the adapter buffer and hash 256 KiB for nothing.
 * The same rules as verifySignature, which still decides everything else.
 */
export type HeaderProblem = "missing" | "malformed" | "stale";

const SIGNATURE_SHAPE = new RegExp(`^${SIGNATURE_PREFIX}[0-9a-f]{64}$`);

export function signatureHeadersProblem(
  headers: SignedHeaders,
  nowSeconds: number,
): HeaderProblem | undefined {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return "missing";
  // Only plain decimal seconds and lower-case hex: anything else cannot have come from Vast.ai.
  if (!/^\d{1,12}$/.test(timestamp) || !SIGNATURE_SHAPE.test(signature)) return "malformed";
  if (Math.abs(nowSeconds - Number(timestamp)) > MAX_SIGNATURE_AGE_SECONDS) return "stale";
  return undefined;
}
