import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { probeThroughTunnel } from "../../src/tunnel/probe.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { postSigned } from "../support/sign.js";

/**
 * What a stranger reaches through the tunnel (the public listener) and what only this machine
 * reaches (the loopback listener), including a web page that rebinds its own hostname to 127.0.0.1.
 */
let fx: AdapterFixture;

beforeEach(async () => {
  fx = await startAdapterFixture();
});
afterEach(async () => {
  await fx.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A request with a Host header of our choosing (fetch would not send one). */
function get(origin: string, path: string, host?: string, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${origin}${path}`, {
      method,
      headers: host === undefined ? {} : { host },
    });
    req.on("response", (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Chat fails, so one event waits with Chat's error text: all a detailed health would show. */
async function oneEventFailing(): Promise<void> {
  fx.chat.behaviour = { kind: "status", status: 500 };
  const event = sampleEvent("low_credit");
  const retrying = waitForAdapterEvent(fx.adapter, "retrying", event.event_id);
  expect((await postSigned(fx.url, SECRET, event)).status).toBe(200);
  await retrying;
}

describe("the public listener", () => {
  it("answers /health with ok and the instance id only, whatever the queue or Chat", async () => {
    await oneEventFailing();
    const answer = await get(fx.adapter.origin, "/health", "abc.trycloudflare.com");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ ok: true, instance: fx.adapter.instance });
  });

  it("answers /metrics 404 and tells nothing of the Chat space", async () => {
    await oneEventFailing();
    const answer = await get(fx.adapter.origin, "/metrics");
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.text)).toEqual({ ok: false, error: "not_found" });
    expect(answer.text).not.toContain("AAAAfakeSpace");
  });

  it("is what the tunnel probe reaches: it still finds this very adapter", async () => {
    expect(await probeThroughTunnel(fx.adapter.origin, fx.adapter.instance)).toEqual({ ok: true });
  });
});

describe("the loopback listener", () => {
  it("is another port on 127.0.0.1, even when the public listener takes every address", async () => {
    await fx.close();
    fx = await startAdapterFixture({ host: "0.0.0.0" });
    const admin = new URL(fx.adapter.adminOrigin);
    expect(admin.hostname).toBe("127.0.0.1");
    expect(Number(admin.port)).not.toBe(fx.adapter.port);
    // Bound to 127.0.0.1 alone, not to every address: another loopback address (Linux routes all
    // of 127.0.0.0/8 to lo) reaches the public listener but not this one. No traffic leaves lo.
    const reach = (port: number) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, "127.0.0.2");
        socket.on("connect", () => {
          socket.destroy();
          resolve("connected");
        });
        socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
      });
    if (process.platform === "linux") {
      expect(await reach(fx.adapter.port)).toBe("connected");
      expect(await reach(Number(admin.port))).toBe("ECONNREFUSED");
    }
  });

  it("serves the detailed health: queue, dead letters and why Chat fails", async () => {
    await oneEventFailing();
    const answer = await get(fx.adapter.adminOrigin, "/health");
    expect(answer.status).toBe(200);
    const health = JSON.parse(answer.text) as Record<string, unknown>;
    expect(health).toMatchObject({
      ok: true,
      status: "degraded",
      instance: fx.adapter.instance,
      store: "ok",
      queue: { pending: 1 },
      dead: 0,
      chat: { last_error: expect.stringContaining("Chat answered 500") },
    });
    expect(
      (health.queue as { oldest_pending_age_s: number }).oldest_pending_age_s,
    ).toBeGreaterThanOrEqual(0);
  });

  it("serves /metrics with the Chat space", async () => {
    const answer = await get(fx.adapter.adminOrigin, "/metrics");
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(answer.text).toContain(
      'vast_gchat_queue_depth{route="default",space="AAAAfakeSpace"} 0',
    );
  });

  it.each([
    "127.0.0.1:{port}",
    "localhost:{port}",
    "LOCALHOST:{port}",
    "[::1]:{port}",
    "127.0.0.2:{port}",
  ])("answers a request addressed to %s", async (host) => {
    const port = new URL(fx.adapter.adminOrigin).port;
    const answer = await get(fx.adapter.adminOrigin, "/metrics", host.replace("{port}", port));
    expect(answer.status).toBe(200);
  });

  it.each([
    ["a rebound hostname", "attacker.example:{port}"],
    ["a hostname that merely starts like localhost", "localhost.attacker.example:{port}"],
    ["another port", "127.0.0.1:{other}"],
    ["no port", "127.0.0.1"],
    ["user info", "127.0.0.1:{port}@attacker.example"],
  ])("refuses %s with 421, JSON, and nothing of the adapter", async (_name, host) => {
    const port = Number(new URL(fx.adapter.adminOrigin).port);
    const value = host.replace("{port}", String(port)).replace("{other}", String(port + 1));
    for (const path of ["/metrics", "/health", "/nope"]) {
      const answer = await get(fx.adapter.adminOrigin, path, value);
      expect(answer.status).toBe(421);
      expect(answer.headers["content-type"]).toMatch(/^application\/json/);
      expect(JSON.parse(answer.text)).toEqual({ ok: false, error: "misdirected_request" });
    }
  });

  it.each([
    ["an empty Host", "GET /metrics HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"],
    ["no Host at all (HTTP/1.0)", "GET /metrics HTTP/1.0\r\n\r\n"],
  ])("refuses %s with 421", async (_name, raw) => {
    const port = Number(new URL(fx.adapter.adminOrigin).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let text = "";
      socket.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
      socket.write(raw);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 421 /);
    expect(answer).toContain('{"ok":false,"error":"misdirected_request"}');
    expect(answer).not.toContain("vast_gchat_");
  });

  it.each([
    ["POST", "/health", 405],
    ["DELETE", "/metrics", 405],
    ["GET", "/", 404],
    ["POST", "/", 404],
  ])("answers %s %s with %i in JSON", async (method, path, status) => {
    const answer = await get(fx.adapter.adminOrigin, path, undefined, method);
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.text)).toMatchObject({ ok: false });
  });

  it("takes no deliveries: a signed event posted to it is not kept", async () => {
    const answer = await postSigned(
      `${fx.adapter.adminOrigin}/`,
      SECRET,
      sampleEvent("low_credit"),
    );
    expect(answer.status).toBe(404);
    expect(await fx.adapter.store.stats()).toMatchObject({ pending: 0, delivered: 0 });
  });
});
