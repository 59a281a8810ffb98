import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseChatUrl } from "../../src/chat/webhook-url.js";
import { init } from "../../src/cli/commands/init.js";
import { type ConfigContext, openConfig } from "../../src/cli/config-context.js";
import { applySetup, type SetupAnswers, type SetupPlan } from "../../src/cli/init/apply-setup.js";
import { createOutput } from "../../src/cli/output.js";
import type { SecretName, SecretStore } from "../../src/config/secret-store.js";
import { isPlaceholderUrl } from "../../src/vast/api-types.js";
import { startVastEmulator, type VastEmulator } from "../../src/vast/emulator.js";

/**
 * init's account changes without its questions (issue 14, item 4): `applySetup` driven against the
 * emulator, with a real config directory and file secrets.
 */
const API_KEY = "emulator-key";
const CHAT_URL = "https://chat.googleapis.com/v1/spaces/AAAAsetup/messages?key=k-123&token=t-456";
const PUBLIC_URL = "https://adapter.example.org";
const TARGET = `${PUBLIC_URL}/`;

let emulator: VastEmulator;
let dir: string;
let config: ConfigContext;
let printed: string;

beforeEach(async () => {
  emulator = await startVastEmulator({ allowLoopbackHttp: true });
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-apply-setup-"));
  config = openConfig(
    { configDir: dir },
    { VAST_API_URL: emulator.url, VAST_GCHAT_SECRET_STORE: "file" },
  );
  printed = "";
});
afterEach(async () => {
  await emulator.close();
  rmSync(dir, { recursive: true, force: true });
});

function answers(overrides: Partial<SetupAnswers> = {}): SetupAnswers {
  return {
    apiKey: API_KEY,
    chat: parseChatUrl(CHAT_URL),
    eventTypes: ["client:low_credit", "client:instance_stopped"],
    name: "vast-gchat on test",
    tunnel: "none",
    tunnelCommand: undefined,
    publicUrl: PUBLIC_URL,
    port: 8787,
    ...overrides,
  };
}

function apply(plan: SetupPlan, on: ConfigContext = config) {
  const sink = new PassThrough();
  sink.on("data", (chunk: Buffer) => {
    printed += chunk.toString("utf8");
  });
  const out = createOutput({ stdout: sink, stderr: sink }, {});
  return applySetup(plan, { client: on.client(API_KEY), config: on, out });
}

/** A webhook made as if by another machine: nothing of it is stored here. */
async function madeElsewhere(url = TARGET) {
  return config.client(API_KEY).createWebhook({
    name: "vast-gchat on test",
    webhook_url: url,
    event_types: ["client:low_credit"],
  });
}

function refusals() {
  return emulator.requests.filter((request) => request.status >= 400);
}

/** The config, with a secret store that refuses to write `name`: a full disk, half-way through. */
function refusingToStore(name: SecretName): ConfigContext {
  const secrets = config.secrets;
  const failing: SecretStore = {
    kind: secrets.kind,
    location: secrets.location,
    notice: secrets.notice,
    get: (key) => secrets.get(key),
    set(key, value) {
      if (key === name) throw new Error("ENOSPC: no space left on device");
      secrets.set(key, value);
    },
    delete: (key) => secrets.delete(key),
    clear: () => secrets.clear(),
  };
  return { ...config, secrets: failing };
}

describe("applySetup", () => {
  it("creates the webhook at the URL and stores its secret, the key, the Chat URL and the settings", async () => {
    const result = await apply({ action: "create", answers: answers(), webhookUrl: TARGET });
    expect(result).toMatchObject({ secret: "created", webhook: { id: 1, webhook_url: TARGET } });
    expect(emulator.webhooks()).toMatchObject([
      { id: 1, name: "vast-gchat on test", webhook_url: TARGET },
    ]);
    expect(config.secrets.get("webhookSecret")).toBe(emulator.secretOf(1));
    expect(config.secrets.get("apiKey")).toBe(API_KEY);
    expect(config.secrets.get("chatUrl")).toBe(CHAT_URL);
    expect(config.settings.read()).toMatchObject({
      apiUrl: emulator.url,
      webhookId: 1,
      webhookName: "vast-gchat on test",
      eventTypes: ["client:low_credit", "client:instance_stopped"],
      tunnel: "none",
      publicUrl: PUBLIC_URL,
      port: 8787,
      chatSpace: "spaces/AAAAsetup",
    });
    expect(printed).toContain('Created webhook 1 "vast-gchat on test"');
    expect(printed).not.toContain(emulator.secretOf(1));
  });

  it("stores the routes: default in the space checked, and the wizard's, each URL a secret", async () => {
    const billingUrl = CHAT_URL.replace("AAAAsetup", "BBBBbilling");
    const billing = {
      route: { name: "billing", types: ["billing"], mentions: ["users/42" as const] },
      chat: parseChatUrl(billingUrl),
    };
    const subscription = [
      "client:low_credit",
      "client:instance_stopped",
      "client:billing_failed",
      "client:payment_receipt",
    ];
    await apply({
      action: "create",
      answers: answers({ subscription, extraRoutes: [billing] }),
      webhookUrl: TARGET,
    });
    expect(emulator.webhooks()[0]?.event_types).toEqual(subscription);
    expect(config.settings.read()).toMatchObject({
      // What init chose, not what the routes added: removing the route takes those away again.
      eventTypes: ["client:low_credit", "client:instance_stopped"],
      routes: [
        { name: "default", types: ["all"], mentions: [], chatSpace: "spaces/AAAAsetup" },
        {
          name: "billing",
          types: ["billing"],
          mentions: ["users/42"],
          chatSpace: "spaces/BBBBbilling",
        },
      ],
    });
    expect(config.secrets.get("chatUrl")).toBe(CHAT_URL);
    expect(config.secrets.get("chatUrl:billing")).toBe(billingUrl);
  });

  it("run again, keeps the routes there were, and default's types and mentions", async () => {
    config.settings.update({
      routes: [
        { name: "default", types: ["instance"], mentions: ["all"], chatSpace: "spaces/OLD" },
        { name: "ops", types: ["host"], mentions: [] },
      ],
    });
    await apply({ action: "create", answers: answers(), webhookUrl: TARGET });
    expect(config.settings.read().routes).toEqual([
      { name: "default", types: ["instance"], mentions: ["all"], chatSpace: "spaces/AAAAsetup" },
      { name: "ops", types: ["host"], mentions: [] },
    ]);
  });

  it("when the settings cannot be stored, a new route's URL goes again", async () => {
    const failing = {
      ...config,
      settings: {
        ...config.settings,
        update: () => {
          throw new Error("EROFS: read-only file system");
        },
      },
    };
    const billing = {
      route: { name: "billing", types: ["billing"], mentions: [] },
      chat: parseChatUrl(CHAT_URL.replace("AAAAsetup", "BBBB")),
    };
    await expect(
      apply(
        { action: "create", answers: answers({ extraRoutes: [billing] }), webhookUrl: TARGET },
        failing,
      ),
    ).rejects.toThrow(/Could not store the configuration: EROFS/);
    expect(config.secrets.get("chatUrl:billing")).toBeUndefined();
  });

  it("creates at a placeholder of its own when there is no public URL yet", async () => {
    const result = await apply({
      action: "create",
      answers: answers({ tunnel: "cloudflared", publicUrl: undefined }),
      webhookUrl: undefined,
    });
    expect(isPlaceholderUrl(result.webhook.webhook_url)).toBe(true);
    expect(config.settings.read().tunnel).toBe("cloudflared");
  });

  it("updates in place: the same secret, and the URL it already holds is not sent again", async () => {
    await apply({ action: "create", answers: answers(), webhookUrl: TARGET });
    const [existing] = emulator.webhooks();
    const secret = emulator.secretOf(1);
    if (!existing) throw new Error("no webhook");

    const result = await apply({
      action: "update",
      existing,
      answers: answers({ name: "vast-gchat renamed", eventTypes: ["client:low_credit"] }),
      webhookUrl: TARGET,
    });
    expect(result).toMatchObject({ secret: "kept", webhook: { id: 1, webhook_url: TARGET } });
    expect(emulator.webhooks()).toMatchObject([
      { id: 1, name: "vast-gchat renamed", event_types: ["client:low_credit"] },
    ]);
    // The emulator, like Vast.ai at its strictest, refuses a URL already registered, even its own.
    expect(refusals()).toEqual([]);
    expect(emulator.requests.some((request) => request.method === "PUT")).toBe(true);
    expect(emulator.secretOf(1)).toBe(secret);
    expect(config.secrets.get("webhookSecret")).toBe(secret);
    expect(config.settings.read().webhookName).toBe("vast-gchat renamed");
  });

  it("replaces without ever asking for a URL another webhook holds, then takes the URL over", async () => {
    await apply({ action: "create", answers: answers(), webhookUrl: TARGET });
    const [existing] = emulator.webhooks();
    if (!existing) throw new Error("no webhook");

    const result = await apply({
      action: "replace",
      existing,
      answers: answers(),
      webhookUrl: TARGET,
    });
    expect(result).toMatchObject({
      secret: "created",
      oldDeleted: true,
      webhook: { id: 2, webhook_url: TARGET },
    });
    expect(emulator.webhooks()).toMatchObject([{ id: 2, webhook_url: TARGET }]);
    expect(refusals()).toEqual([]);
    expect(config.secrets.get("webhookSecret")).toBe(emulator.secretOf(2));
    expect(config.settings.read().webhookId).toBe(2);
    expect(printed).toContain("Deleting the old webhook 1");
    expect(printed).toContain(`Pointing webhook 2 at ${TARGET}`);
  });

  it("keeps a webhook whose secret is not stored here by rotating it, and stores the new one", async () => {
    const existing = await madeElsewhere();
    const before = emulator.secretOf(existing.id);

    const result = await apply({
      action: "keep",
      existing,
      answers: answers({ eventTypes: existing.event_types }),
      webhookUrl: TARGET,
    });
    expect(result).toMatchObject({ secret: "rotated", webhook: { id: existing.id } });
    expect(emulator.secretOf(existing.id)).not.toBe(before);
    expect(config.secrets.get("webhookSecret")).toBe(emulator.secretOf(existing.id));
    expect(emulator.requests.filter((request) => request.method === "PUT")).toEqual([]);
    expect(printed).toContain(`No signing secret of webhook ${existing.id} was kept here`);
  });

  it("keeps a webhook whose secret is stored as it is: no call to Vast.ai", async () => {
    await apply({ action: "create", answers: answers(), webhookUrl: TARGET });
    const [existing] = emulator.webhooks();
    if (!existing) throw new Error("no webhook");
    const calls = emulator.requests.length;

    const result = await apply({
      action: "keep",
      existing,
      answers: answers(),
      webhookUrl: TARGET,
    });
    expect(result.secret).toBe("kept");
    expect(emulator.requests).toHaveLength(calls);
    expect(config.secrets.get("webhookSecret")).toBe(emulator.secretOf(1));
  });

  it("when the configuration cannot be stored, deletes the new webhook and puts the old secrets back", async () => {
    config.secrets.set("webhookSecret", "the-working-secret");
    config.secrets.set("previousWebhookSecret", "the-previous-secret");

    const failing = refusingToStore("apiKey");
    await expect(
      apply({ action: "create", answers: answers(), webhookUrl: TARGET }, failing),
    ).rejects.toThrow(/Could not store the configuration: ENOSPC/);
    expect(emulator.webhooks()).toEqual([]);
    expect(config.secrets.get("webhookSecret")).toBe("the-working-secret");
    expect(config.secrets.get("previousWebhookSecret")).toBe("the-previous-secret");
    expect(config.settings.read().webhookId).toBeUndefined();
    expect(printed).toContain("Deleted the new webhook 1 again");
  });

  it("when the settings cannot be stored, puts the previous API key and Chat URL back too", async () => {
    config.secrets.set("apiKey", "the-working-key");
    config.secrets.set(
      "chatUrl",
      "https://chat.googleapis.com/v1/spaces/OLD/messages?key=k&token=t",
    );
    const failing = {
      ...config,
      settings: {
        ...config.settings,
        update: () => {
          throw new Error("EROFS: read-only file system");
        },
      },
    };
    await expect(
      apply({ action: "create", answers: answers(), webhookUrl: TARGET }, failing),
    ).rejects.toThrow(/Could not store the configuration: EROFS/);
    expect(config.secrets.get("apiKey")).toBe("the-working-key");
    expect(config.secrets.get("chatUrl")).toContain("/spaces/OLD/");
    expect(emulator.webhooks()).toEqual([]);
  });

  it("when a rotated secret cannot be stored, leaves the kept webhook and the stored secrets alone", async () => {
    const existing = await madeElsewhere();
    const failing = { ...config, settings: { ...config.settings, update: () => fail() } };
    function fail(): never {
      throw new Error("EROFS: read-only file system");
    }

    await expect(
      apply({ action: "keep", existing, answers: answers(), webhookUrl: TARGET }, failing),
    ).rejects.toThrow(/Could not store the configuration: EROFS/);
    expect(emulator.webhooks().map((webhook) => webhook.id)).toEqual([existing.id]);
    expect(config.secrets.get("webhookSecret")).toBeUndefined();
    expect(printed).not.toContain("Deleted");
  });
});

describe("init's hold on Ctrl+C", () => {
  it("hears the context's signals, not the process's, while the account changes", async () => {
    const signals = new EventEmitter();
    // Ctrl+C as soon as the account starts to change.
    signals.on("newListener", (event) => {
      if (event === "SIGINT") setImmediate(() => signals.emit("SIGINT"));
    });
    const onProcess = process.listenerCount("SIGINT");
    let text = "";
    const sink = new PassThrough();
    sink.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });

    const code = await init(
      {
        configDir: dir,
        apiKeyStdin: true,
        chatUrlStdin: true,
        publicUrl: PUBLIC_URL,
        yes: true,
        chatCheck: false,
      },
      {
        env: { VAST_API_URL: emulator.url, VAST_GCHAT_SECRET_STORE: "file" },
        stdin: Object.assign(Readable.from([`${API_KEY}\n${CHAT_URL}\n`]), { isTTY: false }),
        stdout: sink,
        stderr: sink,
        signals,
      },
    );
    expect(code).toBe(0);
    expect(text).toContain("Finishing the set-up first");
    expect(emulator.webhooks()).toMatchObject([{ id: 1, webhook_url: TARGET }]);
    expect(config.secrets.get("webhookSecret")).toBe(emulator.secretOf(1));
    expect(signals.listenerCount("SIGINT")).toBe(0);
    expect(signals.listenerCount("SIGTERM")).toBe(0);
    expect(process.listenerCount("SIGINT")).toBe(onProcess);
  });
});
