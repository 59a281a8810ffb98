import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiMessage, VastApiError, VastClient } from "../../src/vast/api-client.js";
import { startVastEmulator, type VastEmulator } from "../../src/vast/emulator.js";
import { VERSION } from "../../src/version.js";

/** Waits shortened, so the retry tests run at once; the real waits have tests of their own. */
const QUICK = { initialBackoffMs: 1, rateLimitBackoffMs: 1, routeSpacingMs: 0 };

let vast: VastEmulator;
let client: VastClient;
beforeEach(async () => {
  vast = await startVastEmulator();
  client = new VastClient({ apiKey: "emulator-key", baseUrl: `${vast.url}/`, ...QUICK });
});
afterEach(async () => {
  await vast.close();
});

async function failure(promise: Promise<unknown>): Promise<VastApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VastApiError) return error;
    throw error;
  }
  throw new Error("expected a VastApiError");
}

describe("VastClient", () => {
  it("makes every call with the published shapes", async () => {
    expect((await client.currentUser()).id).toBe(4242);
    expect((await client.listNotificationTypes()).map((t) => t.key)).toContain("client:low_credit");
    const created = await client.createWebhook({
      name: "vast-gchat test",
      webhook_url: "https://example.com/hook",
      event_types: ["client:low_credit"],
    });
    expect(created.webhook_secret).toMatch(/\S{16,}/);
    const updated = await client.updateWebhook(created.id, { event_types: ["client:outbid"] });
    expect(updated).toMatchObject({ id: created.id, event_types: ["client:outbid"] });
    expect(updated).not.toHaveProperty("webhook_secret");
    expect(await client.findWebhook(created.id)).toMatchObject({ name: "vast-gchat test" });
    const rotated = await client.rotateSecret(created.id);
    expect(rotated.webhook_secret).not.toBe(created.webhook_secret);
    await client.deleteWebhook(created.id);
    expect(await client.findWebhook(created.id)).toBeUndefined();
    expect(await client.deleteWebhookIfPresent(created.id)).toBe(false);
  });

  it("retries 429, 502, 503 and 504 with backoff, then succeeds", async () => {
    vast.failNext(/webhooks/, 429, 1);
    vast.failNext(/webhooks/, 502, 1);
    vast.failNext(/webhooks/, 504, 1);
    expect(await client.listWebhooks()).toEqual([]);
    vast.failNext(/webhooks/, 503, 1);
    expect(await client.listWebhooks()).toEqual([]);
    expect(vast.requests.filter((r) => r.path.includes("webhooks"))).toHaveLength(6);
  });

  it("never retries a create that may have happened (5xx), only one refused outright (429)", async () => {
    const input = {
      name: "x",
      webhook_url: "https://example.com/x",
      event_types: ["client:low_credit"],
    };
    vast.failNext(/webhooks/, 502, 1);
    expect((await failure(client.createWebhook(input))).reason).toBe("unavailable");
    expect(vast.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    vast.failNext(/webhooks/, 429, 1);
    expect((await client.createWebhook(input)).id).toBeGreaterThan(0);
  });

  it("gives up after a few retries with a sentence, not a stack", async () => {
    vast.failNext(/webhooks/, 429, 10);
    const error = await failure(client.listWebhooks());
    expect(error.reason).toBe("rate_limited");
    expect(error.message).toBe(
      'The Vast.ai API is not answering right now (429). Vast.ai said: "API requests too frequent".',
    );
    expect(vast.requests.filter((r) => r.path.includes("webhooks"))).toHaveLength(4);
  });

  it("names itself and its version on every call", async () => {
    await client.currentUser();
    await client.listWebhooks();
    expect(vast.requests.map((r) => r.userAgent)).toEqual([
      `vast-gchat/${VERSION}`,
      `vast-gchat/${VERSION}`,
    ]);
    const manifest = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(VERSION).toBe(manifest.version);
  });

  it("waits seconds after a 429, as Vast.ai's per-route interval needs", async () => {
    // An interval that waits of 0.15 s growing by half (Vast's CLI) would never outlast.
    const limited = await startVastEmulator({ minIntervalMs: 900 });
    try {
      const paced = new VastClient({
        apiKey: "emulator-key",
        baseUrl: limited.url,
        routeSpacingMs: 0,
      });
      await paced.listWebhooks();
      expect(await paced.listWebhooks()).toEqual([]);
      expect(limited.requests.map((r) => r.status)).toEqual([200, 429, 200]);
    } finally {
      await limited.close();
    }
  });

  it("paces calls of one route, so bulk work is not refused", async () => {
    const limited = await startVastEmulator({ minIntervalMs: 400 });
    try {
      const paced = new VastClient({ apiKey: "emulator-key", baseUrl: limited.url });
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        const created = await paced.createWebhook({
          webhook_url: `https://example.com/hook/${i}`,
          event_types: ["client:low_credit"],
        });
        ids.push(created.id);
      }
      for (const id of ids) await paced.deleteWebhook(id);
      expect(limited.requests.map((r) => r.status)).not.toContain(429);
      expect(limited.webhooks()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it("says which permission a scoped key lacks", async () => {
    const scoped = await startVastEmulator({
      apiKeys: { scoped: { userId: 1, scoped: true } },
    });
    try {
      const limited = new VastClient({ apiKey: "scoped", baseUrl: scoped.url, ...QUICK });
      const { id } = await limited.createWebhook({
        webhook_url: "https://example.com/hook",
        event_types: ["client:low_credit"],
      });
      const catalogue = await failure(limited.listNotificationTypes());
      expect(catalogue.message).toMatch(
        /^Vast\.ai refused the API key for the notification-types route \(401\)/,
      );
      expect(catalogue.hint).toContain('needs the "notification-types" permission');
      const rotate = await failure(limited.rotateSecret(id));
      expect(rotate.hint).toContain('"webhooks rotate-secret" permission');
      const test = await failure(limited.testWebhook(id));
      expect(test.hint).toContain('"webhooks test" permission');
    } finally {
      await scoped.close();
    }
  });

  it("says a refused key was refused, never showing it", async () => {
    const bad = new VastClient({ apiKey: "secret-wrong-key", baseUrl: vast.url, ...QUICK });
    const error = await failure(bad.listWebhooks());
    expect(error.reason).toBe("unauthorized");
    expect(error.hint).toContain("https://cloud.vast.ai/manage-keys/");
    expect(`${error.message} ${error.hint}`).not.toContain("secret-wrong-key");
  });

  it("says a webhook that is gone is gone", async () => {
    const error = await failure(client.updateWebhook(999, { name: "x" }));
    expect(error.reason).toBe("not_found");
    expect(error.message).toBe("The webhook 999 no longer exists on Vast.ai.");
  });

  it("shows Vast.ai's own msg for other refusals", async () => {
    const error = await failure(
      client.createWebhook({
        webhook_url: "http://example.com/plain",
        event_types: ["client:low_credit"],
      }),
    );
    expect(error.reason).toBe("invalid");
    expect(error.message).toMatch(
      /^Vast\.ai refused POST \/webhooks\/ \(400\)\. Vast\.ai said: ".+"\.$/,
    );
  });

  it("reports an unreachable API after retrying", async () => {
    const nowhere = new VastClient({
      apiKey: "k",
      baseUrl: "http://127.0.0.1:9",
      ...QUICK,
    });
    const error = await failure(nowhere.currentUser());
    expect(error.reason).toBe("network");
    expect(error.message).toMatch(
      /Could not reach the Vast\.ai API at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/,
    );
  });
});

describe("the test route", () => {
  let adapter: Server;
  let answers: number[];
  let received: number;
  let url: string;
  beforeEach(async () => {
    answers = [];
    received = 0;
    vast = await startVastEmulator({ allowLoopbackHttp: true });
    client = new VastClient({ apiKey: "emulator-key", baseUrl: vast.url, ...QUICK });
    adapter = createServer((req, res) => {
      received++;
      req.resume();
      req.on("end", () => res.writeHead(answers.shift() ?? 200).end());
    });
    adapter.listen(0, "127.0.0.1");
    await once(adapter, "listening");
    url = `http://127.0.0.1:${(adapter.address() as AddressInfo).port}/`;
  });
  afterEach(async () => {
    adapter.closeAllConnections();
    adapter.close();
    await vast.close();
  });

  async function webhook(): Promise<number> {
    return (await client.createWebhook({ webhook_url: url, event_types: ["client:low_credit"] }))
      .id;
  }

  it("returns the event id Vast.ai sent", async () => {
    const id = await webhook();
    const delivery = await client.testWebhook(id);
    expect(delivery).toEqual({ webhookId: id, eventId: expect.stringMatching(/^[0-9a-f]{32}$/) });
  });

  it("takes a 502 for an adapter out of reach, and never retries it", async () => {
    const id = await webhook();
    answers = [503, 503, 503, 503];
    const error = await failure(client.testWebhook(id));
    expect(error.reason).toBe("adapter_unreachable");
    expect(error.message).toBe(
      'Vast.ai could not reach the adapter with its test event (502). Vast.ai said: "Webhook delivery failed".',
    );
    expect(error.message).not.toMatch(/not answering|try again/i);
    expect(received).toBe(1);
    expect(vast.requests.filter((r) => r.path.endsWith("/test/"))).toHaveLength(1);
  });

  it("takes a 400 for a test event the adapter refused", async () => {
    const id = await webhook();
    answers = [401];
    const error = await failure(client.testWebhook(id));
    expect(error.reason).toBe("adapter_refused");
    expect(error.hint).toMatch(/signing secret does not match/);
    expect(received).toBe(1);
  });

  it("retries a 429, which Vast.ai answers before sending anything", async () => {
    const id = await webhook();
    vast.failNext(/\/test\/$/, 429, 1);
    expect((await client.testWebhook(id)).webhookId).toBe(id);
    expect(received).toBe(1);
  });

  it("takes the merged spec's answer, which names no event", async () => {
    await vast.close();
    vast = await startVastEmulator({ allowLoopbackHttp: true, testAnswer: "merged" });
    client = new VastClient({ apiKey: "emulator-key", baseUrl: vast.url, ...QUICK });
    const id = await webhook();
    expect(await client.testWebhook(id)).toEqual({ webhookId: undefined, eventId: undefined });
  });
});

describe("answers that do not follow the shapes", () => {
  let server: Server;
  let body = "";
  beforeEach(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
  });
  afterEach(async () => {
    server.close();
    await once(server, "close");
  });

  it.each([["not json"], ['{"webhooks": "nope"}'], ["[]"]])(
    "refuses %s with a plain sentence",
    async (answer) => {
      body = answer;
      const odd = new VastClient({
        apiKey: "k",
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      });
      const error = await failure(odd.listWebhooks());
      expect(error.reason).toBe("bad_response");
      expect(error.message).toBe(
        "The Vast.ai API answered GET /webhooks/ with something unexpected.",
      );
    },
  );
});

describe("apiMessage", () => {
  it("reads msg, message, error or plain text", () => {
    expect(apiMessage('{"success": false, "error": "invalid_args", "msg": "bad url"}')).toBe(
      "bad url",
    );
    expect(apiMessage('{"message": "nope"}')).toBe("nope");
    expect(apiMessage('{"error": "unauthorized"}')).toBe("unauthorized");
    expect(apiMessage("API requests too frequent")).toBe("API requests too frequent");
    expect(apiMessage("")).toBeUndefined();
  });
});
