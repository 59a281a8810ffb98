import { afterEach, beforeEach, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import type { FakeChat } from "../support/fake-chat.js";
import { type ServeInProcess, startServeInProcess } from "../support/serve-in-process.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * serve's watch on the chain (issue 18) against the Vast.ai emulator, with periods of a second:
 * each problem is posted to Chat once when it begins, not again while it lasts, and once more when
 * it is resolved; `status` and /metrics show it meanwhile. serve runs in this process through the
 * real command line; the webhook points straight at it (no tunnel).
 */
let world: World;
let serve: ServeInProcess | undefined;
let url: string;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await serve?.stop();
  serve = undefined;
  await world.close();
});

/** init with the adapter's own loopback address as the public URL, then serve with `args`. */
async function setUp(args: string[], env: Record<string, string> = {}): Promise<ServeInProcess> {
  const port = await freeLoopbackPort();
  url = `http://127.0.0.1:${port}`;
  const init = await world.run(reinitArgs(), {}, API_KEY);
  expect(init.code).toBe(0);
  serve = await startServeInProcess(args, world.env(env));
  return serve;
}

function reinitArgs(): string[] {
  const port = new URL(url).port;
  return initArgs(world, "--public-url", url, "--port", port, "--no-chat-check");
}

/** The messages Chat took whose JSON contains `text`. */
function messagesWith(chat: FakeChat, text: string) {
  return chat.messages.filter((message) => JSON.stringify(message.body).includes(text));
}

function count(records: Record<string, unknown>[], msg: string, kind: string): number {
  return records.filter((record) => record.msg === msg && record.kind === kind).length;
}

/** Resolves once Vast.ai has been asked `n` more times for `path` (GET) than now. */
async function moreCalls(path: string, n: number, method = "GET"): Promise<void> {
  const calls = () =>
    world.vast.requests.filter((r) => r.method === method && r.path.endsWith(path)).length;
  const target = calls() + n;
  await expect.poll(calls, { timeout: 15_000, interval: 50 }).toBeGreaterThanOrEqual(target);
}

async function metricsOf(serve: ServeInProcess): Promise<string> {
  return (await fetch(`${String(serve.ready.admin_url)}/metrics`)).text();
}

it("a webhook deleted in the console: one alert, none while it lasts, status and metrics show it, resolved after init", async () => {
  const serve = await setUp(["--check-every", "1s", "--self-test-every", "0"]);
  world.vast.consoleDelete(1);

  const opened = await serve.waitForLog((r) => r.msg === "problem" && r.kind === "webhook_missing");
  await world.chat.waitFor((chat) => messagesWith(chat, "The Vast.ai webhook is gone").length > 0);
  const [alert] = messagesWith(world.chat, "The Vast.ai webhook is gone");
  const fallback = String(alert?.body.fallbackText);
  expect(fallback).toContain("Webhook 1 no longer exists on Vast.ai");
  expect(fallback).toContain("What to do: Run vast-gchat init on the adapter's machine");
  expect(JSON.stringify(alert?.body.cardsV2)).toContain("Run <b>vast-gchat init</b>");
  expect(fallback).toMatch(/Since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);

  // Three more checks find it still gone: nothing more is posted or logged as a new problem.
  await moreCalls("/webhooks/", 3);
  expect(messagesWith(world.chat, "The Vast.ai webhook is gone")).toHaveLength(1);
  expect(count(serve.records(), "problem", "webhook_missing")).toBe(1);

  const status = await world.run(["status", "--json"]);
  const report = JSON.parse(status.stdout) as {
    adapter: { problems?: Array<{ kind: string; since: number }> };
    warnings: string[];
  };
  expect(report.adapter.problems).toEqual([
    expect.objectContaining({ kind: "webhook_missing", since: Date.parse(String(opened.since)) }),
  ]);
  expect(report.warnings.join("\n")).toContain("The Vast.ai webhook is gone");
  const text = await world.run(["status"]);
  expect(text.stdout).toMatch(/problems\s+\n\s+webhook_missing since /);
  expect(await metricsOf(serve)).toContain('vast_gchat_problem{kind="webhook_missing"} 1');

  // The user does what the alert says: a new webhook (id 2, a new secret), taken by serve as it runs.
  const init = await world.run(reinitArgs(), {}, API_KEY);
  expect(init.code).toBe(0);
  await serve.waitForLog((r) => r.msg === "problem resolved" && r.kind === "webhook_missing");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Resolved: The Vast.ai webhook is gone").length > 0,
  );
  const [resolved] = messagesWith(world.chat, "Resolved: The Vast.ai webhook is gone");
  // The resolution replies in the alert's thread.
  expect(resolved?.body.thread).toEqual(alert?.body.thread);
  expect(messagesWith(world.chat, "The Vast.ai webhook is gone")).toHaveLength(2);
  expect(await metricsOf(serve)).toContain('vast_gchat_problem{kind="webhook_missing"} 0');
  const after = JSON.parse((await world.run(["status", "--json"])).stdout) as {
    adapter: { problems?: unknown };
  };
  expect(after.adapter.problems).toBeUndefined();
  // And the chain works again, with the new webhook's secret.
  const report2 = await world.vast.deliver(2, { type: "low_credit" });
  expect(report2.attempts.map((a) => a.status)).toEqual([200]);
});

it("a webhook pointed elsewhere or short of types is put back, said in the log, with no alert", async () => {
  const serve = await setUp(["--check-every", "1s", "--self-test-every", "0"]);
  world.vast.consoleUpdate(1, { webhook_url: "http://127.0.0.1:9/somewhere-else" });
  const moved = await serve.waitForLog(
    (r) => r.msg === "webhook pointed elsewhere: pointing it back",
  );
  expect(moved.found).toBe("http://127.0.0.1:9/somewhere-else");
  expect(moved.url).toBe(`${url}/`);
  await serve.waitForLog((r) => r.msg === "webhook pointed" && r.url === `${url}/`);
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${url}/`);

  const before = world.vast.webhooks()[0]?.event_types ?? [];
  expect(before.length).toBeGreaterThan(1);
  world.vast.consoleUpdate(1, { event_types: ["client:low_credit"] });
  const restored = await serve.waitForLog((r) => r.msg === "webhook types restored");
  expect((restored.missing as string[]).length).toBe(before.length - 1);
  expect([...(world.vast.webhooks()[0]?.event_types ?? [])].sort()).toEqual([...before].sort());

  await moreCalls("/webhooks/", 2);
  expect(serve.records().filter((r) => r.msg === "problem")).toEqual([]);
  expect(world.chat.messages).toEqual([]);
});

it("the test endpoint answering 502: one alert, then one resolution when it answers again; the self-test's events never reach Chat", async () => {
  const serve = await setUp(["--check-every", "0", "--self-test-every", "1s"]);
  const first = await serve.waitForLog((r) => r.msg === "self-test ok");
  world.vast.failNext(/\/test\/$/, 502, 3);

  await serve.waitForLog((r) => r.msg === "problem" && r.kind === "self_test_failed");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Vast.ai cannot reach the adapter").length > 0,
  );
  expect(String(messagesWith(world.chat, "cannot reach")[0]?.body.fallbackText)).toContain(
    "Vast.ai could not reach the adapter with its test event (502)",
  );
  await serve.waitForLog((r) => r.msg === "problem resolved" && r.kind === "self_test_failed");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Resolved: Vast.ai cannot reach the adapter").length > 0,
  );
  // The three failures made one alert; the passing self-test after them, one resolution.
  expect(serve.records().filter((r) => r.msg === "self-test failed")).toHaveLength(3);
  expect(messagesWith(world.chat, "Vast.ai cannot reach the adapter")).toHaveLength(2);

  // Every self-test event was answered 200 and not kept: none in the store, none in Chat.
  const oks = serve.records().filter((r) => r.msg === "self-test ok");
  expect(oks.length).toBeGreaterThanOrEqual(2);
  for (const ok of [first, ...oks]) {
    expect(messagesWith(world.chat, String(ok.event_id))).toEqual([]);
  }
  expect(messagesWith(world.chat, "Test event received")).toEqual([]);
  const events = await world.run(["events", "list", "--json"]);
  expect(events.stdout).not.toContain("webhook_test");
  expect(serve.records().filter((r) => r.msg === "received")).toEqual([]);
});

it("a self-test event that never arrives (delivered elsewhere) is a problem until one arrives again", async () => {
  const serve = await setUp(["--check-every", "0", "--self-test-every", "1s"], {
    VAST_GCHAT_SELF_TEST_WAIT_MS: "300",
  });
  world.vast.dropNextDeliveries(2);
  const opened = await serve.waitForLog(
    (r) => r.msg === "problem" && r.kind === "self_test_failed",
  );
  expect(String(opened.summary)).toContain("did not reach this adapter within");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Vast.ai's test event did not arrive").length > 0,
  );
  await serve.waitForLog((r) => r.msg === "problem resolved" && r.kind === "self_test_failed");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Resolved: Vast.ai's test event did not arrive").length > 0,
  );
  expect(serve.records().filter((r) => r.msg === "self-test event did not arrive")).toHaveLength(2);
  expect(messagesWith(world.chat, "test event did not arrive")).toHaveLength(2);
  expect(messagesWith(world.chat, "Test event received")).toEqual([]);
});

it("`vast-gchat test` still reaches Chat while self-tests run", async () => {
  // Only the self-test's own event is held back (self-test-gate.test.ts: one that comes during a
  // self-test's call is released once Vast.ai names its own).
  const serve = await setUp(["--check-every", "0", "--self-test-every", "1s"]);
  await serve.waitForLog((r) => r.msg === "self-test ok");
  const test = await world.run(["test", "--wait", "10"]);
  expect(test.code).toBe(0);
  expect(messagesWith(world.chat, "Test event received")).toHaveLength(1);
});

it("Chat refusing every post is a problem for the log, status and metrics only", async () => {
  const serve = await setUp(["--check-every", "0", "--self-test-every", "0"], {
    VAST_GCHAT_CHAT_ALERT_MS: "500",
  });
  world.chat.behaviour = { kind: "status", status: 500 };
  expect((await world.vast.deliver(1, { type: "low_credit" })).delivered).toBe(true);
  const opened = await serve.waitForLog((r) => r.msg === "problem" && r.kind === "chat_refusing");
  expect(String(opened.summary)).toContain("Chat answered 500");
  expect(await metricsOf(serve)).toContain('vast_gchat_problem{kind="chat_refusing"} 1');
  const status = JSON.parse((await world.run(["status", "--json"])).stdout) as {
    adapter: { problems?: Array<{ kind: string }> };
  };
  expect(status.adapter.problems?.map((p) => p.kind)).toEqual(["chat_refusing"]);

  world.chat.behaviour = { kind: "ok" };
  await serve.waitForLog((r) => r.msg === "problem resolved" && r.kind === "chat_refusing", 20_000);
  await world.chat.waitFor((chat) => messagesWith(chat, "Warning - Your Vast.ai").length > 0);
  // The event, and nothing about Chat's own trouble.
  expect(messagesWith(world.chat, "Google Chat refuses")).toEqual([]);
  expect(serve.records().filter((r) => r.msg === "alert posted")).toEqual([]);
});
