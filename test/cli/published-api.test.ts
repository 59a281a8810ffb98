import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EmulatorOptions } from "../../src/vast/emulator.js";
import { API_KEY, initArgs, initWaitingArgs, startWorld, type World } from "../support/world.js";

/**
 * Every command that talks to Vast.ai, run as a new user would against an emulator that behaves
 * as Vast.ai publishes (test/fixtures/vast-published-api.json): URLs unique across webhooks,
 * types named by key or by slug, duplicates refused, scoped keys, per-route rate limits.
 */
let world: World;
const dirs: string[] = [];
afterEach(async () => {
  await world.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function worldWith(options: EmulatorOptions = {}): Promise<World> {
  world = await startWorld(options);
  return world;
}

/** No call ever asked Vast.ai for a URL it refused as already registered. */
function expectNoRefusedCall() {
  expect(world.vast.requests.filter((r) => r.status >= 400)).toEqual([]);
}

describe("webhooks that wait for their tunnel", () => {
  it("a second machine on the account finishes init: each webhook has its own placeholder", async () => {
    await worldWith();
    const first = await world.run(initWaitingArgs(world), {}, API_KEY);
    expect(first.code).toBe(0);
    const otherMachine = mkdtempSync(join(tmpdir(), "vast-gchat-second-"));
    dirs.push(otherMachine);
    const second = await world.run(
      initWaitingArgs(world, "--name", "vast-gchat on the second machine"),
      { VAST_GCHAT_CONFIG_DIR: otherMachine },
      API_KEY,
    );
    expect(second.stderr).not.toMatch(/already registered/);
    expect(second.code).toBe(0);
    const urls = world.vast.webhooks().map((w) => w.webhook_url);
    expect(urls).toHaveLength(2);
    expect(new Set(urls).size).toBe(2);
    expectNoRefusedCall();
  });

  it("replace never creates the new webhook at the URL the old one holds", async () => {
    await worldWith();
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const replaced = await world.run(
      initArgs(world, "--no-chat-check", "--existing", "replace"),
      {},
      API_KEY,
    );
    expect(replaced.code).toBe(0);
    expect(world.vast.webhooks()).toMatchObject([
      { id: 2, webhook_url: "https://adapter.example.org/" },
    ]);
    expectNoRefusedCall();
    const created = world.vast.requests.filter(
      (r) => r.method === "POST" && r.path.endsWith("/webhooks/"),
    );
    expect(created).toHaveLength(2);
  });

  it("refuses, before creating anything, a URL another webhook of the account holds", async () => {
    await worldWith();
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const otherMachine = mkdtempSync(join(tmpdir(), "vast-gchat-second-"));
    dirs.push(otherMachine);
    const clash = await world.run(
      initArgs(world, "--no-chat-check", "--name", "another one"),
      { VAST_GCHAT_CONFIG_DIR: otherMachine },
      API_KEY,
    );
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(
      /Webhook 1 ".*" already points at https:\/\/adapter\.example\.org\//,
    );
    expect(world.vast.webhooks()).toHaveLength(1);
    expectNoRefusedCall();
  });

  it("update leaves out the URL the webhook already has", async () => {
    await worldWith();
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const update = await world.run(
      initArgs(world, "--no-chat-check", "--existing", "update"),
      {},
      API_KEY,
    );
    expect(update.code).toBe(0);
    expectNoRefusedCall();
  });
});

describe.each(["key", "slug"] as const)("event types named by %s", (typeNaming) => {
  it("types marks what the webhook subscribes to", async () => {
    await worldWith({ typeNaming });
    await world.run(
      initArgs(world, "--no-chat-check", "--events", "client:low_credit,machine_offline"),
      {},
      API_KEY,
    );
    const result = await world.run(["types", "--json"]);
    expect(result.code).toBe(0);
    const { types } = JSON.parse(result.stdout) as {
      types: { key: string; subscribed: boolean }[];
    };
    expect(
      types
        .filter((t) => t.subscribed)
        .map((t) => t.key)
        .sort(),
    ).toEqual(["client:low_credit", "host:machine_offline"]);
  });

  it("init --existing update --yes keeps the webhook's types, never an empty list", async () => {
    await worldWith({ typeNaming });
    const events = "client:low_credit,client:outbid";
    expect(
      (await world.run(initArgs(world, "--no-chat-check", "--events", events), {}, API_KEY)).code,
    ).toBe(0);
    const update = await world.run(
      initArgs(world, "--no-chat-check", "--existing", "update", "--name", "renamed"),
      {},
      API_KEY,
    );
    expect(update.stderr).not.toMatch(/at least one event type/);
    expect(update.code).toBe(0);
    const [webhook] = world.vast.webhooks();
    expect(webhook?.name).toBe("renamed");
    expect(webhook?.event_types.map((t) => t.replace(/^client:/, ""))).toEqual([
      "low_credit",
      "outbid",
    ]);
    expectNoRefusedCall();
  });
});

describe("--events as users type it", () => {
  it("drops duplicates, in either form, before sending", async () => {
    await worldWith();
    const result = await world.run(
      initArgs(world, "--no-chat-check", "--events", "low_credit,client:low_credit,outbid,outbid"),
      {},
      API_KEY,
    );
    expect(result.code).toBe(0);
    expect(world.vast.webhooks()[0]?.event_types).toEqual(["client:low_credit", "client:outbid"]);
    expectNoRefusedCall();
  });

  it("exits 2 on an unknown type, listing the valid ones, and creates nothing", async () => {
    await worldWith();
    const result = await world.run(
      initArgs(world, "--no-chat-check", "--events", "low_credit,lowcredit"),
      {},
      API_KEY,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown event type: lowcredit.");
    expect(result.stderr).toMatch(/Valid types \(keys or slugs\): low_credit, .*machine_offline/);
    expect(world.vast.webhooks()).toEqual([]);
  });
});

describe("a scoped API key", () => {
  const scoped = { apiKeys: { "scoped-key": { userId: 7, scoped: true } } };

  it("init with --events goes on with a warning when the catalogue is refused", async () => {
    await worldWith(scoped);
    const result = await world.run(
      initArgs(world, "--no-chat-check", "--events", "low_credit,client:instance_stopped"),
      {},
      "scoped-key",
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /notification-types route \(401\).*Going on with the --events given/,
    );
    expect(world.vast.webhooks()[0]?.event_types).toEqual([
      "client:low_credit",
      "client:instance_stopped",
    ]);
  });

  it("init without --events says which permission the key lacks", async () => {
    await worldWith(scoped);
    const result = await world.run(initArgs(world, "--no-chat-check"), {}, "scoped-key");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/needs the "notification-types" permission/);
    expect(world.vast.webhooks()).toEqual([]);
  });

  it("rotate-secret and test say which permission the key lacks, and change nothing", async () => {
    await worldWith(scoped);
    await world.run(initArgs(world, "--no-chat-check", "--events", "low_credit"), {}, "scoped-key");
    const secretsBefore = world.vast.secretOf(1);
    const rotate = await world.run(["rotate-secret"]);
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toMatch(/needs the "webhooks rotate-secret" permission/);
    expect(world.vast.secretOf(1)).toBe(secretsBefore);
    const test = await world.run(["test"]);
    expect(test.code).toBe(1);
    expect(test.stderr).toMatch(/needs the "webhooks test" permission/);
  });
});

describe("rate limits", () => {
  it("cleanup --all paces its deletes under a per-route limit", async () => {
    await worldWith({ minIntervalMs: 400 });
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    for (const name of ["two", "three"]) {
      const dir = mkdtempSync(join(tmpdir(), "vast-gchat-more-"));
      dirs.push(dir);
      const more = await world.run(
        initWaitingArgs(world, "--name", `vast-gchat ${name}`),
        { VAST_GCHAT_CONFIG_DIR: dir },
        API_KEY,
      );
      expect(more.code).toBe(0);
    }
    const cleanup = await world.run(["cleanup", "--all", "--yes"]);
    expect(cleanup.code).toBe(0);
    expect(world.vast.webhooks()).toEqual([]);
    const deletes = world.vast.requests.filter((r) => r.method === "DELETE");
    expect(deletes.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});
