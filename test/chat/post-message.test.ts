import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createChatPoster, parseRetryAfter } from "../../src/chat/post-message.js";
import { FakeChat } from "../support/fake-chat.js";

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

  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  /** A Chat stand-in on loopback, closed after the test; its URL carries a key and a token. */
  async function chatServer(handler: RequestListener): Promise<{ url: URL; server: Server }> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const url = new URL(`http://127.0.0.1:${port}/v1/spaces/AAAA/messages?key=KEY&token=TOKEN`);
    return { url, server };
  }

  it("sends the message as JSON with its length, and reuses one connection", async () => {
    const seen: { body: string; length?: string | undefined; chunked?: string | undefined }[] = [];
    const queries: string[] = [];
    const chat = await chatServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        seen.push({
          body: Buffer.concat(chunks).toString("utf8"),
          length: request.headers["content-length"],
          chunked: request.headers["transfer-encoding"],
        });
        queries.push(request.url ?? "");
        response.writeHead(200, { "content-type": "application/json" });
        response.end('{"name":"spaces/AAAA/messages/1"}');
      });
    });
    let connections = 0;
    chat.server.on("connection", () => connections++);
    const poster = createChatPoster(chat.url);
    const message = { text: "héllo", thread: { threadKey: "k" } };
    expect(await poster.post(message, undefined, "vast-1")).toEqual({
      kind: "delivered",
      status: 200,
    });
    expect(await poster.post({ text: "again" })).toEqual({ kind: "delivered", status: 200 });
    expect(connections).toBe(1);
    expect(seen[0]).toEqual({
      body: JSON.stringify(message),
      length: String(Buffer.byteLength(JSON.stringify(message))),
      chunked: undefined,
    });
    expect(queries[0]).toContain("requestId=vast-1");
    expect(queries[0]).toContain("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    expect(queries[1]).not.toContain("requestId");
  });

  it("classifies Chat's answers: a refusal, a retry with Retry-After, Chat's own words", async () => {
    let answer = { status: 400, headers: {} as Record<string, string> };
    const chat = await chatServer((request, response) => {
      request.resume();
      response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      const error = { code: answer.status, message: "no such space", status: "NOT_FOUND" };
      response.end(JSON.stringify({ error }));
    });
    const poster = createChatPoster(chat.url);
    expect(await poster.post({ text: "x" })).toEqual({
      kind: "rejected",
      status: 400,
      reason: "Chat answered 400 (NOT_FOUND: no such space)",
    });
    answer = { status: 429, headers: { "retry-after": "7" } };
    expect(await poster.post({ text: "x" })).toMatchObject({
      kind: "retry",
      status: 429,
      retryAfterMs: 7000,
    });
    answer = { status: 503, headers: {} };
    const outcome = await poster.post({ text: "x" });
    expect(outcome).toMatchObject({ kind: "retry", status: 503 });
    expect(outcome).not.toHaveProperty("retryAfterMs");
  });

  it("reads at most a bounded part of an endless answer", async () => {
    // A 400 whose body never ends, in large chunks: the post ends long before its deadline.
    const chat = await chatServer((request, response) => {
      request.resume();
      response.writeHead(400, { "content-type": "text/plain" });
      const chunk = "x".repeat(16 * 1024);
      const flood = () => {
        while (response.write(chunk)) {}
      };
      response.on("drain", flood);
      flood();
    });
    const poster = createChatPoster(chat.url, { timeoutMs: 60_000 });
    const startedAt = performance.now();
    const outcome = await poster.post({ text: "x" });
    expect(outcome).toMatchObject({ kind: "rejected", status: 400 });
    expect(outcome.kind === "rejected" && outcome.reason.length).toBeLessThan(400);
    expect(performance.now() - startedAt).toBeLessThan(30_000);
  });

  it("names a post with no answer by why: the deadline, a cancel, a refused connection", async () => {
    const chat = await chatServer((request) => request.resume());
    const poster = createChatPoster(chat.url, { timeoutMs: 200 });
    expect(await poster.post({ text: "x" })).toEqual({ kind: "retry", reason: "Chat timed out" });

    const cancel = new AbortController();
    const posted = createChatPoster(chat.url).post({ text: "x" }, cancel.signal);
    chat.server.once("request", () => cancel.abort());
    expect(await posted).toEqual({ kind: "retry", reason: "post cancelled" });

    // Nothing listens on port 1 of loopback.
    const nowhere = new URL(chat.url);
    nowhere.port = "1";
    const refused = await createChatPoster(nowhere).post({ text: "x" }, undefined, "vast-1");
    expect(refused).toEqual({ kind: "retry", reason: "could not reach Chat (ECONNREFUSED)" });
  });

  it("never puts the URL's key or token in an outcome", async () => {
    const chat = await chatServer((request, response) => {
      request.resume();
      response.writeHead(500, { "content-type": "application/json" });
      response.end('{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}');
    });
    const outcome = await createChatPoster(chat.url).post({ text: "x" }, undefined, "vast-1");
    expect(outcome).toMatchObject({ kind: "retry", status: 500 });
    expect(JSON.stringify(outcome)).not.toMatch(/KEY|TOKEN/);
  });
  it("is refused for good by a Chat that gets no key or token (the URL copied short)", async () => {
    const chat = await FakeChat.start();
    try {
      const full = new URL(chat.webhookUrl());
      for (const missing of ["key", "token"]) {
        const url = new URL(full);
        url.searchParams.delete(missing);
        const outcome = await createChatPoster(url).post({ text: "hello" }, undefined, "vast-1");
        expect(outcome).toMatchObject({ kind: "rejected", status: 403 });
      }
      expect(chat.messages).toHaveLength(0);
      expect(await createChatPoster(full).post({ text: "hello" })).toMatchObject({
        kind: "delivered",
      });
    } finally {
      await chat.close();
    }
  });
});
