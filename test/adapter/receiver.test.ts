import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AdapterConfig } from "../../src/adapter/adapter.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  otherConnection,
  SQLITE_DRIVERS_HERE,
  useSqliteDriver,
} from "../delivery/sqlite/drivers.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { postSigned, vastHeaders } from "../support/sign.js";

let fx: AdapterFixture;

beforeEach(async () => {
  fx = await startAdapterFixture({ maxBodyBytes: 4096, requestTimeoutMs: 1000 });
});
afterEach(async () => {
  await fx.close();
});

async function post(body: Buffer | string, headers: Record<string, string>) {
  const response = await fetch(fx.url, { method: "POST", headers, body, redirect: "manual" });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function nothingKept() {
  expect(await fx.adapter.store.stats()).toMatchObject({ pending: 0, delivered: 0, dead: 0 });
}

describe.each(SQLITE_DRIVERS_HERE)("receiving a delivery (store on %s)", (driver) => {
  useSqliteDriver(driver);

  it("keeps a signed event, answers 200 and delivers it to Chat", async () => {
    const event = sampleEvent("low_credit");
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", event.event_id);
    const answer = await postSigned(fx.url, SECRET, event);
    expect(answer).toEqual({
      status: 200,
      body: { ok: true, event_id: event.event_id, duplicate: false },
    });
    await delivered;
    expect(fx.chat.messages).toHaveLength(1);
    expect(JSON.stringify(fx.chat.messages[0]?.body)).toContain(event.subject);
    expect((await fx.adapter.store.get(event.event_id))?.state).toBe("delivered");
  });

  it("answers a repeated event_id with duplicate: true and posts it once", async () => {
    const event = sampleEvent("instance_stopped");
    await postSigned(fx.url, SECRET, event);
    const again = await postSigned(fx.url, SECRET, event);
    expect(again.body).toEqual({ ok: true, event_id: event.event_id, duplicate: true });
    const other = await postSigned(fx.url, SECRET, sampleEvent("instance_started"));
    expect(other.body.duplicate).toBe(false);
    await fx.chat.waitForMessages(2);
    expect(
      fx.chat.messages.filter((m) => JSON.stringify(m.body).includes(event.subject)),
    ).toHaveLength(1);
  });

  it("keeps two events whose ids differ only in a lone surrogate apart", async () => {
    // The store writes UTF-8, where both ids would become "id-\uFFFD": each is keyed by a hash.
    const first = await postSigned(fx.url, SECRET, { event_id: "id-\ud800", subject: "first" });
    const second = await postSigned(fx.url, SECRET, { event_id: "id-\ud801", subject: "second" });
    expect(first.body).toMatchObject({
      duplicate: false,
      event_id: expect.stringMatching(/^sha256:/),
    });
    expect(second.body).toMatchObject({ duplicate: false });
    expect(second.body.event_id).not.toBe(first.body.event_id);
    const again = await postSigned(fx.url, SECRET, { event_id: "id-\ud800", subject: "first" });
    expect(again.body).toEqual({ ok: true, event_id: first.body.event_id, duplicate: true });
    await fx.chat.waitForMessages(2);
  });

  it("dedupes on the signed body's event_id, never on the unsigned header", async () => {
    const a = Buffer.from(JSON.stringify(sampleEvent("low_credit")));
    const b = Buffer.from(JSON.stringify(sampleEvent("low_credit")));
    const first = await post(a, vastHeaders(SECRET, a, { eventId: "same-header" }));
    const second = await post(b, vastHeaders(SECRET, b, { eventId: "same-header" }));
    expect([first.body.duplicate, second.body.duplicate]).toEqual([false, false]);
    expect(
      (await fx.adapter.store.stats()).pending + (await fx.adapter.store.stats()).delivered,
    ).toBe(2);
  });

  it("keys an event without event_id by its body, so a byte-identical retry is a duplicate", async () => {
    const body = { notif_type: "low_credit", subject: "no id" };
    const first = await postSigned(fx.url, SECRET, body);
    const again = await postSigned(fx.url, SECRET, body);
    expect(first.status).toBe(200);
    expect(String(first.body.event_id)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(again.body).toMatchObject({ event_id: first.body.event_id, duplicate: true });
  });

  it("keys events with an empty event_id by their bodies, not by one shared empty key", async () => {
    const first = await postSigned(fx.url, SECRET, { event_id: "", subject: "one" });
    const second = await postSigned(fx.url, SECRET, { event_id: " ", subject: "two" });
    expect(first.body).toMatchObject({ ok: true, duplicate: false });
    expect(second.body).toMatchObject({ ok: true, duplicate: false });
    expect(first.body.event_id).not.toBe(second.body.event_id);
  });

  it("accepts the previous secret during a rotation", async () => {
    await fx.close();
    fx = await startAdapterFixture({ secrets: () => ["whsec-new", SECRET] });
    expect((await postSigned(fx.url, SECRET, sampleEvent("low_credit"))).status).toBe(200);
    expect((await postSigned(fx.url, "whsec-new", sampleEvent("low_credit"))).status).toBe(200);
    expect((await postSigned(fx.url, "whsec-older", sampleEvent("low_credit"))).status).toBe(401);
  });
});

describe("secrets per request", () => {
  it("never re-reads the stored secrets after a mismatch: a forgery costs no I/O", async () => {
    await fx.close();
    let reads = 0;
    // What serve used to hand over: a re-read of the secret store on a signature mismatch.
    const config = {
      secrets: () => [SECRET],
      refreshSecrets: () => {
        reads += 1;
        return [SECRET];
      },
    };
    fx = await startAdapterFixture(config as Partial<AdapterConfig>);
    for (let i = 0; i < 5; i++) {
      expect((await postSigned(fx.url, "forged", sampleEvent("low_credit"))).status).toBe(401);
    }
    expect(reads).toBe(0);
    expect((await postSigned(fx.url, SECRET, sampleEvent("low_credit"))).status).toBe(200);
  });
});

describe("refusing a delivery changes nothing", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const body = () => Buffer.from(JSON.stringify(sampleEvent("low_credit")));

  it.each([
    ["a wrong secret", (b: Buffer) => vastHeaders("wrong-secret", b)],
    ["a stale timestamp", (b: Buffer) => vastHeaders(SECRET, b, { timestamp: now() - 400 })],
    ["a future timestamp", (b: Buffer) => vastHeaders(SECRET, b, { timestamp: now() + 400 })],
    [
      "no signature",
      (b: Buffer) => {
        const { "x-vast-signature-256": _, ...rest } = vastHeaders(SECRET, b);
        return rest;
      },
    ],
    [
      "no timestamp",
      (b: Buffer) => {
        const { "x-vast-timestamp": _, ...rest } = vastHeaders(SECRET, b);
        return rest;
      },
    ],
    [
      "a bad signature",
      (b: Buffer) => ({
        ...vastHeaders(SECRET, b),
        "x-vast-signature-256": `sha256=${"0".repeat(64)}`,
      }),
    ],
    [
      "a signature of another body",
      (b: Buffer) => vastHeaders(SECRET, Buffer.concat([b, Buffer.from(" ")])),
    ],
  ])("401 invalid_signature for %s", async (_name, makeHeaders) => {
    const b = body();
    expect(await post(b, makeHeaders(b))).toEqual({
      status: 401,
      body: { ok: false, error: "invalid_signature" },
    });
    await nothingKept();
  });

  it.each([
    ["not JSON", "{not json", "invalid_json"],
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), "invalid_json"],
    ["empty", "", "invalid_json"],
    ["an array", "[1,2]", "invalid_payload"],
    ["a string", '"text"', "invalid_payload"],
    ["null", "null", "invalid_payload"],
  ])("400 for a signed body that is %s", async (_name, raw, error) => {
    const b = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    expect(await post(b, vastHeaders(SECRET, b))).toEqual({
      status: 400,
      body: { ok: false, error },
    });
    await nothingKept();
  });

  it("413 for a body over the cap, declared up front, without reading it", async () => {
    const b = Buffer.alloc(5000, "a");
    expect(await post(b, vastHeaders(SECRET, b))).toEqual({
      status: 413,
      body: { ok: false, error: "payload_too_large" },
    });
    await nothingKept();
  });

  it("413 for a chunked body that grows over the cap, without waiting for its end", async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // Fresh, well-formed signature headers: only the body's size can refuse it.
      const { "content-type": _, ...signed } = vastHeaders(SECRET, Buffer.from("{}"));
      const req = httpRequest(fx.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...signed },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      req.write(Buffer.alloc(3000, "a"));
      req.write(Buffer.alloc(3000, "a"));
      // Never end the request: the adapter must answer and close on its own.
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({ ok: false, error: "payload_too_large" });
    await nothingKept();
  });
});

describe.each(SQLITE_DRIVERS_HERE)("a store that cannot keep the event (%s)", (driver) => {
  useSqliteDriver(driver);

  it("503 unavailable when the event cannot be kept, then 200 once it can", async () => {
    const other = await otherConnection(fx.storePath, driver);
    try {
      other.exec("BEGIN EXCLUSIVE");
      const event = sampleEvent("low_credit");
      expect(await postSigned(fx.url, SECRET, event)).toEqual({
        status: 503,
        body: { ok: false, error: "unavailable" },
      });
      other.exec("ROLLBACK");
      expect((await postSigned(fx.url, SECRET, event)).body).toMatchObject({
        ok: true,
        duplicate: false,
      });
    } finally {
      other.close();
    }
  });
});

describe("other requests", () => {
  it.each([
    ["GET", "/", 405],
    ["PUT", "/", 405],
    ["POST", "/health", 405],
    ["GET", "/nope", 404],
    ["GET", "/metrics", 404],
    ["POST", "/other-path", 404],
  ])("%s %s answers %i in JSON, never a redirect", async (method, path, status) => {
    const response = await fetch(`${fx.adapter.origin}${path}`, { method, redirect: "manual" });
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await response.json()) as object).toMatchObject({ ok: false });
  });

  it("serves a custom webhook path", async () => {
    await fx.close();
    fx = await startAdapterFixture({ path: "/vast/hook" });
    expect((await postSigned(fx.url, SECRET, sampleEvent("low_credit"))).status).toBe(200);
    expect(
      (await postSigned(`${fx.adapter.origin}/`, SECRET, sampleEvent("low_credit"))).status,
    ).toBe(404);
  });

  it("drops a client that never finishes its request, while serving others", async () => {
    const socket = connect(fx.adapter.port, "127.0.0.1");
    // Signature headers fresh and well formed, so the adapter does wait for the body.
    const signed = Object.entries(vastHeaders(SECRET, Buffer.from("{}")))
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\n${signed}Content-Length: 100\r\n\r\n{`);
    const closed = new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (c: Buffer) => {
        text += c.toString();
      });
      socket.on("close", () => resolve(text));
    });
    expect((await postSigned(fx.url, SECRET, sampleEvent("low_credit"))).status).toBe(200);
    expect(await closed).toMatch(/^HTTP\/1\.1 408/);
    await nothingKeptBeyond(1);
  });
});

async function nothingKeptBeyond(count: number) {
  const stats = await fx.adapter.store.stats();
  expect(stats.pending + stats.delivered + stats.dead).toBe(count);
}

describe("refusing from the headers alone", () => {
  /** Sends the head of a request and part of its body, never the rest: what comes back first. */
  function halfSent(path: string, headers: Record<string, string>): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(fx.adapter.port, "127.0.0.1");
      let text = "";
      socket.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
        if (text.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on("error", reject);
      const lines = Object.entries({ host: "x", "content-length": "3000", ...headers }).map(
        ([name, value]) => `${name}: ${value}`,
      );
      socket.write(`POST ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n{"event_id":`);
    });
  }
  const fresh = () => vastHeaders(SECRET, Buffer.from("{}"));
  const nowS = () => Math.floor(Date.now() / 1000);

  it.each([
    ["no signature headers", () => ({})],
    ["a stale timestamp", () => ({ ...fresh(), "x-vast-timestamp": String(nowS() - 400) })],
    ["a timestamp that is no number", () => ({ ...fresh(), "x-vast-timestamp": "soon" })],
    ["a signature of the wrong shape", () => ({ ...fresh(), "x-vast-signature-256": "md5=abc" })],
  ])("answers 401 to %s before the body has arrived", async (_name, headers) => {
    const answer = await halfSent("/", headers());
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.toLowerCase()).toContain("connection: close");
    await nothingKeptBeyond(0);
  });

  it("answers other paths before the body has arrived", async () => {
    expect(await halfSent("/other-path", fresh())).toMatch(/^HTTP\/1\.1 404 /);
    expect(await halfSent("/health", fresh())).toMatch(/^HTTP\/1\.1 405 /);
  });

  it("waits for the body of a delivery whose headers are fresh and well formed", async () => {
    // The fixture drops a request not complete within 1 s: a 408, never an early 401.
    expect(await halfSent("/", fresh())).toMatch(/^HTTP\/1\.1 408 /);
  });
});
