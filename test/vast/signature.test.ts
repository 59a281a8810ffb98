import { describe, expect, it } from "vitest";
import { signPayload, verifySignature } from "../../src/vast/signature.js";
import { SIGNATURE_VECTORS } from "../support/signature-vectors.js";

describe("signPayload", () => {
  it.each(SIGNATURE_VECTORS)("matches the known answer: $name", (vector) => {
    const body = Buffer.from(vector.body_base64, "base64");
    expect(signPayload(vector.secret, vector.timestamp, body)).toBe(vector.signature);
  });
});

describe("verifySignature", () => {
  const [vector] = SIGNATURE_VECTORS;
  if (!vector) throw new Error("no vectors");
  const body = Buffer.from(vector.body_base64, "base64");
  const now = Number(vector.timestamp);
  const headers = { timestamp: vector.timestamp, signature: vector.signature };

  it.each(SIGNATURE_VECTORS)("accepts the known answer: $name", (v) => {
    const result = verifySignature(
      [v.secret],
      { timestamp: v.timestamp, signature: v.signature },
      Buffer.from(v.body_base64, "base64"),
      Number(v.timestamp),
    );
    expect(result).toEqual({ ok: true });
  });

  it("accepts up to 300 s either way and refuses beyond", () => {
    expect(verifySignature(["s3cr3t"], headers, body, now + 300).ok).toBe(true);
    expect(verifySignature(["s3cr3t"], headers, body, now - 300).ok).toBe(true);
    expect(verifySignature(["s3cr3t"], headers, body, now + 301)).toEqual({
      ok: false,
      reason: "stale",
    });
    expect(verifySignature(["s3cr3t"], headers, body, now - 301)).toEqual({
      ok: false,
      reason: "stale",
    });
  });

  it("refuses a wrong secret, a changed body and a changed timestamp", () => {
    expect(verifySignature(["other"], headers, body, now).ok).toBe(false);
    expect(
      verifySignature(["s3cr3t"], headers, Buffer.concat([body, Buffer.from(" ")]), now).ok,
    ).toBe(false);
    const shifted = { ...headers, timestamp: String(now + 1) };
    expect(verifySignature(["s3cr3t"], shifted, body, now).ok).toBe(false);
  });

  it("refuses missing or malformed headers", () => {
    expect(
      verifySignature(["s3cr3t"], { timestamp: undefined, signature: vector.signature }, body, now),
    ).toEqual({
      ok: false,
      reason: "missing",
    });
    expect(
      verifySignature(["s3cr3t"], { timestamp: vector.timestamp, signature: undefined }, body, now)
        .ok,
    ).toBe(false);
    const hexOnly = { ...headers, signature: vector.signature.slice("sha256=".length) };
    expect(verifySignature(["s3cr3t"], hexOnly, body, now).ok).toBe(false);
    const upper = { ...headers, signature: `sha256=${vector.signature.slice(7).toUpperCase()}` };
    expect(verifySignature(["s3cr3t"], upper, body, now).ok).toBe(false);
    for (const timestamp of ["", "abc", "1.5", "-1", " 1772490000", "1e9"]) {
      expect(verifySignature(["s3cr3t"], { ...headers, timestamp }, body, now).ok).toBe(false);
    }
  });

  it("accepts the previous secret during a rotation", () => {
    expect(verifySignature(["new-secret", "s3cr3t"], headers, body, now).ok).toBe(true);
    expect(verifySignature(["new-secret"], headers, body, now).ok).toBe(false);
  });
});
