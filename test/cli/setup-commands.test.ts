import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VastClient } from "../../src/vast/api-client.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

function storedSecret(): string {
  const file = JSON.parse(readFileSync(join(world.configDir, "secrets.json"), "utf8")) as Record<
    string,
    unknown
  >;
  return JSON.stringify(file);
}

function expectNoSecretsIn(text: string) {
  const [webhook] = world.vast.webhooks();
  const secret = webhook ? world.vast.secretOf(webhook.id) : undefined;
  if (secret) expect(text).not.toContain(secret);
  expect(text).not.toContain(API_KEY);
  expect(text).not.toContain("fake-token-456");
  expect(text).not.toContain("fake-key-123");
}

describe("init, unattended", () => {
  it("checks the key and the Chat URL, creates the webhook, and keeps secrets in a private file", async () => {
    const result = await world.run(initArgs(world), {}, `${API_KEY}\n`);
    expect(result.stderr).toContain("readable only by you");
    expect(result.code).toBe(0);
    const [webhook, ...others] = world.vast.webhooks();
    expect(others).toEqual([]);
    expect(webhook).toMatchObject({
      name: expect.stringMatching(/^vast-gchat on /),
      webhook_url: "https://adapter.example.org/",
      event_types: expect.arrayContaining(["client:low_credit", "client:instance_stopped"]),
    });
    expect(webhook?.event_types).toHaveLength(6);
    // The Chat URL was proved by a one-line message.
    expect(JSON.stringify(world.chat.messages[0]?.body)).toContain("vast-gchat is set up");
    // Secrets: 0600 file in a 0700 directory, holding the secret Vast.ai returned once.
    expect(statSync(world.configDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(world.configDir, "secrets.json")).mode & 0o777).toBe(0o600);
    expect(storedSecret()).toContain(world.vast.secretOf(webhook?.id ?? -1));
    expectNoSecretsIn(result.stdout + result.stderr);
  });

  it("takes the key and the Chat URL on standard input, so neither is on the command line", async () => {
    const args = [
      "init",
      "--api-key-stdin",
      "--chat-url-stdin",
      "--tunnel",
      "none",
      "--public-url",
      "https://adapter.example.org",
      "--yes",
      "--no-chat-check",
    ];
    const result = await world.run(args, {}, `${API_KEY}\n${world.chat.webhookUrl()}\n`);
    expect(result.code).toBe(0);
    expect(args.join(" ")).not.toMatch(/fake-token|emulator-key/);
    expect(storedSecret()).toContain("fake-token-456");
    expect(result.stderr).not.toContain("process list");
    expectNoSecretsIn(result.stdout + result.stderr);

    const short = await world.run(args, {}, `${API_KEY}\n`);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain(
      "--api-key-stdin and --chat-url-stdin read only one line from standard input.",
    );
  });

  it("warns that --chat-url shows the token to anyone who can list processes", async () => {
    const result = await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      "--chat-url puts the webhook's token in the process list and your shell history",
    );
    expectNoSecretsIn(result.stderr);
  });

  it("reports JSON with --json, without secrets", async () => {
    const result = await world.run([...initArgs(world), "--json", "--no-chat-check"], {}, API_KEY);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      ok: true,
      action: "created",
      webhook: { id: 1 },
      secrets: { kind: "file" },
    });
    expectNoSecretsIn(result.stdout);
  });

  it("names the flag for every missing answer when there is no terminal", async () => {
    const noKey = await world.run(["init", "--chat-url", world.chat.webhookUrl(), "--yes"]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/Pass --api-key-stdin or VAST_API_KEY/);
    const noChat = await world.run(["init", "--api-key-stdin", "--yes"], {}, API_KEY);
    expect(noChat.code).toBe(2);
    expect(noChat.stderr).toMatch(/Pass --chat-url/);
    const noYes = await world.run(
      ["init", "--api-key-stdin", "--chat-url", world.chat.webhookUrl(), "--no-chat-check"],
      {},
      API_KEY,
    );
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toMatch(/--events KEY,KEY,\.\.\. \(or --yes for the default\)/);
    expect(world.vast.webhooks()).toEqual([]);
  });

  it("says the key was refused and where to make one", async () => {
    const result = await world.run(initArgs(world), {}, "not-a-key");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Vast\.ai refused the API key \(401\)/);
    expect(result.stderr).toContain("https://cloud.vast.ai/manage-keys/");
    expect(result.stderr).not.toContain("not-a-key");
    expect(world.vast.webhooks()).toEqual([]);
  });

  it("refuses unknown event types before creating anything", async () => {
    const result = await world.run(
      [...initArgs(world), "--events", "client:low_credit,client:nope"],
      {},
      API_KEY,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown event type: client:nope");
    expect(world.vast.webhooks()).toEqual([]);
  });

  it("stops before creating anything when Chat refuses the check message", async () => {
    world.chat.behaviour = { kind: "status", status: 404 };
    const result = await world.run(initArgs(world), {}, API_KEY);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "Google Chat did not take the check message: Chat answered 404",
    );
    expect(world.vast.webhooks()).toEqual([]);
  });

  it("deletes the webhook it made when the configuration cannot be stored, leaving no orphan", async (test) => {
    // A config directory on a tiny tmpfs, filled up: reads work, every write fails (ENOSPC).
    // mode=0700: a tmpfs is 1777 by default, a config directory anyone could plant files in.
    const disk = join(world.configDir, "full-disk");
    mkdirSync(disk);
    const mount = ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", disk];
    if (spawnSync("mount", mount).status !== 0) {
      test.skip(true, "needs root to mount a small tmpfs");
    }
    try {
      try {
        writeFileSync(join(disk, "filler"), Buffer.alloc(128 * 1024));
      } catch {
        // ENOSPC: the disk is full, which is the point.
      }
      const args = [
        "init",
        "--chat-url",
        world.chat.webhookUrl(),
        "--tunnel",
        "none",
        "--public-url",
        "https://adapter.example.org",
        "--yes",
        "--no-chat-check",
      ];
      const result = await world.run(args, { VAST_API_KEY: API_KEY, VAST_GCHAT_CONFIG_DIR: disk });
      expect(result.stderr).toContain("Could not store the configuration");
      expect(result.stderr).toContain("Deleted the new webhook 1 again");
      expect(result.code).toBe(1);
      expect(world.vast.webhooks()).toEqual([]);
    } finally {
      spawnSync("umount", [disk]);
    }
  });

  it("explains the limit of four webhooks and lists them", async () => {
    const client = new VastClient({ apiKey: API_KEY, baseUrl: world.vast.url });
    for (let i = 1; i <= 4; i++) {
      await client.createWebhook({
        name: `other ${i}`,
        webhook_url: `https://example.com/x/${i}`,
        event_types: ["client:low_credit"],
      });
    }
    const result = await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Vast.ai allows 4 webhooks per account and this one has 4");
    expect(result.stderr).toContain('"other 3"');
    expect(world.vast.webhooks()).toHaveLength(4);
  });

  it("run again, updates the existing webhook instead of creating a second; replace swaps it", async () => {
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const secretBefore = world.vast.secretOf(1);
    const again = await world.run(
      initArgs(
        world,
        "--no-chat-check",
        "--events",
        "client:low_credit",
        "--name",
        "vast-gchat renamed",
      ),
      {},
      API_KEY,
    );
    expect(again.code).toBe(0);
    expect(world.vast.webhooks()).toMatchObject([
      { id: 1, name: "vast-gchat renamed", event_types: ["client:low_credit"] },
    ]);
    expect(world.vast.secretOf(1)).toBe(secretBefore);

    const replaced = await world.run(
      initArgs(world, "--no-chat-check", "--existing", "replace"),
      {},
      API_KEY,
    );
    expect(replaced.code).toBe(0);
    expect(world.vast.webhooks().map((w) => w.id)).toEqual([2]);
    expect(storedSecret()).toContain(world.vast.secretOf(2));
  });
});

describe("types", () => {
  it("lists every type by group and marks the webhook's subscriptions", async () => {
    await world.run(
      initArgs(world, "--no-chat-check", "--events", "client:low_credit,host:machine_offline"),
      {},
      API_KEY,
    );
    const result = await world.run(["types", "--json"]);
    expect(result.code).toBe(0);
    const { types } = JSON.parse(result.stdout) as {
      types: { key: string; group: string; subscribed: boolean }[];
    };
    expect(
      types
        .filter((t) => t.subscribed)
        .map((t) => t.key)
        .sort(),
    ).toEqual(["client:low_credit", "host:machine_offline"]);
    expect(types.find((t) => t.key === "host:machine_offline")?.group).toBe("Host");
    const table = await world.run(["types"]);
    expect(table.stdout).toMatch(/Billing\n\s+✓ client:low_credit\s+Low balance notifications/);
  });

  it("explains a scoped key refused on notification types", async () => {
    await world.vast.close();
    const { startVastEmulator } = await import("../../src/vast/emulator.js");
    world.vast = await startVastEmulator({
      allowLoopbackHttp: true,
      apiKeys: { scoped: { userId: 1, scoped: true } },
    });
    const result = await world.run(["types"], {
      VAST_API_URL: world.vast.url,
      VAST_API_KEY: "scoped",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused the API key for the notification-types route \(401\)/);
    expect(result.stderr).toMatch(/scoped key needs the "notification-types" permission/);
  });

  it("without a key, says how to give one (exit 2)", async () => {
    const result = await world.run(["types"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /No Vast\.ai API key: run `vast-gchat init`, or set VAST_API_KEY/,
    );
  });
});

describe("cleanup", () => {
  it("deletes the webhook, removes every secret and setting, and says so", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const secret = world.vast.secretOf(1) ?? "";
    const result = await world.run(["cleanup", "--yes"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Deleted webhook 1");
    expect(result.stdout).toMatch(/Removed the stored .*apiKey/);
    expect(world.vast.webhooks()).toEqual([]);
    for (const name of readdirSync(world.configDir)) {
      const text = readFileSync(join(world.configDir, name)).toString("latin1");
      expect(text).not.toContain(secret);
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain("fake-token-456");
    }
  });

  it("is fine when the webhook is already gone, and --all removes vast-gchat's other webhooks only", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const client = new VastClient({ apiKey: API_KEY, baseUrl: world.vast.url });
    await client.deleteWebhook(1);
    await client.createWebhook({
      name: "vast-gchat on old-laptop",
      webhook_url: "https://example.com/a",
      event_types: ["client:low_credit"],
    });
    await client.createWebhook({
      name: "someone else's",
      webhook_url: "https://example.com/b",
      event_types: ["client:low_credit"],
    });
    const result = await world.run(["cleanup", "--all", "--yes"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Webhook 1 was already gone");
    expect(world.vast.webhooks().map((w) => w.name)).toEqual(["someone else's"]);
  });

  it("asks for --yes when there is no terminal to confirm on", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const result = await world.run(["cleanup"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Pass --yes");
    expect(world.vast.webhooks()).toHaveLength(1);
  });
});

describe("status", () => {
  it("shows the configuration with every secret masked, and the webhook as Vast.ai has it", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const human = await world.run(["status"]);
    const json = await world.run(["status", "--json"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Webhook           1 "vast-gchat on');
    expect(human.stdout).toContain("Adapter           not running here");
    const report = JSON.parse(json.stdout) as {
      webhook: { id: number };
      secrets: Record<string, unknown>;
    };
    expect(report.webhook.id).toBe(1);
    expect(report.secrets).toMatchObject({
      store: "file",
      chatUrl: { value: expect.stringContaining("key=…&token=…") },
    });
    expectNoSecretsIn(human.stdout + human.stderr + json.stdout + json.stderr);
  });

  it("says the webhook is waiting for serve while it points at its placeholder", async () => {
    await world.run(
      [
        "init",
        "--api-key-stdin",
        "--chat-url",
        world.chat.webhookUrl(),
        "--tunnel",
        "cloudflared",
        "--yes",
        "--no-chat-check",
      ],
      {},
      API_KEY,
    );
    const [webhook] = world.vast.webhooks();
    expect(webhook?.webhook_url).toMatch(
      /^https:\/\/example\.com\/vast-gchat-placeholder\/[0-9a-f]{16}$/,
    );
    const result = await world.run(["status"]);
    expect(result.stderr).toContain("The webhook is waiting for serve");
    const test = await world.run(["test"]);
    expect(test.code).toBe(1);
    expect(test.stderr).toContain("is waiting for serve");
    // Nothing was asked of Vast.ai's test route.
    expect(world.vast.requests.filter((r) => r.path.endsWith("/test/"))).toEqual([]);
  });
});

describe("rotate-secret", () => {
  it("stores the new secret, keeps the old one for the grace period, and says nothing secret", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const old = world.vast.secretOf(1);
    const result = await world.run(["rotate-secret", "--json"]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { previous_accepted_until: string };
    // Only as long as a delivery signed before the rotation stays valid (rotate-secret.test.ts).
    expect(Date.parse(report.previous_accepted_until)).toBeGreaterThan(Date.now() + 5 * 60_000);
    expect(Date.parse(report.previous_accepted_until)).toBeLessThanOrEqual(Date.now() + 330_000);
    const stored = storedSecret();
    expect(stored).toContain(world.vast.secretOf(1));
    expect(stored).toContain(old);
    expectNoSecretsIn(result.stdout + result.stderr);
    expect(result.stdout + result.stderr).not.toContain(old);
  });

  it("with --grace 0, forgets the old secret at once", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const old = world.vast.secretOf(1) ?? "";
    expect((await world.run(["rotate-secret", "--grace", "0"])).code).toBe(0);
    expect(storedSecret()).not.toContain(old);
  });
});

describe("init run again without the config directory", () => {
  it("finds the webhook it made by name, and gets a secret for it by rotating", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const first = world.vast.secretOf(1);
    for (const name of readdirSync(world.configDir))
      rmSync(join(world.configDir, name), { recursive: true });
    const again = await world.run(
      initArgs(world, "--no-chat-check", "--existing", "keep"),
      {},
      API_KEY,
    );
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(
      "No signing secret of webhook 1 was kept here, so it was rotated",
    );
    expect(world.vast.webhooks().map((w) => w.id)).toEqual([1]);
    expect(world.vast.secretOf(1)).not.toBe(first);
    expect(storedSecret()).toContain(world.vast.secretOf(1));
  });
});

describe("cleanup when Vast.ai refuses", () => {
  it("still removes the local secrets, and says which webhook is left and how to delete it", async () => {
    await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
    const result = await world.run(["cleanup", "--yes", "--json"], { VAST_API_KEY: "revoked-key" });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, not_deleted_webhooks: [1] });
    expect(result.stderr).toContain("Vast.ai still has webhook 1");
    expect(result.stderr).toContain("curl -X DELETE");
    expect(readdirSync(world.configDir)).not.toContain("secrets.json");
    expectNoSecretsIn(result.stdout + result.stderr);
    expect(result.stdout + result.stderr).not.toContain("revoked-key");
  });
});
