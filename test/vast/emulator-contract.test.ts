import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { newPlaceholderUrl } from "../../src/vast/api-types.js";
import {
  type EmulatorOptions,
  startVastEmulator,
  type VastEmulator,
} from "../../src/vast/emulator.js";

/**
 * The emulator held against what Vast.ai publishes, kept as test data that names its sources
 * (test/fixtures/vast-published-api.json: vast-ai/docs, file paths and commits). The emulator and
 * the client were written by us; these facts were not. When Vast.ai changes its published API,
 * the fixture is refreshed and this file says where the emulator no longer follows.
 */
interface PublishedRoute {
  method: string;
  path: string;
  statuses: number[] | Record<string, number[]>;
  responses: Record<string, Record<string, unknown>>;
}

interface Published {
  refs: Record<string, { repo: string; branch: string; commit: string }>;
  sources: Record<string, { ref: string; path: string }>;
  routes: PublishedRoute[];
  createRefusals: Array<{ status: number; msg: string }>;
  webhookFields: { fields: string[]; secretField: string };
  notificationTypeFields: { fields: string[]; contextEnum: string[] };
  errorBodyFields: { merged: string[] };
  rateLimitAnswer: { status: number; bodies: string[] };
  validation: { maxWebhooks: { value: number }; webhookUrl: { maxLength: number } };
}

const published = JSON.parse(
  readFileSync(new URL("../fixtures/vast-published-api.json", import.meta.url), "utf8"),
) as Published;

const KEY = "emulator-key";
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function emulator(options: EmulatorOptions = {}): Promise<VastEmulator> {
  const emu = await startVastEmulator({ allowLoopbackHttp: true, ...options });
  closers.push(() => emu.close());
  return emu;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body; empty when it is not JSON (the 429's plain text). */
  json: Record<string, unknown>;
}

async function call(
  emu: VastEmulator,
  method: string,
  path: string,
  body?: unknown,
  key: string = KEY,
): Promise<Answer> {
  const response = await fetch(`${emu.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Plain text: the caller reads `text`.
  }
  return { status: response.status, headers: response.headers, text, json };
}

function route(method: string, path: string): PublishedRoute {
  const found = published.routes.find((r) => r.method === method && r.path === path);
  if (!found) throw new Error(`the fixture has no ${method} ${path}`);
  return found;
}

/** Every status any published source lists for the route. */
function statusesOf(r: PublishedRoute): number[] {
  return Array.isArray(r.statuses) ? r.statuses : [...new Set(Object.values(r.statuses).flat())];
}

function fieldsOf(r: PublishedRoute, status: number, variant?: string): string[] {
  const response = r.responses[String(status)] ?? {};
  const picked = (variant ? response[variant] : response) as { fields?: string[] } | undefined;
  if (!picked?.fields) throw new Error(`the fixture has no fields for ${r.method} ${r.path}`);
  return picked.fields;
}

const sortedKeys = (value: unknown) => Object.keys(value as object).sort();

async function createOne(emu: VastEmulator, url = newPlaceholderUrl()): Promise<number> {
  const answer = await call(emu, "POST", "/api/v0/webhooks/", {
    webhook_url: url,
    event_types: ["client:low_credit"],
  });
  expect(answer.status).toBe(200);
  return (answer.json.webhook as { id: number }).id;
}

describe("the published facts", () => {
  it("name their sources by repository, path and commit", () => {
    for (const source of Object.values(published.sources)) {
      const ref = published.refs[source.ref];
      expect(ref?.repo).toBe("vast-ai/docs");
      expect(ref?.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(source.path).toMatch(/\S/);
    }
  });
});

describe("the emulator follows Vast.ai's published API", () => {
  it("answers every published route, with a published status and the published fields", async () => {
    const emu = await emulator();
    const target = await createOne(emu);
    const create = route("POST", "/api/v0/webhooks/");
    const created = await call(emu, "POST", create.path, {
      name: "contract",
      webhook_url: newPlaceholderUrl(),
      event_types: ["client:low_credit"],
    });
    expect(statusesOf(create)).toContain(created.status);
    expect(sortedKeys(created.json)).toEqual([...fieldsOf(create, 200)].sort());
    const webhook = created.json.webhook as Record<string, unknown>;
    expect(sortedKeys(webhook)).toEqual(
      [...published.webhookFields.fields, published.webhookFields.secretField].sort(),
    );

    const list = route("GET", "/api/v0/webhooks/");
    const listed = await call(emu, "GET", list.path);
    expect(statusesOf(list)).toContain(listed.status);
    expect(sortedKeys(listed.json)).toEqual([...fieldsOf(list, 200)].sort());
    for (const item of listed.json.webhooks as unknown[]) {
      // The secret is published as returned by create and rotate only.
      expect(sortedKeys(item)).toEqual([...published.webhookFields.fields].sort());
    }

    const update = route("PUT", "/api/v0/webhooks/{id}/");
    const updated = await call(emu, "PUT", `/api/v0/webhooks/${target}/`, { name: "renamed" });
    expect(statusesOf(update)).toContain(updated.status);
    expect(sortedKeys(updated.json)).toEqual([...fieldsOf(update, 200)].sort());
    expect(sortedKeys(updated.json.webhook)).toEqual([...published.webhookFields.fields].sort());

    const rotate = route("POST", "/api/v0/webhooks/{id}/rotate-secret/");
    const rotated = await call(emu, "POST", `/api/v0/webhooks/${target}/rotate-secret/`);
    expect(statusesOf(rotate)).toContain(rotated.status);
    expect(sortedKeys(rotated.json)).toEqual([...fieldsOf(rotate, 200)].sort());
    expect(rotated.json.webhook).toHaveProperty(published.webhookFields.secretField);

    const types = route("GET", "/api/v0/notification-types/");
    const catalogue = await call(emu, "GET", types.path);
    expect(statusesOf(types)).toContain(catalogue.status);
    expect(sortedKeys(catalogue.json)).toEqual([...fieldsOf(types, 200)].sort());
    for (const type of catalogue.json.notification_types as Array<Record<string, unknown>>) {
      expect(sortedKeys(type)).toEqual([...published.notificationTypeFields.fields].sort());
      expect(published.notificationTypeFields.contextEnum).toContain(type.context);
    }

    const user = route("GET", "/api/v0/users/current/");
    const me = await call(emu, "GET", user.path);
    expect(statusesOf(user)).toContain(me.status);
    expect(sortedKeys(me.json)).toEqual([...fieldsOf(user, 200)].sort());

    const remove = route("DELETE", "/api/v0/webhooks/{id}/");
    const deleted = await call(emu, "DELETE", `/api/v0/webhooks/${target}/`);
    expect(statusesOf(remove)).toContain(deleted.status);
    expect(deleted.json).toEqual(remove.responses["200"]?.body);
  });

  it("answers a missing webhook on every {id} route as published", async () => {
    const emu = await emulator();
    for (const r of published.routes.filter((r) => r.path.includes("{id}"))) {
      const answer = await call(emu, r.method, r.path.replace("{id}", "999"), {
        name: "x",
      });
      expect(answer.status, `${r.method} ${r.path}`).toBe(404);
      const { msg, success } = r.responses["404"] as { msg: string; success: boolean };
      expect(answer.json).toMatchObject({ success, msg });
    }
  });

  it("refuses what create refuses, with the published messages", async () => {
    const emu = await emulator();
    const messages = published.createRefusals.map((refusal) => refusal.msg);
    const refusedWith = async (body: Record<string, unknown>) => {
      const answer = await call(emu, "POST", "/api/v0/webhooks/", {
        webhook_url: newPlaceholderUrl(),
        event_types: ["client:low_credit"],
        ...body,
      });
      expect(answer.status).toBe(400);
      expect(sortedKeys(answer.json)).toEqual([...published.errorBodyFields.merged].sort());
      return String(answer.json.msg);
    };

    const duplicate = await refusedWith({ event_types: ["client:low_credit", "low_credit"] });
    expect(messages).toContain(duplicate.replace("low_credit", "<slug>"));
    const unknown = await refusedWith({ event_types: ["client:no_such_type"] });
    expect(messages).toContain(unknown.replace("no_such_type", "<slug>"));

    const taken = newPlaceholderUrl();
    await createOne(emu, taken);
    expect(messages).toContain(await refusedWith({ webhook_url: taken }));

    for (let i = 1; i < published.validation.maxWebhooks.value; i++) await createOne(emu);
    expect(messages).toContain(await refusedWith({}));
    expect(emu.webhooks()).toHaveLength(published.validation.maxWebhooks.value);
  });

  it("validates create with the published messages", async () => {
    const emu = await emulator();
    const published400 = route("POST", "/api/v0/webhooks/").responses["400"] as { msgs: string[] };
    const max = published.validation.webhookUrl.maxLength;
    const cases: Array<Record<string, unknown>> = [
      { webhook_url: 5 },
      { webhook_url: "http://example.com/hook" },
      { webhook_url: `https://example.com/${"a".repeat(max)}` },
      { webhook_url: "https://example.com:99999/hook" },
      { event_types: "client:low_credit" },
      { event_types: [] },
    ];
    for (const body of cases) {
      const answer = await call(emu, "POST", "/api/v0/webhooks/", {
        webhook_url: newPlaceholderUrl(),
        event_types: ["client:low_credit"],
        ...body,
      });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(published400.msgs).toContain(answer.json.msg);
    }
  });

  it("refuses on update what update refuses: nothing to change, a URL already registered", async () => {
    const emu = await emulator();
    const published400 = route("PUT", "/api/v0/webhooks/{id}/").responses["400"] as {
      msgs: string[];
    };
    const taken = newPlaceholderUrl();
    await createOne(emu, taken);
    const other = await createOne(emu);
    const empty = await call(emu, "PUT", `/api/v0/webhooks/${other}/`, {});
    expect(empty.status).toBe(400);
    expect(published400.msgs).toContain(empty.json.msg);
    const clash = await call(emu, "PUT", `/api/v0/webhooks/${other}/`, { webhook_url: taken });
    expect(clash.status).toBe(400);
    expect(published400.msgs).toContain(clash.json.msg);
  });

  it("answers the test route as the backend spec says: 200 with ids, 400 and 502 with its messages", async () => {
    const emu = await emulator();
    const test = route("POST", "/api/v0/webhooks/{id}/test/");
    const receiver = await startReceiver([200, 401, 503]);
    const id = await createOne(emu, receiver.url);
    const ok = await call(emu, "POST", `/api/v0/webhooks/${id}/test/`);
    expect(ok.status).toBe(200);
    expect(sortedKeys(ok.json)).toEqual([...fieldsOf(test, 200, "backend-test")].sort());
    expect(ok.json.webhook_id).toBe(id);
    expect(ok.json.event_id).toBe(receiver.eventIds[0]);
    for (const status of [400, 502]) {
      const answer = await call(emu, "POST", `/api/v0/webhooks/${id}/test/`);
      expect(answer.status).toBe(status);
      const { msg, success } = test.responses[String(status)] as { msg: string; success: boolean };
      expect(answer.json).toMatchObject({ success, msg });
    }
    // Published: one event a call, never retried.
    expect(receiver.eventIds).toHaveLength(3);
  });

  it("limits the rate per route and key with the published 429: plain text, no Retry-After", async () => {
    const emu = await emulator({ minIntervalMs: 60_000 });
    await call(emu, "GET", "/api/v0/webhooks/");
    const limited = await call(emu, "GET", "/api/v0/webhooks/");
    expect(limited.status).toBe(published.rateLimitAnswer.status);
    expect(published.rateLimitAnswer.bodies).toContain(limited.text);
    expect(limited.headers.get("retry-after")).toBeNull();
    // Another route is its own limit.
    expect((await call(emu, "GET", "/api/v0/users/current/")).status).toBe(200);
  });

  it("names event types by slug when told to, and takes either form", async () => {
    const emu = await emulator({ typeNaming: "slug" });
    const created = await call(emu, "POST", "/api/v0/webhooks/", {
      webhook_url: newPlaceholderUrl(),
      event_types: ["low_credit", "client:outbid"],
    });
    expect(created.status).toBe(200);
    expect((created.json.webhook as { event_types: string[] }).event_types).toEqual([
      "low_credit",
      "outbid",
    ]);
    const listed = await call(emu, "GET", "/api/v0/webhooks/");
    expect((listed.json.webhooks as Array<{ event_types: string[] }>)[0]?.event_types).toEqual([
      "low_credit",
      "outbid",
    ]);
  });
});

/** A webhook receiver on loopback answering a script of statuses, noting each event id. */
async function startReceiver(script: number[]): Promise<{ url: string; eventIds: string[] }> {
  const { createServer } = await import("node:http");
  const eventIds: string[] = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => {
      raw += chunk.toString("utf8");
    });
    req.on("end", () => {
      eventIds.push(String((JSON.parse(raw) as { event_id: string }).event_id));
      res.writeHead(script.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, eventIds };
}
