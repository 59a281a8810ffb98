import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type SecretRefresh, startSecretRefresh } from "../../src/cli/secret-refresh.js";
import { MAX_PREVIOUS_SECRET_MS, resolveSecrets } from "../../src/cli/serve-options.js";
import {
  type KeyringModule,
  openSecretStore,
  type SecretStore,
} from "../../src/config/secret-store.js";
import { openSettings, type SettingsStore } from "../../src/config/settings.js";

/**
 * How a running serve keeps its signing secrets in step with the store (issue 13, item 1): real
 * files in a temporary config directory, the real stores, serve's module; the OS keychain is the
 * one stand-in (an in-memory keyring, as in secret-store.test.ts), since a test machine has none.
 */
const OLD = "old-secret-0123456789abcdef";
const NEW = "new-secret-fedcba9876543210";

let dir: string;
let refresh: SecretRefresh | undefined;
const logged: Array<{ level: string; msg: string; fields: object }> = [];
const log = {
  info: (fields: object, msg: string) => logged.push({ level: "info", msg, fields }),
  warn: (fields: object, msg: string) => logged.push({ level: "warn", msg, fields }),
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-refresh-"));
  logged.length = 0;
});
afterEach(() => {
  refresh?.close();
  refresh = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function memoryKeyring(): KeyringModule {
  const entries = new Map<string, string>();
  class Entry {
    readonly key: string;
    constructor(service: string, account: string) {
      this.key = `${service}/${account}`;
    }
    setPassword(password: string): void {
      entries.set(this.key, password);
    }
    getPassword(): string | null {
      return entries.get(this.key) ?? null;
    }
    deletePassword(): boolean {
      return entries.delete(this.key);
    }
  }
  return { Entry };
}

function configWith(secrets: SecretStore): {
  configDir: string;
  secrets: SecretStore;
  settings: SettingsStore;
} {
  const settings = openSettings(dir);
  settings.update({ webhookId: 1 });
  secrets.set("webhookSecret", OLD);
  return { configDir: dir, secrets, settings };
}

/** What rotate-secret writes, in its order. */
function rotate(
  config: { secrets: SecretStore; settings: SettingsStore },
  expiresAt: number | undefined,
) {
  config.settings.update({ rotationStartedAt: Date.now() });
  if (expiresAt !== undefined) config.secrets.set("previousWebhookSecret", OLD);
  else config.secrets.delete("previousWebhookSecret");
  config.settings.update({ previousSecretExpiresAt: expiresAt });
  config.secrets.set("webhookSecret", NEW);
  config.settings.update({ rotationStartedAt: undefined });
}

async function until(condition: () => boolean, deadlineMs: number): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > deadlineMs) throw new Error(`not within ${deadlineMs} ms`);
    await delay(20);
  }
  return Date.now() - started;
}

describe("a running serve's signing secrets", () => {
  it("follow a rotation in a keychain, which has no file, within a second and with no request", async () => {
    const config = configWith(
      openSecretStore(dir, { prefer: "keychain", env: {}, keyring: memoryKeyring() }),
    );
    expect(config.secrets.kind).toBe("keychain");
    refresh = startSecretRefresh({ env: {}, config, log });
    expect(refresh.secrets()).toEqual([OLD]);

    rotate(config, undefined);
    const took = await until(() => refresh?.secrets().join() === NEW, 1000);
    expect(took).toBeLessThan(1000);
    expect(logged.map((l) => l.msg)).toContain("signing secrets reloaded");
    expect(JSON.stringify(logged)).not.toContain(OLD);
    expect(JSON.stringify(logged)).not.toContain(NEW);
  });

  it("are looked at again on a mismatch: a delivery signed with a secret stored a moment ago gets 503 (retried), not 401", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    refresh = startSecretRefresh({ env: {}, config, log, pollMs: 60_000 });
    // Neither the poll nor fs.watch can have run between these synchronous lines.
    rotate(config, undefined);
    expect(refresh.secrets()).toEqual([OLD]);
    expect(refresh.rotating()).toBe(true);
    expect(refresh.secrets()).toEqual([NEW]);
    // Nothing changed since: a bad signature is a bad signature.
    expect(refresh.rotating()).toBe(false);
  });

  it("stay in the rotating window while rotate-secret waits for Vast.ai", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    refresh = startSecretRefresh({ env: {}, config, log, pollMs: 60_000 });
    config.settings.update({ rotationStartedAt: Date.now() });
    refresh.refresh();
    expect(refresh.rotating()).toBe(true);
    expect(refresh.rotating()).toBe(true);
    config.settings.update({ rotationStartedAt: undefined });
    refresh.refresh();
    expect(refresh.rotating()).toBe(false);
  });

  it("drop the previous secret when its grace ends, and remove it from storage", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    let clock = Date.now();
    refresh = startSecretRefresh({ env: {}, config, log, now: () => clock, pollMs: 60_000 });
    rotate(config, clock + 5_000);
    refresh.refresh();
    expect(refresh.secrets()).toEqual([NEW, OLD]);
    clock += 5_000;
    // Dropped from memory at that very moment, before any look at the store.
    expect(refresh.secrets()).toEqual([NEW]);
    refresh.refresh();
    expect(readFileSync(join(dir, "secrets.json"), "utf8")).not.toContain(OLD);
    expect(config.settings.read().previousSecretExpiresAt).toBeUndefined();
    expect(config.secrets.get("webhookSecret")).toBe(NEW);
    expect(logged.map((l) => l.msg)).toContain(
      "previous signing secret expired: removed from storage",
    );
  });

  it("keep a previous secret an older version stored for 10 minutes only as long as the bound", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    let clock = Date.now();
    config.secrets.set("previousWebhookSecret", OLD);
    config.secrets.set("webhookSecret", NEW);
    config.settings.update({ previousSecretExpiresAt: clock + 10 * 60_000 });
    refresh = startSecretRefresh({ env: {}, config, log, now: () => clock, pollMs: 60_000 });
    expect(refresh.secrets()).toEqual([NEW, OLD]);
    clock += MAX_PREVIOUS_SECRET_MS;
    expect(refresh.secrets()).toEqual([NEW]);
    refresh.refresh();
    expect(config.secrets.get("previousWebhookSecret")).toBeUndefined();
  });

  it("remove at start a previous secret whose grace ended while no serve ran", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    config.secrets.set("previousWebhookSecret", "expired-secret-0000");
    config.settings.update({ previousSecretExpiresAt: Date.now() - 1 });
    refresh = startSecretRefresh({ env: {}, config, log, pollMs: 60_000 });
    expect(refresh.secrets()).toEqual([OLD]);
    expect(readFileSync(join(dir, "secrets.json"), "utf8")).not.toContain("expired-secret-0000");
  });

  it("keep the last good secrets when the store is damaged, say so once, and take the repair", () => {
    const config = configWith(openSecretStore(dir, { prefer: "file", env: {} }));
    refresh = startSecretRefresh({ env: {}, config, log, pollMs: 60_000 });
    const good = readFileSync(join(dir, "secrets.json"), "utf8");
    writeFileSync(join(dir, "secrets.json"), `{"webhookSecret": "${NEW}"`);
    refresh.refresh();
    refresh.refresh();
    expect(refresh.secrets()).toEqual([OLD]);
    const warnings = logged.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).not.toContain(NEW);
    writeFileSync(join(dir, "secrets.json"), good.replace(OLD, NEW));
    refresh.refresh();
    expect(refresh.secrets()).toEqual([NEW]);
  });
});

describe("VAST_WEBHOOK_SECRET_PREVIOUS", () => {
  const env = { VAST_WEBHOOK_SECRET: NEW, VAST_WEBHOOK_SECRET_PREVIOUS: OLD };

  it("is accepted for at most the bound after serve starts, then refused with a warning", () => {
    let clock = Date.now();
    refresh = startSecretRefresh({ env, log, now: () => clock, pollMs: 60_000 });
    expect(refresh.secrets()).toEqual([NEW, OLD]);
    expect(logged.find((l) => l.level === "warn")?.msg).toMatch(
      /VAST_WEBHOOK_SECRET_PREVIOUS is accepted only until/,
    );
    clock += MAX_PREVIOUS_SECRET_MS;
    expect(refresh.secrets()).toEqual([NEW]);
    refresh.refresh();
    refresh.refresh();
    const dropped = logged.filter((l) => l.msg.includes("no longer accepted"));
    expect(dropped).toHaveLength(1);
    expect(JSON.stringify(logged)).not.toContain(OLD);
  });

  it("is bounded in resolveSecrets too", () => {
    const now = Date.now();
    expect(resolveSecrets(env, {}, now, now + 1)).toEqual([NEW, OLD]);
    expect(resolveSecrets(env, {}, now, now)).toEqual([NEW]);
  });
});

describe("the bound", () => {
  it("is the 300 s a signature stays valid and a small allowance for clocks, not minutes", () => {
    expect(MAX_PREVIOUS_SECRET_MS).toBeGreaterThanOrEqual(300_000);
    expect(MAX_PREVIOUS_SECRET_MS).toBeLessThanOrEqual(360_000);
  });
});
