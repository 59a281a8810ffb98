import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { slugOf } from "../../src/vast/type-selection.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import type { ProgramRun } from "../support/run-program.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * `vast-gchat route` as a user drives it (issue 16): the routes in the config directory, their Chat
 * URLs kept as secrets, the Vast.ai webhook (the emulator) subscribed to what they need, and the
 * samples `route test` sends, in a fake Chat.
 */
let world: World;
let serve: CliProcess | undefined;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await serve?.stop(10_000);
  serve = undefined;
  await world.close();
});

const BILLING_SPACE = "BBBBbilling";
const OPS_SPACE = "CCCCops";
/** Everything a run printed; the secrets must be absent from it (see expectNoSecrets). */
let printed = "";

async function run(args: string[], input?: string, extra?: Record<string, string>) {
  const result = await world.run(args, extra, input);
  printed += result.stdout + result.stderr;
  return result;
}

async function initialised(...extra: string[]) {
  const result = await run(initArgs(world, "--no-chat-check", ...extra), API_KEY);
  expect(result.code, result.stderr).toBe(0);
  return result;
}

function addBilling(...extra: string[]) {
  return run(
    ["route", "add", "billing", "--types", "billing", "--chat-url-stdin", ...extra],
    `${world.chat.webhookUrl(BILLING_SPACE)}\n`,
  );
}

interface ListedRoute {
  name: string;
  types: string[];
  space: string | null;
  mentions: string[];
  url_source: string | null;
  counts: { pending: number; delivered: number; dead: number } | null;
}

async function listed(extra?: Record<string, string>): Promise<ListedRoute[]> {
  const result = await run(["route", "list", "--json"], undefined, extra);
  expect(result.code, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { routes: ListedRoute[] }).routes;
}

function webhookSlugs(): string[] {
  return (world.vast.webhooks()[0]?.event_types ?? []).map(slugOf).sort();
}

const SIX = [
  "instance_created",
  "instance_started",
  "instance_stopped",
  "low_credit",
  "outbid",
  "upcoming_downtime",
];

function messagesTo(space: string) {
  return world.chat.messages.filter((message) => message.space === space);
}

/** No key or token of any Chat URL, no API key, no signing secret: in nothing any run printed. */
function expectNoSecrets() {
  const [webhook] = world.vast.webhooks();
  const signing = webhook ? world.vast.secretOf(webhook.id) : undefined;
  for (const secret of ["fake-key-123", "fake-token-456", API_KEY, signing]) {
    if (secret) expect(printed).not.toContain(secret);
  }
}

/** The error line (a warning, such as the fake Chat's host not being Google's, may come first). */
function firstError(result: ProgramRun): string {
  return result.stderr.split("\n").find((line) => /^error:/i.test(line)) ?? "";
}

beforeEach(() => {
  printed = "";
});

describe("init and the route default", () => {
  it("init makes the route default, types all, in the space it checked", async () => {
    await initialised();
    const [route, ...others] = await listed();
    expect(others).toEqual([]);
    expect(route).toMatchObject({
      name: "default",
      types: ["all"],
      mentions: [],
      space: expect.stringContaining("spaces/AAAAfakeSpace"),
      url_source: "stored",
    });
    const config = JSON.parse(readFileSync(join(world.configDir, "config.json"), "utf8"));
    expect(config.routes).toEqual([
      { name: "default", types: ["all"], mentions: [], chatSpace: route?.space },
    ]);
    // The webhook still subscribes to what init chose: default's `all` adds nothing of its own.
    expect(webhookSlugs()).toEqual(SIX);
    expectNoSecrets();
  });

  it("a config without routes (made before them) reads as default, types all", async () => {
    await initialised();
    const path = join(world.configDir, "config.json");
    const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    delete config.routes;
    writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
    const [route, ...others] = await listed();
    expect(others).toEqual([]);
    expect(route).toMatchObject({ name: "default", types: ["all"], url_source: "stored" });
    expect(route?.space).toContain("spaces/AAAAfakeSpace");
    // And a route can be added to it.
    expect((await addBilling("--no-chat-check")).code).toBe(0);
    expect((await listed()).map((r) => r.name)).toEqual(["default", "billing"]);
  });

  it("without a config directory, GOOGLE_CHAT_URL is the route default", async () => {
    const routes = await listed({ GOOGLE_CHAT_URL: world.chat.webhookUrl(OPS_SPACE) });
    expect(routes).toEqual([
      {
        name: "default",
        types: ["all"],
        space: expect.stringContaining(`spaces/${OPS_SPACE}`),
        mentions: [],
        url_source: "GOOGLE_CHAT_URL",
        counts: null,
      },
    ]);
    const human = await run(["route", "list"], undefined, {
      GOOGLE_CHAT_URL: world.chat.webhookUrl(OPS_SPACE),
    });
    expect(human.stdout).toMatch(/^NAME +TYPES +SPACE +MENTIONS +PENDING +DELIVERED +DEAD$/m);
    expect(human.stdout).toContain("The route default posts to GOOGLE_CHAT_URL's space here.");
    expectNoSecrets();
  });
});

describe("route add", () => {
  it("checks and proves the URL, keeps it as a secret, and subscribes the webhook to the union", async () => {
    await initialised();
    const result = await addBilling("--mention", "users/123456789", "--mention", "all");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Posting a check message to spaces/BBBBbilling");
    expect(result.stdout).toMatch(
      /Route billing added: billing -> Google Chat spaces\/BBBBbilling.*, mentioning users\/123456789, all\./,
    );
    expect(result.stdout).toContain(
      "Webhook 1 now subscribes to 8 event types (+billing_failed, +payment_receipt).",
    );
    expect(JSON.stringify(messagesTo(BILLING_SPACE)[0]?.body)).toContain(
      "notifications of the route billing will arrive in this space",
    );
    expect(webhookSlugs()).toEqual([...SIX, "billing_failed", "payment_receipt"].sort());

    const secrets = JSON.parse(readFileSync(join(world.configDir, "secrets.json"), "utf8"));
    expect(secrets["chatUrl:billing"]).toBe(world.chat.webhookUrl(BILLING_SPACE));
    expect(secrets.chatUrl).toBe(world.chat.webhookUrl());
    const config = readFileSync(join(world.configDir, "config.json"), "utf8");
    expect(config).not.toContain("fake-token-456");

    const routes = await listed();
    expect(routes.map(({ name, types, mentions }) => ({ name, types, mentions }))).toEqual([
      { name: "default", types: ["all"], mentions: [] },
      { name: "billing", types: ["billing"], mentions: ["users/123456789", "all"] },
    ]);
    expect(routes[1]?.space).toContain("spaces/BBBBbilling");
    const human = await run(["route", "list"]);
    expect(human.stdout).toMatch(/^billing +billing +spaces\/BBBBbilling.* users\/123456789,all/m);
    expectNoSecrets();
  });

  it("takes keys, slugs, groups and all, and the webhook gets each type once", async () => {
    await initialised();
    const result = await run(
      [
        "route",
        "add",
        "ops",
        "--types",
        "host, client:instance_offline,instance_offline,outbid",
        "--chat-url-stdin",
        "--no-chat-check",
      ],
      `${world.chat.webhookUrl(OPS_SPACE)}\n`,
    );
    expect(result.code, result.stderr).toBe(0);
    expect((await listed())[1]?.types).toEqual(["host", "client:instance_offline", "outbid"]);
    expect(webhookSlugs()).toEqual(
      [
        ...SIX,
        "instance_offline",
        "machine_offline",
        "machine_online",
        "machine_error",
        "maintenance_scheduled",
      ].sort(),
    );
    expect(messagesTo(OPS_SPACE)).toEqual([]); // --no-chat-check
  });

  it("exits 2 for a name in use, and --replace changes the route and the webhook", async () => {
    await initialised();
    expect((await addBilling()).code).toBe(0);
    const again = await addBilling();
    expect(again.code).toBe(2);
    expect(firstError(again)).toBe("Error: The route billing exists already (billing).");
    expect(again.stderr).toContain("Pass --replace to change it");

    const replaced = await run([
      "route",
      "add",
      "billing",
      "--types",
      "payment_receipt",
      "--replace",
      "--mention",
      "users/42",
    ]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toContain("Route billing replaced: payment_receipt");
    // The URL it had is kept (and not proved again): no second check message.
    expect(messagesTo(BILLING_SPACE)).toHaveLength(1);
    expect(webhookSlugs()).toEqual([...SIX, "payment_receipt"].sort());
    expect((await listed())[1]).toMatchObject({
      types: ["payment_receipt"],
      mentions: ["users/42"],
      space: expect.stringContaining("spaces/BBBBbilling"),
    });
  });

  it("replaces default with --replace, taking GOOGLE_CHAT_URL for it", async () => {
    await initialised();
    const result = await run(
      ["route", "add", "default", "--types", "instance", "--replace", "--no-chat-check"],
      undefined,
      { GOOGLE_CHAT_URL: world.chat.webhookUrl(OPS_SPACE) },
    );
    expect(result.code, result.stderr).toBe(0);
    const [route] = await listed();
    expect(route).toMatchObject({ name: "default", types: ["instance"] });
    expect(route?.space).toContain(`spaces/${OPS_SPACE}`);
    const secrets = JSON.parse(readFileSync(join(world.configDir, "secrets.json"), "utf8"));
    expect(secrets.chatUrl).toBe(world.chat.webhookUrl(OPS_SPACE));
  });

  it.each([
    [["--types", "billing,nope"], "Error: --types: nope is not an event type, group or all."],
    [["--types", "billings"], "Error: --types: billings is not an event type, group or all."],
    [["--types", " , "], "Error: --types needs at least one event type, group or all."],
    [
      ["--types", "billing", "--mention", "@alice"],
      `error: option '--mention <m>' argument '@alice' is invalid. "@alice" is not a mention`,
    ],
    [
      ["--types", "billing", "--mention", "<users/all>"],
      `error: option '--mention <m>' argument '<users/all>' is invalid.`,
    ],
    [["--chat-url", "https://example.org/x?token=t"], "error: required option '--types <list>'"],
  ])("exits 2 with a clear line for %j", async (flags, line) => {
    await initialised();
    const before = readFileSync(join(world.configDir, "config.json"), "utf8");
    const result = await run(
      ["route", "add", "billing", "--chat-url-stdin", ...flags],
      `${world.chat.webhookUrl(BILLING_SPACE)}\n`,
    );
    expect(result.code).toBe(2);
    expect(firstError(result)).toContain(line);
    expect(readFileSync(join(world.configDir, "config.json"), "utf8")).toBe(before);
    expect(webhookSlugs()).toEqual(SIX);
    expect(messagesTo(BILLING_SPACE)).toEqual([]);
  });

  it("exits 2 for a bad route name, and names what a list may hold", async () => {
    const badName = await run(["route", "add", "Billing!", "--types", "billing"]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('"Billing!" is not a route name');
    await initialised();
    const unknown = await addBilling("--types", "gpu");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^Valid: all, account, billing, instance, host, low_credit, /m);
  });

  it("exits 2 for a Chat URL that is not one, and 1 when Chat refuses the check message", async () => {
    await initialised();
    const notUrl = await run(
      ["route", "add", "billing", "--types", "billing", "--chat-url-stdin"],
      "http://chat.example.org/v1/spaces/X/messages?key=k&token=t\n",
    );
    expect(notUrl.code).toBe(2);
    expect(firstError(notUrl)).toBe(
      "Error: The Google Chat URL is not usable: it must use https:// (plain http is only for 127.0.0.1).",
    );
    world.chat.behaviour = { kind: "status", status: 404 };
    const refused = await addBilling();
    expect(refused.code).toBe(1);
    expect(firstError(refused)).toMatch(/^Error: Google Chat did not take the check message/);
    expect(refused.stderr).toContain("--no-chat-check");
    expect((await listed()).map((r) => r.name)).toEqual(["default"]);
    expect(webhookSlugs()).toEqual(SIX);
  });

  it("without a URL and without a terminal, names the flags that give one", async () => {
    await initialised();
    const result = await run(["route", "add", "billing", "--types", "billing"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Pass --chat-url-stdin (or set GOOGLE_CHAT_URL).");
  });

  it("stores the route when no webhook is set up here, and says so", async () => {
    const result = await run(
      ["route", "add", "billing", "--types", "billing", "--no-chat-check"],
      undefined,
      { GOOGLE_CHAT_URL: world.chat.webhookUrl(BILLING_SPACE) },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("No Vast.ai webhook is set up here, so none was updated");
    expect((await listed()).map((r) => r.name)).toEqual(["default", "billing"]);
  });

  it("stores the route when there is no API key to update the webhook with, and says so", async () => {
    await initialised();
    const secretsPath = join(world.configDir, "secrets.json");
    const secrets = JSON.parse(readFileSync(secretsPath, "utf8")) as Record<string, unknown>;
    delete secrets.apiKey;
    writeFileSync(secretsPath, JSON.stringify(secrets), { mode: 0o600 });
    const result = await addBilling("--no-chat-check");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("No Vast.ai API key here, so webhook 1 was not updated");
    expect(result.stderr).toContain("billing_failed");
    expect(webhookSlugs()).toEqual(SIX);
  });

  it("reports JSON with --json, without the URL", async () => {
    await initialised();
    const result = await addBilling("--json", "--mention", "users/7");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: true,
      action: "added",
      route: { name: "billing", types: ["billing"], mentions: ["users/7"] },
      webhook: { id: 1, updated: true },
    });
    expectNoSecrets();
  });
});

describe("route remove", () => {
  it("removes the route and its secret, and the webhook drops what only it needed", async () => {
    await initialised();
    expect((await addBilling()).code).toBe(0);
    const result = await run(["route", "remove", "billing"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Route billing removed");
    expect(result.stdout).toContain(
      "Webhook 1 now subscribes to 6 event types (-billing_failed, -payment_receipt).",
    );
    expect(webhookSlugs()).toEqual(SIX);
    const secrets = JSON.parse(readFileSync(join(world.configDir, "secrets.json"), "utf8"));
    expect(secrets["chatUrl:billing"]).toBeUndefined();
    expect((await listed()).map((r) => r.name)).toEqual(["default"]);
  });

  it("exits 2 for the last route, for default, and for a route that is not there", async () => {
    await initialised();
    const last = await run(["route", "remove", "default"]);
    expect(last.code).toBe(2);
    expect(firstError(last)).toBe(
      "Error: The route default is the last route, and the last route cannot be removed.",
    );
    expect((await addBilling()).code).toBe(0);
    const catchAll = await run(["route", "remove", "default"]);
    expect(catchAll.code).toBe(2);
    expect(firstError(catchAll)).toBe(
      "Error: The route default cannot be removed: it gets every event no other route matches.",
    );
    const missing = await run(["route", "remove", "nope"]);
    expect(missing.code).toBe(2);
    expect(firstError(missing)).toBe("Error: There is no route nope.");
    expect((await listed()).map((r) => r.name)).toEqual(["default", "billing"]);
  });
});

describe("route test", () => {
  it("with no adapter running, posts a sample straight to the route's space, with its mentions", async () => {
    await initialised();
    expect((await addBilling("--mention", "users/123456789", "--no-chat-check")).code).toBe(0);
    const result = await run(["route", "test", "billing"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /The low_credit sample arrived in spaces\/BBBBbilling.* \(posted straight to the space: no adapter runs here\)\./,
    );
    const [message] = messagesTo(BILLING_SPACE);
    expect(message?.body.text).toBe("<users/123456789>");
    expect(JSON.stringify(message?.body)).toContain("Test of the route billing");
    expect(messagesTo("AAAAfakeSpace")).toEqual([]);
    const json = await run(["route", "test", "billing", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      route: "billing",
      type: "low_credit",
      via: "direct",
      space: expect.stringContaining("spaces/BBBBbilling"),
    });
    expectNoSecrets();
  });

  it("exits 1 when Chat refuses the sample, 2 for a route that is not there", async () => {
    await initialised();
    world.chat.behaviour = { kind: "status", status: 403 };
    const refused = await run(["route", "test", "default"]);
    expect(refused.code).toBe(1);
    expect(firstError(refused)).toMatch(/^Error: Google Chat did not take the sample: .*403/);
    const missing = await run(["route", "test", "nope"]);
    expect(missing.code).toBe(2);
  });

  it("through a running serve for the routes it delivers, straight to the space for another", async () => {
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    await initialised("--public-url", url, "--port", String(port));
    expect((await addBilling("--no-chat-check")).code).toBe(0);
    serve = spawnCli(["serve"], world.env());
    await serve.waitForLog((record) => record.msg === "ready");

    // default takes every type: its sample is one billing does not, so billing's space stays quiet.
    const viaAdapter = await run(["route", "test", "default", "--json"]);
    expect(viaAdapter.code, viaAdapter.stderr).toBe(0);
    const report = JSON.parse(viaAdapter.stdout) as { via: string; event_id: string };
    expect(report).toMatchObject({
      ok: true,
      route: "default",
      via: "adapter",
      also_routed_to: [],
    });
    await serve.waitForLog((r) => r.msg === "delivered" && r.event_id === report.event_id);
    expect(JSON.stringify(messagesTo("AAAAfakeSpace").at(-1)?.body)).toContain(
      "Test of the route default",
    );
    expect(messagesTo(BILLING_SPACE)).toEqual([]);

    // Every billing type goes to default too: said, and waited for in billing's own space.
    const billing = await run(["route", "test", "billing"]);
    expect(billing.code, billing.stderr).toBe(0);
    expect(billing.stdout).toMatch(
      /went through the adapter .* and arrived in spaces\/BBBBbilling/,
    );
    expect(billing.stdout).toContain("also goes to the route default, and so did this sample");
    expect(JSON.stringify(messagesTo(BILLING_SPACE).at(-1)?.body)).toContain(
      "Test of the route billing",
    );
    // Its copy for default is delivered on its own.
    await serve.waitForLog(
      (r) => r.msg === "delivered" && r.route === "default" && r.event_id !== report.event_id,
    );
    // Each route's own deliveries.
    const counted = Object.fromEntries((await listed()).map((r) => [r.name, r.counts]));
    expect(counted.billing).toEqual({ pending: 0, delivered: 1, dead: 0 });
    expect(counted.default).toEqual({ pending: 0, delivered: 2, dead: 0 });

    // A route added while serve runs is not one it delivers until restarted.
    const added = await run(
      ["route", "add", "ops", "--types", "host", "--chat-url-stdin", "--no-chat-check"],
      `${world.chat.webhookUrl(OPS_SPACE)}\n`,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toMatch(
      /The adapter running here \(pid \d+\) delivers the routes as they were when it started: restart `vast-gchat serve`/,
    );
    const direct = await run(["route", "test", "ops"]);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stderr).toMatch(
      /The adapter running here \(pid \d+\) does not deliver the route ops/,
    );
    expect(JSON.stringify(messagesTo(OPS_SPACE).at(-1)?.body)).toContain("Test of the route ops");
    expectNoSecrets();
  });
});

describe("status and cleanup", () => {
  it("status lists the routes: name, types, space and mentions, never a URL's key or token", async () => {
    await initialised();
    expect((await addBilling("--mention", "all")).code).toBe(0);
    const human = await run(["status"]);
    expect(human.stdout).toContain("Routes            2");
    expect(human.stdout).toMatch(/^ {2}default +all -> spaces\/AAAAfakeSpace/m);
    expect(human.stdout).toMatch(
      /^ {2}billing +billing -> spaces\/BBBBbilling.*, mentioning all$/m,
    );
    const json = await run(["status", "--json"]);
    const report = JSON.parse(json.stdout) as { routes: ListedRoute[] };
    expect(report.routes.map(({ name, types, mentions }) => ({ name, types, mentions }))).toEqual([
      { name: "default", types: ["all"], mentions: [] },
      { name: "billing", types: ["billing"], mentions: ["all"] },
    ]);
    expectNoSecrets();
  });

  it("cleanup forgets every route's Chat URL", async () => {
    await initialised();
    expect((await addBilling("--no-chat-check")).code).toBe(0);
    const result = await run(["cleanup", "--yes"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("chatUrl, chatUrl:billing");
    expect(result.stdout).toContain("routes");
  });
});

describe("as a process", () => {
  it("adds, lists and removes routes, and never prints a secret", async () => {
    const init = await world.runProcess(initArgs(world, "--no-chat-check"), {}, API_KEY);
    expect(init.code, init.stderr).toBe(0);
    const add = await world.runProcess(
      ["route", "add", "billing", "--types", "billing", "--chat-url-stdin", "--mention", "all"],
      {},
      `${world.chat.webhookUrl(BILLING_SPACE)}\n`,
    );
    expect(add.code, add.stderr).toBe(0);
    const dup = await world.runProcess(
      ["route", "add", "billing", "--types", "billing"],
      {},
      `${world.chat.webhookUrl(BILLING_SPACE)}\n`,
    );
    expect(dup.code).toBe(2);
    const list = await world.runProcess(["route", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^billing +billing +spaces\/BBBBbilling/m);
    const last = await world.runProcess(["route", "remove", "default"]);
    expect(last.code).toBe(2);
    const remove = await world.runProcess(["route", "remove", "billing"]);
    expect(remove.code).toBe(0);
    printed = [init, add, dup, list, last, remove].map((r) => r.stdout + r.stderr).join("");
    expectNoSecrets();
    expect(webhookSlugs()).toEqual(SIX);
  });
});
