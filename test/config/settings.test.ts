import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSettings, type Settings } from "../../src/config/settings.js";
import { UserError } from "../../src/user-error.js";

const posix = process.platform !== "win32";
const mode = (path: string) => statSync(path).mode & 0o777;

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "vast-gchat-settings-"));
  dir = join(root, "config");
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const FULL: Settings = {
  apiUrl: "http://127.0.0.1:9999",
  webhookId: 4711,
  webhookName: "vast-gchat on host",
  eventTypes: ["client:low_credit", "instance_stopped"],
  tunnel: "command",
  tunnelCommand: "my-tunnel --port {port}",
  publicUrl: "https://hooks.example.com/vast",
  port: 8787,
  path: "/hook",
  chatSpace: "spaces/AAAAbCdEfGh",
  previousSecretExpiresAt: 1_767_225_600_000,
};

function writeConfig(content: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "config.json");
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

describe("settings", () => {
  it("reads nothing, and writes nothing, before anything is stored", () => {
    const settings = openSettings(dir);
    expect(settings.path).toBe(join(dir, "config.json"));
    expect(settings.read()).toEqual({});
    expect(existsSync(dir)).toBe(false);
  });

  it("round-trips every setting, also through a new instance", () => {
    const settings = openSettings(dir);
    expect(settings.update(FULL)).toEqual(FULL);
    expect(settings.read()).toEqual(FULL);
    expect(openSettings(dir).read()).toEqual(FULL);
    expect(JSON.parse(readFileSync(settings.path, "utf8"))).toEqual(FULL);
  });

  it("merges updates and removes keys set to undefined", () => {
    const settings = openSettings(dir);
    settings.update({ webhookId: 1, webhookName: "one", port: 8787 });
    const after = settings.update({ webhookName: "two", port: undefined });
    expect(after).toEqual({ webhookId: 1, webhookName: "two" });
    expect(settings.read()).toEqual({ webhookId: 1, webhookName: "two" });
    expect(Object.keys(JSON.parse(readFileSync(settings.path, "utf8")))).not.toContain("port");
  });

  it("reads fresh from disk: another process's update is seen", () => {
    const serve = openSettings(dir);
    serve.update({ port: 8787 });
    expect(serve.read().previousSecretExpiresAt).toBeUndefined();
    openSettings(dir).update({ previousSecretExpiresAt: 1_000 });
    expect(serve.read()).toEqual({ port: 8787, previousSecretExpiresAt: 1_000 });
  });

  it("clears every setting and says which", () => {
    const settings = openSettings(dir);
    settings.update({ webhookId: 7, tunnel: "none", publicUrl: "https://example.com/x" });
    expect(settings.clear().sort()).toEqual(["publicUrl", "tunnel", "webhookId"]);
    expect(settings.read()).toEqual({});
    expect(existsSync(settings.path)).toBe(false);
    expect(settings.clear()).toEqual([]);
    settings.update({ port: 1 }); // still usable after a clear
    expect(settings.read()).toEqual({ port: 1 });
  });

  it.runIf(posix)("keeps the file 0600 in a 0700 directory", () => {
    const settings = openSettings(dir);
    settings.update({ webhookId: 1 });
    expect(mode(dir)).toBe(0o700);
    expect(mode(settings.path)).toBe(0o600);

    chmodSync(settings.path, 0o644);
    chmodSync(dir, 0o755);
    settings.update({ webhookId: 2 });
    expect(mode(settings.path)).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
  });

  it("names the file and the key of a bad hand-edited value", () => {
    const path = writeConfig(JSON.stringify({ webhookId: 12, port: "eighty" }));
    const settings = openSettings(dir);
    expect(() => settings.read()).toThrow(UserError);
    expect(() => settings.read()).toThrow(
      `The settings file ${path} has a bad value for "port": expected a port number.`,
    );
    // An update that does not fix it is refused the same way; one that does is accepted.
    expect(() => settings.update({ webhookId: 13 })).toThrow(/bad value for "port"/);
    expect(settings.update({ port: 80 })).toEqual({ webhookId: 12, port: 80 });
  });

  it("explains other bad values", () => {
    writeConfig(JSON.stringify({ tunnel: "carrier-pigeon" }));
    expect(() => openSettings(dir).read()).toThrow(
      /"tunnel": expected one of tunnelmole, cloudflared, ngrok, command, none/,
    );
    writeConfig(JSON.stringify({ publicUrl: "ftp://example.com" }));
    expect(() => openSettings(dir).read()).toThrow(/"publicUrl": expected a URL/);
    writeConfig(JSON.stringify({ port: 70000 }));
    expect(() => openSettings(dir).read()).toThrow(/"port": expected a port number from 0/);
  });

  it("names the file when it is not JSON, or not an object, and clear() still works", () => {
    const path = writeConfig('{"webhookId": 12,');
    const settings = openSettings(dir);
    expect(() => settings.read()).toThrow(`The settings file ${path} is damaged (not valid JSON).`);
    try {
      settings.read();
    } catch (error) {
      expect((error as UserError).kind).toBe("usage");
      expect((error as UserError).hint).toMatch(/vast-gchat init/);
    }
    expect(settings.clear()).toEqual([]);
    expect(existsSync(path)).toBe(false);

    writeConfig("[1, 2]");
    expect(() => openSettings(dir).read()).toThrow(/not a JSON object/);
  });

  it("refuses to save a bad value and leaves the file as it was", () => {
    const settings = openSettings(dir);
    settings.update({ port: 8787 });
    expect(() => settings.update({ port: -1 })).toThrow(/Refusing to save the setting "port"/);
    expect(() => settings.update({ path: "no-slash" })).toThrow(/"path"/);
    expect(settings.read()).toEqual({ port: 8787 });
  });

  it("keeps unknown keys in the file (from a newer version) without returning them", () => {
    const path = writeConfig(JSON.stringify({ futureThing: true, port: 1 }));
    const settings = openSettings(dir);
    expect(settings.read()).toEqual({ port: 1 });
    settings.update({ port: 2 });
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ futureThing: true, port: 2 });
  });

  it("replaces the file atomically, leaving no temp file, and quotes nothing of a damaged one", () => {
    const settings = openSettings(dir);
    settings.update({ port: 1 });
    settings.update({ port: 2 });
    expect(readdirSync(dir)).toEqual(["config.json"]);

    writeConfig('{"chatSpace": "spaces/PRIVATE-LABEL", ');
    let text = "";
    try {
      settings.read();
    } catch (error) {
      text = `${(error as UserError).message}\n${(error as UserError).hint}`;
    }
    expect(text).toContain(settings.path);
    expect(text).not.toContain("PRIVATE-LABEL");
  });

  it("takes an empty file for no settings", () => {
    writeConfig("");
    expect(openSettings(dir).read()).toEqual({});
  });
});
