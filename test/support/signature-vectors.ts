import { readFileSync } from "node:fs";

/** A known answer for Vast.ai's signature, computed with Python's hmac module, outside this code. */
export interface SignatureVector {
  name: string;
  secret: string;
  timestamp: string;
  body_base64: string;
  signature: string;
}

/** The known answers of test/fixtures/signature-vectors.json (a copy of shared/docs'). */
export const SIGNATURE_VECTORS: SignatureVector[] = (
  JSON.parse(
    readFileSync(new URL("../fixtures/signature-vectors.json", import.meta.url), "utf8"),
  ) as { vectors: SignatureVector[] }
).vectors;
