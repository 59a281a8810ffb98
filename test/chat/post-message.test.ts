import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createChatPoster, parseRetryAfter } from "../../src/chat/post-message.js";

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

describe("a post to Chat", () => {
  it("has one deadline for the whole post, even when Chat trickles its answer", async () => {
    // Headers at once, then a byte every 50 ms for ever: each read is quick, the post never ends.
    // undici's own timeouts (per phase) would wait; the post's deadline does not.
    const server = createServer((request, response) => {
      request.resume();
      response.writeHead(500, { "content-type": "application/json" });
      const drip = setInterval(() => response.write(" "), 50);
      response.on("close", () => clearInterval(drip));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const poster = createChatPoster(
        new URL(`http://127.0.0.1:${port}/v1/spaces/AAAA/messages?key=k&token=t`),
        { timeoutMs: 300 },
      );
      const startedAt = performance.now();
      const outcome = await poster.post({ text: "hello" }, undefined, "vast-1");
      // A 500 whose body never ends: retried, as any 500 is.
      expect(outcome).toMatchObject({ kind: "retry", status: 500 });
      // Bounded by the deadline, with room for a busy machine; the drip alone would never end.
      expect(performance.now() - startedAt).toBeLessThan(5_000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
