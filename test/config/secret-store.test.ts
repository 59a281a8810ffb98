import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSecretStore, secretsFilePath } from "../../src/config/secret-store.js";
import { UserError } from "../../src/user-error.js";

const API_KEY = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2";
const WEBHOOK_SECRET = "whsec_Q2hhbmdlTWVQbGVhc2VJdHNBU2VjcmV0";
const CHAT_URL =
  "https://chat.googleapis.com/v1/spaces/AAAAbCdEfGh/messages?key=AIzaSyDdI0hCZtE6vySjMm&token=tok3nVALUE";

const posix = process.platform !== "win32";
const mode = (path: string) => statSync(path).mode & 0o777;

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "vast-gchat-secrets-"));
  dir = join(root, "config"); // not there yet: the store makes it
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const fileStore = (configDir = dir) => openSecretStore(configDir, { prefer: "file", env: {} });

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    const e = error as Error & { hint?: string; cause?: unknown };
    return [e.message, e.hint ?? "", String(e.cause ?? ""), e.stack ?? ""].join("\n");
  }
  throw new Error("expected an error");
}

describe("the file store", () => {
  it("sets, gets, deletes and clears secrets", () => {
    const store = fileStore();
    expect(store.kind).toBe("file");
    expect(store.location).toBe(secretsFilePath(dir));
    expect(store.get("apiKey")).toBeUndefined();

    store.set("apiKey", API_KEY);
    store.set("webhookSecret", WEBHOOK_SECRET);
    store.set("chatUrl", CHAT_URL);
    expect(store.get("apiKey")).toBe(API_KEY);
    expect(store.get("webhookSecret")).toBe(WEBHOOK_SECRET);
    expect(store.get("chatUrl")).toBe(CHAT_URL);
    expect(store.get("previousWebhookSecret")).toBeUndefined();

    store.set("apiKey", "replaced-key-value");
    expect(store.get("apiKey")).toBe("replaced-key-value");

    store.delete("webhookSecret");
    store.delete("previousWebhookSecret"); // not there: fine
    expect(store.get("webhookSecret")).toBeUndefined();
    expect(store.get("chatUrl")).toBe(CHAT_URL);

    expect(store.clear()).toEqual(["apiKey", "chatUrl"]);
    expect(store.get("apiKey")).toBeUndefined();
    expect(store.get("chatUrl")).toBeUndefined();
    expect(store.clear()).toEqual([]);
  });

  it("keeps each route's Chat URL under a name of its own, and clears them with the rest", () => {
    const store = fileStore();
    store.set("chatUrl", CHAT_URL);
    store.set("chatUrl:billing", `${CHAT_URL}-billing`);
    store.set("chatUrl:gpu-ops", `${CHAT_URL}-ops`);
    expect(store.get("chatUrl:billing")).toBe(`${CHAT_URL}-billing`);
    expect(store.get("chatUrl")).toBe(CHAT_URL);
    store.delete("chatUrl:gpu-ops");
    expect(store.get("chatUrl:gpu-ops")).toBeUndefined();
    // Only a route's name makes a route's secret: nothing else is stored.
    expect(() => store.set("chatUrl:Not A Route" as "chatUrl:x", CHAT_URL)).toThrow(
      /unknown secret/,
    );
    expect(store.clear()).toEqual(["chatUrl", "chatUrl:billing"]);
    expect(store.get("chatUrl:billing")).toBeUndefined();
  });

  it("refuses a secrets file whose route URL is not a string, naming it", () => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(secretsFilePath(dir), '{"chatUrl:billing": 42}', { mode: 0o600 });
    expect(messageOf(() => fileStore().get("chatUrl"))).toContain(
      '"chatUrl:billing" is not a non-empty string',
    );
  });

  it("keeps the file 0600 in a 0700 directory", () => {
    fileStore().set("apiKey", API_KEY);
    expect(existsSync(secretsFilePath(dir))).toBe(true);
    if (!posix) return;
    expect(mode(dir)).toBe(0o700);
    expect(mode(secretsFilePath(dir))).toBe(0o600);
    fileStore().set("webhookSecret", WEBHOOK_SECRET); // a rewrite keeps it so
    expect(mode(secretsFilePath(dir))).toBe(0o600);
  });

  it.runIf(posix)("tightens a config directory and a secrets file others could read", () => {
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(secretsFilePath(dir), JSON.stringify({ apiKey: API_KEY }), { mode: 0o644 });
    chmodSync(secretsFilePath(dir), 0o644);

    expect(fileStore().get("apiKey")).toBe(API_KEY);
    expect(mode(secretsFilePath(dir))).toBe(0o600);

    fileStore().set("chatUrl", CHAT_URL);
    expect(mode(dir)).toBe(0o700);
    expect(mode(secretsFilePath(dir))).toBe(0o600);
  });

  it("keeps values across reopening, and a second store sees the first one's writes", () => {
    const serve = fileStore();
    const rotate = fileStore();
    serve.set("webhookSecret", WEBHOOK_SECRET);
    expect(rotate.get("webhookSecret")).toBe(WEBHOOK_SECRET);

    rotate.set("previousWebhookSecret", WEBHOOK_SECRET);
    rotate.set("webhookSecret", "whsec_the_new_one_after_rotation");
    expect(serve.get("webhookSecret")).toBe("whsec_the_new_one_after_rotation");
    expect(serve.get("previousWebhookSecret")).toBe(WEBHOOK_SECRET);

    expect(fileStore().get("webhookSecret")).toBe("whsec_the_new_one_after_rotation");
  });

  it("writes through a temp file that does not stay behind", () => {
    const store = fileStore();
    store.set("apiKey", API_KEY);
    store.set("chatUrl", CHAT_URL);
    expect(readdirSync(dir)).toEqual(["secrets.json"]);
  });

  it("removes the file when its last secret is deleted", () => {
    const store = fileStore();
    store.set("apiKey", API_KEY);
    store.delete("apiKey");
    expect(existsSync(secretsFilePath(dir))).toBe(false);
  });

  it("clear() leaves no secrets file, nor a temp file a crash left", () => {
    const store = fileStore();
    store.set("apiKey", API_KEY);
    writeFileSync(join(dir, "secrets.json.0a1b2c3d4e5f.tmp"), "{}", { mode: 0o600 });
    writeFileSync(join(dir, "config.json"), "{}");
    expect(store.clear()).toEqual(["apiKey"]);
    expect(readdirSync(dir)).toEqual(["config.json"]);
  });

  it("names the path of a damaged file and never shows what is in it", () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(secretsFilePath(dir), `{"apiKey": "${API_KEY}", "chatUrl": `, { mode: 0o600 });
    const store = fileStore();
    expect(() => store.get("apiKey")).toThrow(UserError);
    const message = messageOf(() => store.get("apiKey"));
    expect(message).toContain(secretsFilePath(dir));
    expect(message).toMatch(/damaged/);
    expect(message).not.toContain(API_KEY);
    expect(message).not.toContain(API_KEY.slice(0, 10));
    expect(() => store.set("chatUrl", CHAT_URL)).toThrow(/damaged/);

    // clear() still removes it, so `cleanup` works on a damaged file.
    store.clear();
    expect(existsSync(secretsFilePath(dir))).toBe(false);
  });

  it("refuses a file whose values are not strings, naming the key but not the value", () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(secretsFilePath(dir), JSON.stringify({ apiKey: [API_KEY] }), { mode: 0o600 });
    const message = messageOf(() => fileStore().get("chatUrl"));
    expect(message).toContain(secretsFilePath(dir));
    expect(message).toContain('"apiKey"');
    expect(message).not.toContain(API_KEY);

    writeFileSync(secretsFilePath(dir), JSON.stringify([API_KEY]), { mode: 0o600 });
    expect(messageOf(() => fileStore().get("apiKey"))).toMatch(/not a JSON object/);
  });

  it("does not put the value in the error when the file cannot be written", () => {
    writeFileSync(join(root, "a-file"), "");
    const store = fileStore(join(root, "a-file", "config"));
    const message = messageOf(() => store.set("apiKey", API_KEY));
    expect(message).toMatch(/Cannot write the secrets file/);
    expect(message).not.toContain(API_KEY);
  });

  it("refuses to store an empty secret", () => {
    expect(() => fileStore().set("apiKey", "")).toThrow(/empty/);
    expect(existsSync(secretsFilePath(dir))).toBe(false);
  });

  it("says in one line that secrets are in a file, and where", () => {
    const notice = fileStore().notice;
    expect(notice).toContain(secretsFilePath(dir));
    expect(notice).not.toContain("\n");
  });
});

describe("choosing the store", () => {
  it("is forced to the file by VAST_GCHAT_SECRET_STORE=file", () => {
    const store = openSecretStore(dir, { env: { VAST_GCHAT_SECRET_STORE: "file" } });
    expect(store.kind).toBe("file");
  });

  it("refuses an unknown VAST_GCHAT_SECRET_STORE, naming the variable", () => {
    expect(() => openSecretStore(dir, { env: { VAST_GCHAT_SECRET_STORE: "vault" } })).toThrow(
      /VAST_GCHAT_SECRET_STORE must be "keychain", "file" or "auto"/,
    );
  });

  it("lets `prefer` beat the environment", () => {
    const store = openSecretStore(dir, {
      prefer: "file",
      env: { VAST_GCHAT_SECRET_STORE: "keychain" },
    });
    expect(store.kind).toBe("file");
  });

  it("keeps using a secrets file an earlier set-up left, without probing", () => {
    fileStore().set("apiKey", API_KEY);
    const store = openSecretStore(dir, { prefer: "auto", env: {} });
    expect(store.kind).toBe("file");
    expect(store.get("apiKey")).toBe(API_KEY);
  });

  // This machine has no keychain, so "auto" falls back to the file. Where a keychain works the
  // probe (a throw-away entry, deleted at once) says so, and nothing else is written to it.
  it("falls back to the file with a notice when the keychain is not usable", () => {
    const store = openSecretStore(dir, { prefer: "auto", env: {} });
    if (store.kind === "file") {
      expect(store.location).toBe(secretsFilePath(dir));
      expect(store.notice).toMatch(/^No OS keychain here: /);
      expect(store.notice).toContain(secretsFilePath(dir));
    } else {
      expect(store.kind).toBe("keychain");
      expect(store.location).toBe("the OS keychain (service vast-gchat)");
      expect(store.notice).toBeUndefined();
    }
    expect(existsSync(secretsFilePath(dir))).toBe(false); // opening writes nothing
  });

  it("throws a clear error when the keychain is forced where none works", () => {
    const auto = openSecretStore(dir, { prefer: "auto", env: {} });
    const forced = () => openSecretStore(dir, { prefer: "keychain", env: {} });
    const byEnv = () => openSecretStore(dir, { env: { VAST_GCHAT_SECRET_STORE: "keychain" } });
    if (auto.kind === "keychain") {
      expect(forced().kind).toBe("keychain");
      return;
    }
    expect(forced).toThrow(UserError);
    expect(forced).toThrow(/^The OS keychain is not usable here: .+\.$/);
    const error = (() => {
      try {
        byEnv();
      } catch (e) {
        return e as UserError;
      }
      throw new Error("expected an error");
    })();
    expect(error.kind).toBe("usage");
    expect(error.hint).toContain("VAST_GCHAT_SECRET_STORE");
    expect(error.hint).toContain(secretsFilePath(dir));
  });

  it("scopes the path to the config directory", () => {
    const other = join(root, "other");
    fileStore().set("apiKey", API_KEY);
    expect(fileStore(other).get("apiKey")).toBeUndefined();
    expect(secretsFilePath(other)).toBe(join(other, "secrets.json"));
  });
});

/**
 * An in-memory stand-in for @napi-rs/keyring. `fail` makes one operation throw (on every account,
 * or only on those that are not the probe's), with a message that may quote the password.
 */
interface Failure {
  on: "set" | "get" | "delete";
  message: (password: string | undefined) => string;
  afterProbe?: boolean;
}
function fakeKeyring(fail?: Failure) {
  const entries = new Map<string, string>();
  const options: unknown[] = [];
  class Entry {
    readonly key: string;
    readonly probe: boolean;
    constructor(service: string, account: string, entryOptions?: unknown) {
      this.key = `${service}/${account}`;
      this.probe = account.startsWith("probe-");
      options.push(entryOptions);
    }
    private check(op: Failure["on"], password?: string): void {
      if (fail?.on === op && !(fail.afterProbe && this.probe))
        throw new Error(fail.message(password));
    }
    setPassword(password: string): void {
      this.check("set", password);
      entries.set(this.key, password);
    }
    getPassword(): string | null {
      this.check("get");
      return entries.get(this.key) ?? null;
    }
    deletePassword(): boolean {
      this.check("delete");
      return entries.delete(this.key);
    }
  }
  return { module: { Entry }, entries, options };
}

describe("the keychain store (with a stand-in keychain)", () => {
  it("is chosen by auto when the probe works, and leaves no probe entry behind", () => {
    const fake = fakeKeyring();
    const store = openSecretStore(dir, { prefer: "auto", env: {}, keyring: fake.module });
    expect(store.kind).toBe("keychain");
    expect(store.location).toBe("the OS keychain (service vast-gchat)");
    expect(store.notice).toBeUndefined();
    expect(fake.entries.size).toBe(0);
    // Linux: the Secret Service, never the kernel keyring that forgets on reboot.
    expect(fake.options[0]).toEqual({ linux: { store: "secret-service" } });
  });

  it("sets, gets, deletes and clears, under accounts scoped to the config dir", () => {
    const fake = fakeKeyring();
    const store = openSecretStore(dir, { prefer: "keychain", env: {}, keyring: fake.module });
    store.set("apiKey", API_KEY);
    store.set("webhookSecret", WEBHOOK_SECRET);
    expect(store.get("apiKey")).toBe(API_KEY);
    expect([...fake.entries.keys()].sort()).toEqual([
      expect.stringMatching(/^vast-gchat\/apiKey@[0-9a-f]{12}$/),
      expect.stringMatching(/^vast-gchat\/webhookSecret@[0-9a-f]{12}$/),
    ]);
    expect(existsSync(secretsFilePath(dir))).toBe(false); // nothing on disk

    const other = openSecretStore(join(root, "other"), { env: {}, keyring: fake.module });
    expect(other.kind).toBe("keychain");
    expect(other.get("apiKey")).toBeUndefined();
    other.set("apiKey", "a-different-key-for-another-dir");
    expect(store.get("apiKey")).toBe(API_KEY);

    store.delete("webhookSecret");
    store.delete("previousWebhookSecret"); // not there: fine
    expect(store.get("webhookSecret")).toBeUndefined();
    expect(store.clear()).toEqual(["apiKey"]);
    expect(store.get("apiKey")).toBeUndefined();
    expect(other.get("apiKey")).toBe("a-different-key-for-another-dir");
  });

  it("clear() removes the routes' Chat URLs it is told of (a keychain cannot be listed)", () => {
    const fake = fakeKeyring();
    const store = openSecretStore(dir, { prefer: "keychain", env: {}, keyring: fake.module });
    store.set("chatUrl", CHAT_URL);
    store.set("chatUrl:billing", `${CHAT_URL}-billing`);
    expect([...fake.entries.keys()]).toContainEqual(
      expect.stringMatching(/^vast-gchat\/chatUrl:billing@[0-9a-f]{12}$/),
    );
    expect(store.clear(["chatUrl:billing", "chatUrl:never-stored"])).toEqual([
      "chatUrl",
      "chatUrl:billing",
    ]);
    expect(fake.entries.size).toBe(0);
  });

  it("clear() also removes a secrets file an earlier set-up left", () => {
    fileStore().set("chatUrl", CHAT_URL);
    const fake = fakeKeyring();
    const store = openSecretStore(dir, { prefer: "keychain", env: {}, keyring: fake.module });
    store.set("apiKey", API_KEY);
    expect(store.clear()).toEqual(["apiKey", "chatUrl"]);
    expect(existsSync(secretsFilePath(dir))).toBe(false);
    expect(fake.entries.size).toBe(0);
  });

  it("falls back to the file when the keychain refuses, and throws when it was forced", () => {
    const broken = fakeKeyring({
      on: "set",
      message: () => "Couldn't access platform storage: AccessDenied",
    });
    const store = openSecretStore(dir, { env: {}, keyring: broken.module });
    expect(store.kind).toBe("file");
    expect(store.notice).toBe(
      `No OS keychain here: secrets are kept in ${secretsFilePath(dir)}, readable only by you.`,
    );
    const forced = () =>
      openSecretStore(dir, {
        env: { VAST_GCHAT_SECRET_STORE: "keychain" },
        keyring: broken.module,
      });
    expect(forced).toThrow(
      "The OS keychain is not usable here: Couldn't access platform storage: AccessDenied.",
    );
  });

  it("falls back when the keychain gives back something else than was stored", () => {
    const fake = fakeKeyring();
    const liar = {
      Entry: class extends fake.module.Entry {
        override getPassword(): string | null {
          return "something else";
        }
      },
    };
    expect(openSecretStore(dir, { env: {}, keyring: liar }).kind).toBe("file");
  });

  it("never puts a secret in a keychain error", () => {
    const leaky = fakeKeyring({
      on: "set",
      message: (password) => `Platform failure: cannot store ${password} (bytes [97, 98, 99])`,
      afterProbe: true,
    });
    const store = openSecretStore(dir, { prefer: "keychain", env: {}, keyring: leaky.module });
    const message = messageOf(() => store.set("apiKey", API_KEY));
    expect(message).toMatch(
      /^Could not store the Vast\.ai API key in the OS keychain: Platform failure/,
    );
    expect(message).not.toContain(API_KEY);
    expect(message).not.toContain("97, 98");
  });
});
