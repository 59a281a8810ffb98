import { once } from "node:events";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { VastClient } from "../../src/vast/api-client.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { sendSignedEvent } from "../../src/vast/send-event.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * The tutorial's whole journey, each step a real process against the Vast.ai emulator and a fake
 * Chat: init -> serve -> test -> duplicates -> rotate-secret -> cleanup.
 */
let world: World;
let serve: CliProcess | undefined;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null)
    serve.child.kill("SIGKILL");
  await serve?.exited;
  serve = undefined;
  await world.close();
});

async function setUp(
  serveEnv: Record<string, string> = {},
): Promise<{ port: number; url: string }> {
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  // A later --public-url wins over initArgs' placeholder: the webhook points at this adapter.
  const init = await world.run(
    initArgs(world, "--public-url", url, "--port", String(port), "--no-chat-check"),
    {},
    API_KEY,
  );
  expect(init.code).toBe(0);
  serve = spawnCli(["serve"], world.env(serveEnv));
  await serve.waitForLog((record) => record.msg === "ready");
  return { port, url: `${url}/` };
}

it("init -> serve -> test -> duplicates -> rotate-secret -> cleanup leaves nothing behind", async () => {
  const { url } = await setUp();

  const test = await world.run(["test", "--wait", "15"]);
  expect(test.stderr).toBe("");
  expect(test.code).toBe(0);
  expect(test.stdout).toContain("✓ The event reached Google Chat");
  expect(test.stdout).toMatch(/Vast\.ai -> adapter -> Google Chat in \d+\.\d s\./);
  expect(JSON.stringify(world.chat.messages.at(-1)?.body)).toContain("Test event received");

  // At-least-once delivery: the same event twice, posted once.
  const report = await world.vast.deliver(1, { type: "low_credit", attempts: 2 });
  expect(report.attempts.map((a) => a.status)).toEqual([200, 200]);
  expect(report.attempts[1]?.answer).toMatchObject({ duplicate: true });
  await world.chat.waitFor((chat) =>
    chat.messages.some((m) => JSON.stringify(m.body).includes(report.eventId)),
  );

  // Rotation: the new secret works at once, the old one during its grace period.
  const oldSecret = world.vast.secretOf(1) ?? "";
  const rotate = await world.run(["rotate-secret"]);
  expect(rotate.code).toBe(0);
  expect(world.vast.secretOf(1)).not.toBe(oldSecret);
  const signedWithNew = await world.vast.deliver(1, { type: "instance_stopped" });
  expect(signedWithNew.delivered).toBe(true);
  const signedWithOld = await sendSignedEvent(url, oldSecret, sampleEvent("outbid"));
  expect(signedWithOld.status).toBe(200);
  expect((await sendSignedEvent(url, "never-a-secret", sampleEvent("outbid"))).status).toBe(401);

  serve?.child.kill("SIGTERM");
  expect((await serve?.exited)?.code).toBe(0);

  const cleanup = await world.run(["cleanup", "--yes"]);
  expect(cleanup.code).toBe(0);
  expect(world.vast.webhooks()).toEqual([]);
  const secrets = [oldSecret, world.vast.secretOf(1), API_KEY, "fake-token-456"].filter(
    Boolean,
  ) as string[];
  for (const name of readdirSync(world.configDir)) {
    const text = readFileSync(join(world.configDir, name)).toString("latin1");
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
  const everything =
    [test, rotate, cleanup].map((r) => r.stdout + r.stderr).join("") + (serve?.stdout() ?? "");
  for (const secret of secrets) expect(everything).not.toContain(secret);
});

it("test waits for the first route that delivers the test event, whatever another space answers", async () => {
  const port = await freeLoopbackPort();
  const init = await world.run(
    initArgs(
      world,
      "--public-url",
      `http://127.0.0.1:${port}`,
      "--port",
      String(port),
      "--no-chat-check",
    ),
    {},
    API_KEY,
  );
  expect(init.code).toBe(0);
  // Vast.ai's test event is an account event: default (all) and this route both get it.
  const added = await world.run(
    ["route", "add", "account", "--types", "account", "--chat-url-stdin", "--no-chat-check"],
    {},
    `${world.chat.webhookUrl("EEEEaccount")}\n`,
  );
  expect(added.code, added.stderr).toBe(0);
  // default's space is gone.
  world.chat.spaceBehaviour.set("AAAAfakeSpace", { kind: "status", status: 404 });
  serve = spawnCli(["serve"], world.env());
  await serve.waitForLog((record) => record.msg === "ready");

  const test = await world.run(["test", "--wait", "15", "--json"]);
  expect(test.code, test.stderr).toBe(0);
  expect(JSON.parse(test.stdout)).toMatchObject({ ok: true, delivered: true, route: "account" });
  const [message] = world.chat.messages.filter((m) => m.space === "EEEEaccount");
  expect(JSON.stringify(message?.body)).toContain("Test event received");
});

it("test says the event reached the adapter but not Chat, when Chat refuses it", async () => {
  await setUp();
  world.chat.behaviour = { kind: "status", status: 500 };
  const test = await world.run(["test", "--wait", "2"]);
  expect(test.code).toBe(1);
  expect(test.stdout).toContain("✗ The event has not reached Google Chat");
  expect(test.stderr).toMatch(
    /The adapter received the test event but Google Chat has not taken it: Chat answered 500/,
  );
});

it("test says Vast.ai could not reach the adapter when nothing listens, asking once", async () => {
  await setUp();
  serve?.child.kill("SIGTERM");
  await serve?.exited;
  const test = await world.run(["test", "--wait", "2"]);
  expect(test.code).toBe(1);
  expect(test.stderr).toContain(
    'Vast.ai could not reach the adapter with its test event (502). Vast.ai said: "Webhook delivery failed". No adapter is running here.',
  );
  expect(test.stderr).toContain("Start `vast-gchat serve`");
  expect(test.stderr).not.toMatch(/not answering|try again in a minute/i);
  // One test event, never retried: Vast.ai sends one a call.
  expect(world.vast.requests.filter((r) => r.path.endsWith("/test/"))).toHaveLength(1);
});

it("test says the adapter refused the test event when the secrets do not match", async () => {
  await setUp({ VAST_WEBHOOK_SECRET: "not-the-webhook-secret" });
  const test = await world.run(["test", "--wait", "2"]);
  expect(test.code).toBe(1);
  expect(test.stderr).toContain("The adapter refused Vast.ai's test event (400)");
  expect(test.stderr).toMatch(/signing secret does not match/);
  expect(test.stderr).not.toContain("not-the-webhook-secret");
  expect(world.vast.requests.filter((r) => r.path.endsWith("/test/"))).toHaveLength(1);
});

it("test says the event never reached the adapter when the webhook points elsewhere", async () => {
  await setUp();
  // Something else answers 200 at the webhook's URL: Vast.ai is content, the adapter sees nothing.
  const elsewhere = createServer((req, res) => req.resume().on("end", () => res.end("{}")));
  elsewhere.listen(0, "127.0.0.1");
  await once(elsewhere, "listening");
  const client = new VastClient({ apiKey: API_KEY, baseUrl: world.vast.url });
  await client.updateWebhook(1, {
    webhook_url: `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`,
  });
  const test = await world.run(["test", "--wait", "1"]);
  elsewhere.closeAllConnections();
  elsewhere.close();
  expect(test.code).toBe(1);
  expect(test.stderr).toMatch(/The test event did not reach the adapter within 1 s\./);
  expect(test.stderr).toMatch(/check that the tunnel forwards to http:\/\/127\.0\.0\.1:\d+\//);
});

it("during a rotation, a delivery signed with a secret not stored yet gets 503 (retried), not 401 (lost)", async () => {
  const { url } = await setUp();
  // rotate-secret has marked the rotation and Vast.ai already signs with the new secret.
  const settingsFile = join(world.configDir, "config.json");
  const settings = JSON.parse(readFileSync(settingsFile, "utf8")) as Record<string, unknown>;
  writeFileSync(settingsFile, JSON.stringify({ ...settings, rotationStartedAt: Date.now() }));
  const client = new VastClient({ apiKey: API_KEY, baseUrl: world.vast.url });
  const { webhook_secret: fresh } = await client.rotateSecret(1);
  const early = await sendSignedEvent(url, fresh, sampleEvent("low_credit"));
  expect(early).toEqual({ status: 503, answer: { ok: false, error: "unavailable" } });
});
