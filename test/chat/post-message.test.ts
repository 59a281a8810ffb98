import { describe, expect, it } from "vitest";
import { parseRetryAfter } from "../../src/chat/post-message.js";

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-11-27T12:00:00Z");
  it("reads seconds and HTTP dates, and ignores anything else", () => {
    expect(parseRetryAfter("30", now)).toBe(30_000);
    expect(parseRetryAfter("Fri, 27 Nov 2026 12:00:10 GMT", now)).toBe(10_000);
    expect(parseRetryAfter("Fri, 27 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
