import { bench, describe } from "vitest";
import { DEFAULT_MAX_BODY_BYTES } from "../../src/adapter/server.js";
import { signatureHeadersProblem } from "../../src/adapter/signature-headers.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { type SignedHeaders, signPayload, verifySignature } from "../../src/vast/signature.js";

/**
 * What checking a delivery's signature costs the receiver, per request (`npx vitest bench`). Each
 * run checks its own verdict, so a bench that measured a refusal by mistake fails instead.
 */
const SECRET = "whsec-bench-3f9a0c1d2e";
const PREVIOUS = "whsec-bench-previous-8b7a";
const now = Math.floor(Date.now() / 1000);

function signedWith(secret: string, body: Buffer): SignedHeaders {
  const timestamp = String(now);
  return { timestamp, signature: signPayload(secret, timestamp, body) };
}

const typical = Buffer.from(JSON.stringify(sampleEvent("instance_stopped")));
const largest = Buffer.from(
  JSON.stringify({
    ...sampleEvent("low_credit"),
    message: "x".repeat(DEFAULT_MAX_BODY_BYTES - 400),
  }),
);

function expectVerdict(
  ok: boolean,
  secrets: readonly string[],
  headers: SignedHeaders,
  body: Buffer,
) {
  if (verifySignature(secrets, headers, body, now).ok !== ok) throw new Error("unexpected verdict");
}

describe(`verifySignature, a typical delivery (${typical.length} bytes)`, () => {
  const good = signedWith(SECRET, typical);
  const byPrevious = signedWith(PREVIOUS, typical);
  const forged = signedWith("not-the-secret", typical);

  bench("one secret, valid", () => expectVerdict(true, [SECRET], good, typical));
  bench("two secrets during a rotation, signed with the previous one", () =>
    expectVerdict(true, [SECRET, PREVIOUS], byPrevious, typical),
  );
  bench("a forgery: every secret checked, none matches", () =>
    expectVerdict(false, [SECRET, PREVIOUS], forged, typical),
  );
});

describe(`verifySignature, a body at the cap (${largest.length} bytes)`, () => {
  const good = signedWith(SECRET, largest);
  bench("one secret, valid", () => expectVerdict(true, [SECRET], good, largest));
});

describe("signatureHeadersProblem: the refusal before a byte of the body is read", () => {
  const good = signedWith(SECRET, typical);
  const stale = { ...good, timestamp: String(now - 301) };
  bench("fresh and well formed (the body decides)", () => {
    if (signatureHeadersProblem(good, now) !== undefined) throw new Error("refused");
  });
  bench("stale", () => {
    if (signatureHeadersProblem(stale, now) !== "stale") throw new Error("not refused");
  });
});
