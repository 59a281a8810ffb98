import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  CurrentUserResponse,
  MessageResponse,
  NotificationTypesResponse,
  newPlaceholderUrl,
  SecretRotatedResponse,
  WebhookCreatedResponse,
  WebhookListResponse,
  WebhookUpdatedResponse,
} from "../../src/vast/api-types.js";
import {
  type EmulatorOptions,
  startVastEmulator,
  type VastEmulator,
} from "../../src/vast/emulator.js";
import { verifySignature } from "../../src/vast/signature.js";

const KEY = "emulator-key";
/** 2026-03-03T12:00:00Z; each reading of the clock moves it one second on. */
const START_MS = Date.UTC(2026, 2, 3, 12, 0, 0);

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function steppingClock(stepMs = 1000): () => number {
  let ms = START_MS;
  return () => {
    ms += stepMs;
    return ms;
  };
}

async function emulator(options: EmulatorOptions = {}): Promise<VastEmulator> {
  const emu = await startVastEmulator(options);
  closers.push(() => emu.close());
  return emu;
}

interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function call(
  emu: VastEmulator,
  method: string,
  path: string,
  options: { key?: string | null; body?: unknown; rawBody?: string } = {},
): Promise<ApiAnswer> {
  const key = options.key === undefined ? KEY : options.key;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const body =
    options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${emu.url}/api/v0${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

async function create(
  emu: VastEmulator,
  body: Record<string, unknown> = {},
  key: string = KEY,
): Promise<{ id: number; secret: string }> {
  const answer = await call(emu, "POST", "/webhooks/", {
    key,
    body: { webhook_url: newPlaceholderUrl(), event_types: ["client:low_credit"], ...body },
  });
  expect(answer.status).toBe(200);
  const { webhook } = WebhookCreatedResponse.parse(answer.json);
  return { id: webhook.id, secret: webhook.webhook_secret };
}

const errorBody = (msg: RegExp | string) => ({
  success: false,
  error: expect.any(String),
  msg: typeof msg === "string" ? msg : expect.stringMatching(msg),
});

/** A minimal webhook receiver: records each request and answers from a script of statuses. */
interface Received {
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

async function receiver(
  script: Array<number | "hang" | { redirect: string }> = [],
): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks) });
      const step = script.shift() ?? 200;
      if (step === "hang") return;
      if (typeof step === "object") {
        res.writeHead(302, { location: step.redirect });
        res.end();
        return;
      }
      res.writeHead(step, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: step }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    if (!server.listening) return;
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  };
  closers.push(close);
  return { url: `http://127.0.0.1:${port}/vast`, received, close };
}

function header(request: Received, name: string): string {
  const value = request.headers[name];
  if (typeof value !== "string") throw new Error(`no ${name} header`);
  return value;
}

function verifies(secret: string, request: Received): boolean {
  const timestamp = header(request, "x-vast-timestamp");
  const signature = header(request, "x-vast-signature-256");
  return verifySignature([secret], { timestamp, signature }, request.raw, Number(timestamp)).ok;
}

describe("Vast emulator API", () => {
  it("lists a realistic catalogue of notification types in the client's schema", async () => {
    const emu = await emulator();
    const answer = await call(emu, "GET", "/notification-types/");
    expect(answer.status).toBe(200);
    const { notification_types } = NotificationTypesResponse.parse(answer.json);
    const keys = notification_types.map((type) => type.key);
    for (const key of ["client:low_credit", "client:outbid", "host:machine_offline"]) {
      expect(keys).toContain(key);
    }
    expect(keys).toHaveLength(14);
    expect(keys.some((key) => key.endsWith("webhook_test"))).toBe(false);
    expect(notification_types.find((type) => type.slug === "low_credit")).toMatchObject({
      key: "client:low_credit",
      context: "client",
      category: "billing",
      topic: null,
      display_name: "Low balance notifications",
      default_preferences: { email: true, webhooks: false },
    });
  });

  it("refuses a missing or unknown key, and a scoped key on notification types, rotation and test", async () => {
    const emu = await emulator({
      apiKeys: { [KEY]: { userId: 4242 }, "scoped-key": { userId: 7, scoped: true } },
    });
    for (const key of [null, "wrong-key"]) {
      const answer = await call(emu, "GET", "/webhooks/", { key });
      expect(answer.status).toBe(401);
      expect(answer.json).toEqual(errorBody("Invalid API key"));
    }
    const scoped = await call(emu, "GET", "/notification-types/", { key: "scoped-key" });
    expect(scoped.status).toBe(401);
    expect(scoped.json).toEqual(errorBody(/notification-types route access/));
    const list = await call(emu, "GET", "/webhooks/", { key: "scoped-key" });
    expect(WebhookListResponse.parse(list.json).webhooks).toEqual([]);
    const { id } = await create(emu, {}, "scoped-key");
    for (const route of ["rotate-secret", "test"]) {
      const refused = await call(emu, "POST", `/webhooks/${id}/${route}/`, { key: "scoped-key" });
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual(errorBody(new RegExp(`${route} route access`)));
    }

    expect(emu.requests.map((r) => r.authorized)).toEqual([
      false,
      false,
      false,
      true,
      true,
      false,
      false,
    ]);
    expect(JSON.stringify(emu.requests)).not.toMatch(/wrong-key|scoped-key/);
  });

  it("tells each key's user who they are", async () => {
    const emu = await emulator({ apiKeys: { [KEY]: { userId: 4242 }, other: { userId: 99 } } });
    const me = CurrentUserResponse.parse((await call(emu, "GET", "/users/current/")).json);
    expect(me.id).toBe(4242);
    const other = await call(emu, "GET", "/users/current/", { key: "other" });
    expect(CurrentUserResponse.parse(other.json).id).toBe(99);
    // Every published path ends in "/"; without it the service's answer is not published, so the
    // stand-in refuses, and a client that drops the slash fails here first.
    expect((await call(emu, "GET", "/users/current")).status).toBe(404);
  });

  it("creates a webhook with a secret, then never shows the secret again", async () => {
    const emu = await emulator({ now: () => START_MS + 500 });
    const placeholder = newPlaceholderUrl();
    const answer = await call(emu, "POST", "/webhooks/", {
      body: {
        name: "vast-gchat",
        webhook_url: placeholder,
        event_types: ["client:low_credit", "client:outbid"],
      },
    });
    expect(answer.status).toBe(200);
    const created = WebhookCreatedResponse.parse(answer.json);
    expect(created.webhook).toMatchObject({
      user_id: 4242,
      name: "vast-gchat",
      webhook_url: placeholder,
      event_types: ["client:low_credit", "client:outbid"],
      created_at: START_MS / 1000 + 0.5,
      updated_at: START_MS / 1000 + 0.5,
    });
    expect(created.webhook.webhook_secret).toMatch(/^[0-9a-f]{64}$/);
    expect(created.enabled_notification_preferences).toEqual([
      "client:low_credit",
      "client:outbid",
    ]);
    expect(emu.secretOf(created.webhook.id)).toBe(created.webhook.webhook_secret);

    const second = await create(emu, { name: null });
    expect(second.id).toBeGreaterThan(created.webhook.id);

    const list = await call(emu, "GET", "/webhooks/");
    const { webhooks } = WebhookListResponse.parse(list.json);
    expect(webhooks.map((w) => w.id)).toEqual([created.webhook.id, second.id]);
    expect(webhooks[1]?.name).toBeNull();
    expect(list.text).not.toContain("secret");
    expect(JSON.stringify(emu.webhooks())).not.toContain("secret");
  });

  it.each([
    ["plain http", { webhook_url: "http://example.com/hook" }, /HTTPS/],
    ["http on loopback", { webhook_url: "http://127.0.0.1:9/hook" }, /HTTPS/],
    ["not a URL", { webhook_url: "example.com/hook" }, /HTTPS/],
    ["no URL", { webhook_url: undefined }, /webhook_url is required/],
    [
      "a URL over 2,048 characters",
      { webhook_url: `https://example.com/${"a".repeat(2029)}` },
      /2048/,
    ],
    ["a 121-character name", { name: "n".repeat(121) }, /120/],
    ["a name that is not a string", { name: 5 }, /name/],
    ["a name with a control character", { name: "vast\ngchat" }, /control/],
    [
      "an unknown type",
      { event_types: ["client:no_such_thing"] },
      /^Unknown event type: no_such_thing$/,
    ],
    ["a key of the wrong context", { event_types: ["host:low_credit"] }, /Unknown event type/],
    [
      "a type twice, as key and slug",
      { event_types: ["client:low_credit", "low_credit"] },
      /^Duplicate event type: low_credit$/,
    ],
    ["no types", { event_types: [] }, /at least one event type/],
    ["types that are not a list", { event_types: "client:low_credit" }, /must be a list/],
  ])("refuses %s with 400 invalid_args", async (_label, override, msg) => {
    const emu = await emulator();
    const answer = await call(emu, "POST", "/webhooks/", {
      body: {
        webhook_url: newPlaceholderUrl(),
        event_types: ["client:low_credit"],
        ...override,
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      success: false,
      error: "invalid_args",
      msg: expect.stringMatching(msg),
    });
    expect(emu.webhooks()).toEqual([]);
  });

  it("accepts the limits exactly: a 2,048-character URL and a 120-character name", async () => {
    const emu = await emulator();
    const url = `https://example.com/${"a".repeat(2028)}`;
    expect(url).toHaveLength(2048);
    await create(emu, { webhook_url: url, name: "n".repeat(120) });
    expect(emu.webhooks()[0]?.webhook_url).toBe(url);
  });

  it("refuses a body that is not JSON, or not an object", async () => {
    const emu = await emulator();
    const bad = await call(emu, "POST", "/webhooks/", { rawBody: "{not json" });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual(errorBody(/JSON/));
    const list = await call(emu, "POST", "/webhooks/", { body: [newPlaceholderUrl()] });
    expect(list.status).toBe(400);
  });

  it("accepts http only on loopback, and only when told to", async () => {
    const emu = await emulator({ allowLoopbackHttp: true });
    await create(emu, { webhook_url: "http://127.0.0.1:9/hook" });
    await create(emu, { webhook_url: "http://localhost:9/hook" });
    const remote = await call(emu, "POST", "/webhooks/", {
      body: { webhook_url: "http://example.com/hook", event_types: ["client:low_credit"] },
    });
    expect(remote.status).toBe(400);
    expect(emu.webhooks()).toHaveLength(2);
  });

  it("refuses a fifth webhook per user, but not another user's first", async () => {
    const emu = await emulator({ apiKeys: { [KEY]: { userId: 1 }, other: { userId: 2 } } });
    for (let i = 0; i < 4; i++) await create(emu, { name: `hook ${i}` });
    const fifth = await call(emu, "POST", "/webhooks/", {
      body: { webhook_url: newPlaceholderUrl(), event_types: ["client:low_credit"] },
    });
    expect(fifth.status).toBe(400);
    expect(fifth.json).toEqual(errorBody("Maximum of 4 webhooks per user"));
    await create(emu, {}, "other");
    expect(emu.webhooks()).toHaveLength(5);
  });

  it("updates a webhook without showing its secret, and validates the same way", async () => {
    const emu = await emulator({ now: steppingClock() });
    const { id, secret } = await create(emu);
    const answer = await call(emu, "PUT", `/webhooks/${id}/`, {
      body: {
        name: "renamed",
        webhook_url: "https://hooks.example.com/vast",
        event_types: ["host:machine_offline"],
      },
    });
    expect(answer.status).toBe(200);
    const updated = WebhookUpdatedResponse.parse(answer.json);
    expect(updated.webhook).toMatchObject({
      id,
      name: "renamed",
      webhook_url: "https://hooks.example.com/vast",
      event_types: ["host:machine_offline"],
    });
    expect(updated.webhook.updated_at).toBeGreaterThan(updated.webhook.created_at ?? Infinity);
    expect(updated.enabled_notification_preferences).toEqual(["host:machine_offline"]);
    expect(answer.text).not.toContain("secret");
    expect(emu.secretOf(id)).toBe(secret);

    const cleared = await call(emu, "PUT", `/webhooks/${id}/`, { body: { name: null } });
    expect(WebhookUpdatedResponse.parse(cleared.json).webhook.name).toBeNull();

    const refused = await call(emu, "PUT", `/webhooks/${id}/`, {
      body: { name: "half", webhook_url: "http://example.com/" },
    });
    expect(refused.status).toBe(400);
    expect(emu.webhooks()[0]).toMatchObject({
      name: null,
      webhook_url: "https://hooks.example.com/vast",
    });
    const empty = await call(emu, "PUT", `/webhooks/${id}/`, { body: {} });
    expect(empty.status).toBe(400);
  });

  it("answers 404 for a missing webhook and for another user's", async () => {
    const emu = await emulator({ apiKeys: { [KEY]: { userId: 1 }, other: { userId: 2 } } });
    const { id } = await create(emu, {}, "other");
    const notFound = errorBody("Webhook not found");
    for (const target of [id, 999]) {
      const put = await call(emu, "PUT", `/webhooks/${target}/`, { body: { name: "x" } });
      expect([put.status, put.json]).toEqual([404, notFound]);
      const del = await call(emu, "DELETE", `/webhooks/${target}/`);
      expect([del.status, del.json]).toEqual([404, notFound]);
      const rotate = await call(emu, "POST", `/webhooks/${target}/rotate-secret/`);
      expect(rotate.status).toBe(404);
      const test = await call(emu, "POST", `/webhooks/${target}/test/`);
      expect(test.status).toBe(404);
    }
    const mine = await call(emu, "GET", "/webhooks/");
    expect(WebhookListResponse.parse(mine.json).webhooks).toEqual([]);
    expect(emu.webhooks().map((w) => w.id)).toEqual([id]);
  });

  it("deletes a webhook, once", async () => {
    const emu = await emulator();
    const { id } = await create(emu);
    const deleted = await call(emu, "DELETE", `/webhooks/${id}/`);
    expect(deleted.status).toBe(200);
    expect(MessageResponse.parse(deleted.json)).toEqual({ success: true });
    expect(emu.webhooks()).toEqual([]);
    expect((await call(emu, "DELETE", `/webhooks/${id}/`)).status).toBe(404);
  });

  it("answers 404 for an unknown path and 405 for a wrong method", async () => {
    const emu = await emulator();
    expect((await call(emu, "GET", "/instances/")).status).toBe(404);
    expect((await call(emu, "GET", "/webhooks/abc/")).status).toBe(404);
    const wrong = await call(emu, "PATCH", "/webhooks/");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, POST");
    expect((await call(emu, "GET", "/webhooks/1/rotate-secret/")).status).toBe(405);
  });

  it("fails the next matching calls as told: 429 in plain text without Retry-After", async () => {
    const emu = await emulator();
    emu.failNext(/\/webhooks\/$/g, 429, 2);
    emu.failNext(/users/, 503);
    for (let i = 0; i < 2; i++) {
      const limited = await call(emu, "GET", "/webhooks/");
      expect(limited.status).toBe(429);
      expect(limited.text).toBe("API requests too frequent");
      expect(limited.headers.get("retry-after")).toBeNull();
    }
    expect((await call(emu, "GET", "/notification-types/")).status).toBe(200);
    expect((await call(emu, "GET", "/webhooks/")).status).toBe(200);
    expect((await call(emu, "GET", "/users/current/")).status).toBe(503);
    expect((await call(emu, "GET", "/users/current/")).status).toBe(200);
    expect(emu.requests.map((r) => r.path)).toContain("/api/v0/users/current/");
  });
});

describe("Vast emulator deliveries", () => {
  it("signs a delivery with the webhook's secret and Vast's headers", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true, apiKeys: { [KEY]: { userId: 321 } } });
    const { id, secret } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { type: "low_credit", subject: "Low!" });

    expect(report.delivered).toBe(true);
    expect(report.attempts).toEqual([{ attempt: 1, status: 200, answer: { status: 200 } }]);
    const [request] = target.received;
    if (!request) throw new Error("nothing delivered");
    expect(verifies(secret, request)).toBe(true);
    expect(verifies("some other secret", request)).toBe(false);
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["x-vast-event-id"]).toBe(report.eventId);
    expect(request.headers["x-vast-delivery-attempt"]).toBe("1");
    const body = JSON.parse(request.raw.toString("utf8")) as Record<string, unknown>;
    expect(body).toEqual(report.body);
    expect(body).toMatchObject({
      event_id: report.eventId,
      user_id: 321,
      notif_type: "low_credit",
      subject: "Low!",
    });
  });

  it("sends duplicates with the same event id and body, fresh timestamps and counted attempts", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true, now: steppingClock() });
    const { id, secret } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { type: "instance_started", attempts: 3 });

    expect(report.attempts.map((a) => [a.attempt, a.status])).toEqual([
      [1, 200],
      [2, 200],
      [3, 200],
    ]);
    const received = target.received;
    expect(received).toHaveLength(3);
    expect(received.map((r) => header(r, "x-vast-delivery-attempt"))).toEqual(["1", "2", "3"]);
    expect(new Set(received.map((r) => header(r, "x-vast-event-id")))).toEqual(
      new Set([report.eventId]),
    );
    expect(new Set(received.map((r) => r.raw.toString("hex"))).size).toBe(1);
    const stamps = received.map((r) => Number(header(r, "x-vast-timestamp")));
    expect(stamps.every((stamp, i) => i === 0 || stamp > (stamps[i - 1] ?? Infinity))).toBe(true);
    expect(received.every((r) => verifies(secret, r))).toBe(true);
  });

  it("retries 500 and 429, and stops at the first 2xx", async () => {
    const target = await receiver([500, 429, 200, 200]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { maxRetries: 5, retryDelayMs: 1 });
    expect(report.attempts.map((a) => a.status)).toEqual([500, 429, 200]);
    expect(report.delivered).toBe(true);
    expect(target.received).toHaveLength(3);
  });

  it("gives up once the retries are used", async () => {
    const target = await receiver([503, 503, 503, 503]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { maxRetries: 2, retryDelayMs: 1 });
    expect(report.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(report.delivered).toBe(false);
  });

  it.each([
    ["a 400", 400],
    ["a 401", 401],
  ])("does not retry %s", async (_label, status) => {
    const target = await receiver([status]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { maxRetries: 3, retryDelayMs: 1 });
    expect(report.attempts).toEqual([{ attempt: 1, status, answer: { status } }]);
    expect(report.delivered).toBe(false);
    expect(target.received).toHaveLength(1);
  });

  it("never follows a redirect, and does not retry it", async () => {
    const elsewhere = await receiver();
    const target = await receiver([{ redirect: elsewhere.url }]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { maxRetries: 3, retryDelayMs: 1 });
    expect(report.attempts.map((a) => a.status)).toEqual([302]);
    expect(elsewhere.received).toHaveLength(0);
  });

  it("retries a timeout and a refused connection", async () => {
    const target = await receiver(["hang", 200]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const report = await emu.deliver(id, { maxRetries: 1, retryDelayMs: 1, timeoutMs: 100 });
    expect(report.attempts[0]).toEqual({ attempt: 1, error: "timed out after 100 ms" });
    expect(report.attempts[1]?.status).toBe(200);

    const gone = await receiver();
    await gone.close();
    const { id: goneId } = await create(emu, { webhook_url: gone.url });
    const refused = await emu.deliver(goneId, { maxRetries: 1, retryDelayMs: 1 });
    expect(refused.attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect(refused.attempts[0]?.error).toMatch(/ECONNREFUSED/);
    expect(refused.delivered).toBe(false);
  });

  it("signs with the new secret as soon as it is rotated", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id, secret: before } = await create(emu, { webhook_url: target.url });
    const answer = await call(emu, "POST", `/webhooks/${id}/rotate-secret/`);
    expect(answer.status).toBe(200);
    const after = SecretRotatedResponse.parse(answer.json).webhook.webhook_secret;
    expect(after).not.toBe(before);
    expect(emu.secretOf(id)).toBe(after);
    const list = await call(emu, "GET", "/webhooks/");
    expect(list.text).not.toContain(after);

    await emu.deliver(id);
    const [request] = target.received;
    if (!request) throw new Error("nothing delivered");
    expect(verifies(after, request)).toBe(true);
    expect(verifies(before, request)).toBe(false);
  });

  it("sends a body given in full as it is", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const body = { event_id: "fixed-id", notif_type: "brand_new_type", extra: [1, 2] };
    const report = await emu.deliver(id, { body });
    expect(report.eventId).toBe("fixed-id");
    expect(target.received[0]?.raw.toString("utf8")).toBe(JSON.stringify(body));
  });
});

describe("Vast emulator /test/", () => {
  it("delivers one signed webhook_test and says so", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id, secret } = await create(emu, { webhook_url: target.url });
    const answer = await call(emu, "POST", `/webhooks/${id}/test/`);
    expect(answer.status).toBe(200);
    expect(target.received).toHaveLength(1);
    const [request] = target.received;
    if (!request) throw new Error("nothing delivered");
    expect(verifies(secret, request)).toBe(true);
    const event = JSON.parse(request.raw.toString("utf8")) as Record<string, unknown>;
    expect(event).toMatchObject({ notif_type: "webhook_test" });
    // The backend spec's answer names the event it sent.
    expect(answer.json).toEqual({ success: true, webhook_id: id, event_id: event.event_id });
  });

  it("answers in the merged spec's form when told to", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true, testAnswer: "merged" });
    const { id } = await create(emu, { webhook_url: target.url });
    const answer = await call(emu, "POST", `/webhooks/${id}/test/`);
    expect(MessageResponse.parse(answer.json)).toEqual({
      success: true,
      msg: "Test webhook delivered",
    });
  });

  it.each([
    [500, 502, "Webhook delivery failed"],
    [429, 502, "Webhook delivery failed"],
    [401, 400, "Webhook URL is not deliverable"],
    [404, 400, "Webhook URL is not deliverable"],
  ])("does not retry a test the receiver answers %i: %i", async (answered, status, msg) => {
    const target = await receiver([answered, 200]);
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    const answer = await call(emu, "POST", `/webhooks/${id}/test/`);
    expect(answer.status).toBe(status);
    expect(answer.json).toEqual(errorBody(msg));
    expect(target.received).toHaveLength(1);
  });

  it("answers 502 when nothing listens at the URL, and never leaves loopback", async () => {
    const target = await receiver();
    const emu = await emulator({ allowLoopbackHttp: true });
    const { id } = await create(emu, { webhook_url: target.url });
    await target.close();
    const refused = await call(emu, "POST", `/webhooks/${id}/test/`);
    expect(refused.status).toBe(502);
    const remote = await create(emu, { webhook_url: "https://adapter.example.org/" });
    const unreachable = await call(emu, "POST", `/webhooks/${remote.id}/test/`);
    expect(unreachable.status).toBe(502);
    const report = await emu.deliver(remote.id);
    expect(report.attempts[0]?.error).toMatch(/loopback only/);
  });

  it.each([
    "https://127.0.0.1/hook",
    "https://localhost:8443/hook",
    "https://10.1.2.3/hook",
    "https://192.168.1.20/hook",
    "https://[::1]/hook",
  ])("accepts the private target %s at creation but refuses to deliver to it", async (url) => {
    const emu = await emulator();
    const { id } = await create(emu, { webhook_url: url });
    const answer = await call(emu, "POST", `/webhooks/${id}/test/`);
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual(errorBody("Webhook URL is not deliverable"));
    const report = await emu.deliver(id, { maxRetries: 2 });
    expect(report.delivered).toBe(false);
    expect(report.attempts).toHaveLength(1);
    expect(report.attempts[0]?.error).toMatch(/refused/);
  });
});
