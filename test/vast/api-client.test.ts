import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiMessage, VastApiError, VastClient } from "../../src/vast/api-client.js";
import { startVastEmulator, type VastEmulator } from "../../src/vast/emulator.js";

let vast: VastEmulator;
let client: VastClient;
beforeEach(async () => {
  vast = await startVastEmulator();
  client = new VastClient({ apiKey: "emulator-key", baseUrl: `${vast.url}/`, initialBackoffMs: 1 });
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
    expect((await failure(client.createWebhook(input))).kind).toBe("unavailable");
    expect(vast.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    vast.failNext(/webhooks/, 429, 1);
    expect((await client.createWebhook(input)).id).toBeGreaterThan(0);
  });

  it("gives up after a few retries with a sentence, not a stack", async () => {
    vast.failNext(/webhooks/, 429, 10);
    const error = await failure(client.listWebhooks());
    expect(error.kind).toBe("rate_limited");
    expect(error.message).toBe(
      'The Vast.ai API is not answering right now (429). Vast.ai said: "API requests too frequent".',
    );
    expect(vast.requests.filter((r) => r.path.includes("webhooks"))).toHaveLength(4);
  });

  it("says a refused key was refused, never showing it", async () => {
    const bad = new VastClient({ apiKey: "secret-wrong-key", baseUrl: vast.url });
    const error = await failure(bad.listWebhooks());
    expect(error.kind).toBe("unauthorized");
    expect(error.hint).toContain("https://cloud.vast.ai/manage-keys/");
    expect(`${error.message} ${error.hint}`).not.toContain("secret-wrong-key");
  });

  it("says a webhook that is gone is gone", async () => {
    const error = await failure(client.updateWebhook(999, { name: "x" }));
    expect(error.kind).toBe("not_found");
    expect(error.message).toBe("The webhook 999 no longer exists on Vast.ai.");
  });

  it("shows Vast.ai's own msg for other refusals", async () => {
    const error = await failure(
      client.createWebhook({
        webhook_url: "http://example.com/plain",
        event_types: ["client:low_credit"],
      }),
    );
    expect(error.kind).toBe("invalid");
    expect(error.message).toMatch(
      /^Vast\.ai refused POST \/webhooks\/ \(400\)\. Vast\.ai said: ".+"\.$/,
    );
  });

  it("reports an unreachable API after retrying", async () => {
    const nowhere = new VastClient({
      apiKey: "k",
      baseUrl: "http://127.0.0.1:9",
      initialBackoffMs: 1,
    });
    const error = await failure(nowhere.currentUser());
    expect(error.kind).toBe("network");
    expect(error.message).toMatch(
      /Could not reach the Vast\.ai API at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/,
    );
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
      expect(error.kind).toBe("bad_response");
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
