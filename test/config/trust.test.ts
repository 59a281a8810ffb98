import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveConfigDir } from "../../src/config/paths.js";
import { ensurePrivateDir, readPrivateJsonObject } from "../../src/config/private-file.js";
import { readRuntimeState, runtimeStatePath } from "../../src/config/runtime-state.js";
import { openSettings } from "../../src/config/settings.js";
import { UserError } from "../../src/user-error.js";

/**
 * Issue 13, item 2: a config directory another local user could have written to is refused, as
 * ssh refuses ~/.ssh. The ownership cases need root (only root can give a file to another uid);
 * root is not stopped by permissions, but these checks look at owners and mode bits, not access.
 */
const posix = process.getuid !== undefined;
const root = process.getuid?.() === 0;
/** Nobody on this machine: stands for the other local user. */
const OTHER_UID = 12345;

let base: string;
let dir: string;
beforeEach(() => {
  // Real path: on macOS the temp directory is reached through a link (/var -> /private/var).
  base = realpathSync(mkdtempSync(join(tmpdir(), "vast-gchat-trust-")));
  dir = join(base, "config");
  mkdirSync(dir, { mode: 0o700 });
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

/** The refusal, checked for what every refusal has: exit 2, one line, a hint, no stack. */
function refusal(fn: () => unknown): UserError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UserError);
  const error = caught as UserError;
  expect(error.kind).toBe("usage");
  expect(error.message).not.toContain("\n");
  expect(error.hint).toBeDefined();
  return error;
}

const check = (path = dir) => resolveConfigDir(path, {});

describe.runIf(posix)("the config directory is trusted only if nobody else could write it", () => {
  it("accepts a private directory, one the user made 0755, and one not there yet", () => {
    expect(check()).toBe(dir);
    chmodSync(dir, 0o755);
    expect(check()).toBe(dir);
    expect(check(join(dir, "not", "yet"))).toBe(join(dir, "not", "yet"));
  });

  it("refuses a directory writable by others or by its group, naming the chmod that fixes it", () => {
    for (const mode of [0o777, 0o770, 0o1777]) {
      chmodSync(dir, mode);
      const error = refusal(() => check());
      expect(error.message).toBe(
        `The config directory ${dir} is writable by other users, so what is in it cannot be trusted.`,
      );
      expect(error.hint).toBe(`Check what is in it, then run: chmod go-w ${dir}`);
    }
  });

  it("refuses through a link: a linked config directory is judged by where it leads", () => {
    const link = join(base, "linked");
    symlinkSync(dir, link);
    expect(check(link)).toBe(link);
    chmodSync(dir, 0o777);
    expect(refusal(() => check(link)).message).toContain(`The config directory ${dir} is writable`);
    // A link in the middle of the path, relative, leading through ".." as well.
    chmodSync(dir, 0o700);
    mkdirSync(join(base, "a"));
    symlinkSync("../config", join(base, "a", "up"));
    const through = join(base, "a", "up");
    expect(check(through)).toBe(through);
    chmodSync(dir, 0o757);
    expect(refusal(() => check(through)).message).toContain(
      `The config directory ${dir} is writable by other users`,
    );
    expect(refusal(() => check(join(through, "sub"))).message).toContain(
      `The directory ${dir} above the config directory ${join(through, "sub")} is writable`,
    );
  });

  it("refuses a sticky shared directory reached as the config directory through a link ending in . or ..", () => {
    const shared = join(base, "shared");
    mkdirSync(join(shared, "x"), { recursive: true });
    chmodSync(shared, 0o1777);
    for (const target of [`${shared}/.`, `${shared}/x/..`]) {
      const link = join(base, `link-${target.endsWith("..") ? "up" : "dot"}`);
      symlinkSync(target, link);
      expect(refusal(() => check(link)).message).toContain(
        `The config directory ${shared} is writable by other users`,
      );
    }
  });

  it("refuses a directory above it that others can write, unless it is sticky like /tmp", () => {
    chmodSync(base, 0o777);
    const error = refusal(() => check());
    expect(error.message).toBe(
      `The directory ${base} above the config directory ${dir} is writable by other users, so the config directory cannot be trusted.`,
    );
    expect(error.hint).toContain(`chmod go-w ${base}`);
    // Sticky: others may add entries but not rename or replace ours.
    chmodSync(base, 0o1777);
    expect(check()).toBe(dir);
    // A directory not made yet is judged by the one it would be made in.
    chmodSync(base, 0o777);
    expect(refusal(() => check(join(base, "new"))).message).toContain(
      `The directory ${base} above the config directory`,
    );
  });

  it("refuses a config directory of ours that others can write, rather than tightening it", () => {
    chmodSync(dir, 0o777);
    expect(refusal(() => ensurePrivateDir(dir)).message).toContain("is writable by other users");
    expect(statSync(dir).mode & 0o777).toBe(0o777);
  });

  it.each([
    ["config.json", "settings file"],
    ["secrets.json", "secrets file"],
    ["adapter.json", "adapter state file"],
    ["events.db", "event store file"],
    ["events.db-wal", "event store file"],
    ["events.db-shm", "event store file"],
  ])("refuses a %s that others can write", (name, what) => {
    const path = join(dir, name);
    writeFileSync(path, "{}", { mode: 0o600 });
    expect(check()).toBe(dir);
    chmodSync(path, 0o666);
    const error = refusal(() => check());
    expect(error.message).toBe(
      `The ${what} ${path} is writable by other users, so it cannot be trusted.`,
    );
    expect(error.hint).toBe(`Check it, then run: chmod go-w ${path}`);
  });

  it("refuses a linked file in the config directory, even one that leads to a file of ours", () => {
    const real = join(base, "elsewhere.json");
    writeFileSync(real, '{"port": 9000}', { mode: 0o600 });
    const path = join(dir, "config.json");
    symlinkSync(real, path);
    const message = `The settings file ${path} is a symbolic link, so it cannot be trusted.`;
    expect(refusal(() => check()).message).toBe(message);
    // Opened without following links too, whoever opens it without asking resolveConfigDir.
    expect(refusal(() => openSettings(dir).read()).message).toBe(message);
    expect(refusal(() => readPrivateJsonObject(path, "settings file")).message).toBe(message);
  });

  it("reads a settings file that others can write no more than the directory check does", () => {
    const path = join(dir, "config.json");
    writeFileSync(path, '{"tunnel": "command", "tunnelCommand": "touch /tmp/planted"}');
    chmodSync(path, 0o646);
    expect(refusal(() => openSettings(dir).read()).message).toContain(
      `The settings file ${path} is writable by other users`,
    );
  });
});

describe.runIf(root)("what belongs to another user is refused, naming the chown", () => {
  it("refuses a config directory of another user's", () => {
    chownSync(dir, OTHER_UID, OTHER_UID);
    const error = refusal(() => check());
    expect(error.message).toBe(
      `The config directory ${dir} belongs to another user (uid ${OTHER_UID}), so what is in it cannot be trusted.`,
    );
    expect(error.hint).toBe(`Check what is in it, then run: chown root ${dir}`);
  });

  it("refuses a directory above it of another user's, even a private one", () => {
    chownSync(base, OTHER_UID, OTHER_UID);
    expect(refusal(() => check()).message).toBe(
      `The directory ${base} above the config directory ${dir} belongs to another user (uid ${OTHER_UID}), so the config directory cannot be trusted.`,
    );
  });

  it("refuses a link on the way that another user owns (they could re-point it)", () => {
    chmodSync(base, 0o1777);
    const link = join(base, "linked");
    symlinkSync(dir, link);
    lchownSync(link, OTHER_UID, OTHER_UID);
    expect(refusal(() => check(link)).message).toContain(
      `The link ${link} on the way to the config directory ${link} belongs to another user (uid ${OTHER_UID})`,
    );
  });

  it("refuses a file planted by another user, read directly or through the directory check", () => {
    const path = join(dir, "config.json");
    writeFileSync(path, '{"apiUrl": "https://attacker.example"}', { mode: 0o600 });
    chownSync(path, OTHER_UID, OTHER_UID);
    const message = `The settings file ${path} belongs to another user (uid ${OTHER_UID}), so it cannot be trusted.`;
    expect(refusal(() => check()).message).toBe(message);
    const error = refusal(() => openSettings(dir).read());
    expect(error.message).toBe(message);
    expect(error.hint).toBe(`Check it, then run: chown root ${path}`);
  });

  it("refuses a planted adapter state file out loud, but still shrugs off a damaged one of ours", () => {
    const path = runtimeStatePath(dir);
    writeFileSync(path, "{not json", { mode: 0o600 });
    expect(readRuntimeState(dir)).toBeUndefined();
    const planted = { pid: process.pid, origin: "http://127.0.0.1:1", path: "/", startedAt: 0 };
    writeFileSync(path, JSON.stringify(planted), { mode: 0o600 });
    expect(readRuntimeState(dir)).toEqual(planted);
    chownSync(path, OTHER_UID, OTHER_UID);
    expect(refusal(() => readRuntimeState(dir)).message).toBe(
      `The adapter state file ${path} belongs to another user (uid ${OTHER_UID}), so it cannot be trusted.`,
    );
  });

  it("trusts what root owns, as ssh does: root could change anything anyway", () => {
    // The tests run as root here, so this is the user's own case too; the rule is the same.
    writeFileSync(join(dir, "config.json"), "{}", { mode: 0o644 });
    chownSync(join(dir, "config.json"), 0, 0);
    expect(check()).toBe(dir);
  });
});
