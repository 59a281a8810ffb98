import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemdUnit } from "../../src/cli/commands/service.js";
import { type CliProcess, cleanEnv, spawnCli } from "../support/cli-process.js";
import { FakeChat } from "../support/fake-chat.js";
import { runInProcess } from "../support/run-program.js";

/**
 * Issue 13, item 2, as a user meets it: the CLI refuses a config
 * directory another local user could have written, before anything planted in it is run, sent to
 * or believed; and what it creates is the user's alone. The ownership cases need root: only root
 * can give a file to another uid. Root is not stopped by permissions, but these checks look at
 * owners and mode bits.
 */
const posix = process.getuid !== undefined;
const root = process.getuid?.() === 0;
/** Nobody on this machine: stands for the other local user. */
const OTHER_UID = 12345;
const SECRET = "whsec-trust-0a1b2c3d4e";

let base: string;
let dir: string;
let chat: FakeChat;
const running: CliProcess[] = [];

beforeEach(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), "vast-gchat-trust-cli-")));
  dir = join(base, "config");
  mkdirSync(dir, { mode: 0o700 });
  chat = await FakeChat.start();
});

afterEach(async () => {
  for (const cli of running.splice(0)) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
    await cli.exited;
  }
  await chat.close();
  rmSync(base, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}) {
  return cleanEnv({ VAST_GCHAT_CONFIG_DIR: dir, VAST_GCHAT_SECRET_STORE: "file", ...extra });
}

/** What `init` leaves in the file store: the secrets `serve` needs, the user's own and private. */
function storeSecrets() {
  writeFileSync(
    join(dir, "secrets.json"),
    JSON.stringify({ webhookSecret: SECRET, chatUrl: chat.webhookUrl() }),
    { mode: 0o600 },
  );
}

/** A settings file whose tunnel command leaves `marker` behind if it is ever run. */
function plantTunnelCommand(marker: string, owner?: number) {
  const path = join(dir, "config.json");
  writeFileSync(
    path,
    JSON.stringify({ tunnel: "command", tunnelCommand: `touch ${marker} && sleep 30` }),
  );
  if (owner !== undefined) chownSync(path, owner, owner);
}

/** Runs the CLI, but gives up after `ms` (the old code kept serving a planted tunnel). */
async function runFor(args: string[], environment: NodeJS.ProcessEnv, ms = 10_000) {
  const cli = spawnCli(args, environment);
  running.push(cli);
  const timer = setTimeout(() => cli.child.kill("SIGKILL"), ms);
  const { code } = await cli.exited;
  clearTimeout(timer);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

describe.runIf(posix)("a config directory another user could write is refused", () => {
  it("serve refuses a world-writable config directory and never runs the planted tunnel command", async () => {
    storeSecrets();
    chmodSync(dir, 0o777); // as if made by hand, or by a careless umask
    const marker = join(base, "tunnel-command-ran");
    // Planted by another user where possible; by anyone, the directory alone is reason enough.
    plantTunnelCommand(marker, root ? OTHER_UID : undefined);

    const result = await runFor(["serve", "--port", "0"], env());
    expect(result.stderr).toBe(
      `Error: The config directory ${dir} is writable by other users, so what is in it cannot be trusted.\n` +
        `Check what is in it, then run: chmod go-w ${dir}\n`,
    );
    expect(result.code).toBe(2);
    expect(existsSync(marker)).toBe(false);
    expect(chat.messages).toHaveLength(0);
  });

  it("status refuses it too, with the same one line and the chmod", async () => {
    chmodSync(dir, 0o777);
    const result = await runInProcess(["status"], env({ VAST_API_KEY: "k" }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `Error: The config directory ${dir} is writable by other users`,
    );
    expect(result.stderr).toContain(`chmod go-w ${dir}\n`);
    expect(result.stderr).not.toMatch(/\bat .*\.[jt]s:\d+/); // no stack trace
  });

  it("refuses a linked settings file, even one leading to a file of the user's own", async () => {
    const real = join(base, "settings-elsewhere.json");
    writeFileSync(real, "{}", { mode: 0o600 });
    symlinkSync(real, join(dir, "config.json"));
    const result = await runInProcess(["status"], env({ VAST_API_KEY: "k" }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `Error: The settings file ${join(dir, "config.json")} is a symbolic link, so it cannot be trusted.`,
    );
  });
});

describe.runIf(root)("a file another user planted in a private config directory is refused", () => {
  it("serve refuses a settings file of another user's, naming the chown, and runs nothing", async () => {
    storeSecrets();
    const marker = join(base, "tunnel-command-ran");
    plantTunnelCommand(marker, OTHER_UID);
    const path = join(dir, "config.json");

    const result = await runFor(["serve", "--port", "0"], env());
    expect(result.stderr).toBe(
      `Error: The settings file ${path} belongs to another user (uid ${OTHER_UID}), so it cannot be trusted.\n` +
        `Check it, then run: chown root ${path}\n`,
    );
    expect(result.code).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });

  it("trigger refuses a planted adapter state file instead of sending a signed event where it says", async () => {
    const received: string[] = [];
    const server: Server = createServer((request, response) => {
      received.push(`${request.method} ${request.url}`);
      response.setHeader("content-type", "application/json");
      response.end('{"ok": true, "event_id": "x", "duplicate": false}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const path = join(dir, "adapter.json");
      // pid: a live process (this one), so the file passes for a running serve's.
      writeFileSync(
        path,
        JSON.stringify({
          pid: process.pid,
          origin: `http://127.0.0.1:${port}`,
          path: "/steal",
          startedAt: Date.now(),
        }),
      );
      chownSync(path, OTHER_UID, OTHER_UID);

      const result = await runInProcess(
        ["trigger", "low_credit"],
        env({ VAST_WEBHOOK_SECRET: SECRET }),
      );
      expect(result.stderr).toContain(
        `Error: The adapter state file ${path} belongs to another user (uid ${OTHER_UID}), so it cannot be trusted.`,
      );
      expect(result.code).toBe(2);
      expect(received).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe.runIf(posix)("everything the CLI creates is the user's alone (umask 077)", () => {
  it("serve makes a new config directory 0700 and the event store, its WAL and shared memory 0600", async () => {
    const fresh = join(base, "new-config");
    // The parent's umask (022 as usual) is what the old code gave SQLite: 0644 files.
    const cli = spawnCli(
      ["serve", "--port", "0"],
      cleanEnv({
        VAST_GCHAT_CONFIG_DIR: fresh,
        VAST_WEBHOOK_SECRET: SECRET,
        GOOGLE_CHAT_URL: chat.webhookUrl(),
      }),
    );
    running.push(cli);
    await cli.waitForLog((record) => record.msg === "ready");
    const mode = (name: string) => statSync(join(fresh, name)).mode & 0o777;
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    for (const name of ["events.db", "events.db-wal", "events.db-shm", "adapter.json"]) {
      expect([name, mode(name)]).toEqual([name, 0o600]);
    }
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);
  });

  it("the systemd unit sets UMask=0077, so a service's files are private too", () => {
    expect(systemdUnit(dir)).toMatch(/^UMask=0077$/m);
  });
});
