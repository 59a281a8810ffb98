import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SqliteDriverName } from "../../src/delivery/sqlite/sqlite-driver.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { SQLITE_DRIVERS_HERE } from "../delivery/sqlite/drivers.js";
import { type CliProcess, cleanEnv, runCli, spawnCli } from "../support/cli-process.js";
import { FakeChat } from "../support/fake-chat.js";
import { runInProcess } from "../support/run-program.js";
import { postSigned } from "../support/sign.js";

const SECRET = "whsec-process-9d8c7b6a5f";
let dir: string;
let chat: FakeChat;
const running: CliProcess[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-serve-"));
  chat = await FakeChat.start();
});

afterEach(async () => {
  for (const cli of running.splice(0)) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
    await cli.exited;
  }
  await chat.close();
  rmSync(dir, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}) {
  return cleanEnv({
    VAST_WEBHOOK_SECRET: SECRET,
    GOOGLE_CHAT_URL: chat.webhookUrl(),
    VAST_GCHAT_CONFIG_DIR: dir,
    ...extra,
  });
}

/** A serve process, its store on `driver` (VAST_GCHAT_SQLITE_DRIVER) or on the automatic choice. */
async function startServeOn(args: string[] = [], driver?: SqliteDriverName) {
  const cli = spawnCli(
    ["serve", "--port", "0", ...args],
    env(driver ? { VAST_GCHAT_SQLITE_DRIVER: driver } : {}),
  );
  running.push(cli);
  const ready = await cli.waitForLog((r) => r.msg === "ready");
  return { cli, url: String(ready.url) };
}

function expectNoSecrets(text: string) {
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain("fake-token-456");
  expect(text).not.toContain("fake-key-123");
}

/** The kill -9 tests run on every SQLite driver this Node has, the driver passed as a user would. */
describe.each(SQLITE_DRIVERS_HERE)("serve as a process, its store on %s", (driver) => {
  const startServe = (args: string[] = []) => startServeOn(args, driver);

  it("logs JSON lines without secrets, names the Chat space, and stops cleanly on SIGTERM", async () => {
    const { cli, url } = await startServe();
    const event = sampleEvent("low_credit");
    await postSigned(url, SECRET, event);
    await cli.waitForLog((r) => r.msg === "delivered" && r.event_id === event.event_id);
    await postSigned(url, "wrong", sampleEvent("low_credit"));
    await cli.waitForLog((r) => r.msg === "rejected" && r.reason === "invalid_signature");
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);
    expect(cli.stdout()).toContain('"chat":"spaces/AAAAfakeSpace at 127.0.0.1');
    // The ready line names the store's driver, so a user can tell which one a running serve uses.
    expect(cli.stdout()).toContain(`"store_kind":"sqlite (${driver})"`);
    expect(cli.stdout()).toContain('"msg":"stopped"');
    expectNoSecrets(cli.stdout() + cli.stderr());
    // Nothing alarming either: Node 22 warns that node:sqlite is experimental unless kept quiet.
    expect(cli.stderr()).not.toMatch(/ExperimentalWarning|experimental feature/);
  });

  it("loses nothing it acknowledged when killed with SIGKILL, and delivers each event exactly once after a restart", async () => {
    chat.behaviour = { kind: "status", status: 500 };
    const first = await startServe();
    const events = Array.from({ length: 20 }, (_, i) =>
      sampleEvent("instance_stopped", { subject: `kill test ${i}` }),
    );
    for (const event of events) {
      expect((await postSigned(first.url, SECRET, event)).status).toBe(200);
    }
    first.cli.child.kill("SIGKILL");
    expect((await first.cli.exited).signal).toBe("SIGKILL");
    expect(chat.messages).toHaveLength(0);

    chat.behaviour = { kind: "ok" };
    const second = await startServe();
    // Vast.ai retries some of them anyway: the restarted adapter must know them.
    for (const event of events.slice(0, 5)) {
      expect((await postSigned(second.url, SECRET, event)).body.duplicate).toBe(true);
    }
    for (const event of events) {
      await second.cli.waitForLog((r) => r.msg === "delivered" && r.event_id === event.event_id);
    }
    // Twenty waiting events go out as digests: each subject in exactly one message.
    const delivered = chat.messages.map((m) => String(m.body.fallbackText ?? m.body.text));
    for (const event of events) {
      expect(delivered.filter((text) => text.includes(`${event.subject} (`))).toHaveLength(1);
    }
    expect(chat.messages.length).toBeLessThan(events.length);
  });

  it("killed with SIGKILL in the middle of a burst, loses nothing: every event reaches Chat after a restart", async () => {
    chat.ratePerSecond = 1;
    const first = await startServe();
    const events = Array.from({ length: 100 }, (_, i) =>
      sampleEvent("outbid", { subject: `mid-burst ${String(i).padStart(3, "0")}` }),
    );
    await Promise.all(events.map((event) => postSigned(first.url, SECRET, event)));
    await chat.waitForMessages(1);
    first.cli.child.kill("SIGKILL");
    await first.cli.exited;

    const second = await startServe();
    const allVisible = () => {
      const text = chat.messages.map((m) => String(m.body.fallbackText ?? m.body.text)).join("\n");
      return events.every((event) => text.includes(event.subject));
    };
    await chat.waitFor(allVisible, 30_000);
    const text = chat.messages.map((m) => String(m.body.fallbackText ?? m.body.text)).join("\n");
    const repeats = events.filter((event) => text.split(event.subject).length > 2).length;
    // At most the one message in flight at the kill can be repeated.
    expect(repeats).toBeLessThanOrEqual(50);
    second.cli.child.kill("SIGTERM");
    expect((await second.cli.exited).code).toBe(0);
  });

  it("on SIGTERM, lets a post in flight finish before exiting 0", async () => {
    chat.behaviour = { kind: "ok", delayMs: 800 };
    const { cli, url } = await startServe();
    const event = sampleEvent("instance_stopped");
    await postSigned(url, SECRET, event);
    await chat.waitFor((c) => c.requests >= 1);
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);
    expect(chat.messages).toHaveLength(1);
    const lines = cli.stdout().split("\n");
    const stopping = lines.findIndex((line) => line.includes('"msg":"stopping"'));
    const delivered = lines.findIndex((line) =>
      line.includes(`"event_id":"${event.event_id}","attempts":1`),
    );
    expect(stopping).toBeGreaterThan(-1);
    expect(delivered).toBeGreaterThan(stopping);
  });

  it("exits at once on a second Ctrl+C while a post is in flight", async () => {
    chat.behaviour = { kind: "hang" };
    const { cli, url } = await startServe();
    await postSigned(url, SECRET, sampleEvent("low_credit"));
    await chat.waitFor((c) => c.requests >= 1);
    cli.child.kill("SIGINT");
    await cli.waitForLog((r) => r.msg === "stopping");
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(130);
  });
});

describe("the store's driver", () => {
  it("follows VAST_GCHAT_SQLITE_DRIVER, and a name it does not know is one clear sentence", async () => {
    const result = await runCli(
      ["serve", "--port", "0"],
      env({ VAST_GCHAT_SQLITE_DRIVER: "postgres" }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'VAST_GCHAT_SQLITE_DRIVER must be node or better-sqlite3, not "postgres"',
    );
    expect(result.stderr).not.toMatch(/\bat .*\.[jt]s:\d+/);
    // Not a hint about the directory: the sentence itself says what to change.
    expect(result.stderr).not.toContain("writable");
  });
});

describe("serve refuses bad configuration with one clear line and exit 2", () => {
  it.each([
    [
      "no secret",
      { VAST_WEBHOOK_SECRET: "" },
      /No webhook signing secret: run `vast-gchat init`, or set VAST_WEBHOOK_SECRET/,
    ],
    [
      "a secret with a line break",
      { VAST_WEBHOOK_SECRET: "abc\n" },
      /VAST_WEBHOOK_SECRET contains spaces/,
    ],
    [
      "no Chat URL",
      { GOOGLE_CHAT_URL: "" },
      /No Google Chat URL: run `vast-gchat init`, or set GOOGLE_CHAT_URL/,
    ],
    [
      "a plain-http Chat URL",
      { GOOGLE_CHAT_URL: "http://chat.googleapis.com/v1/spaces/A/messages?key=k&token=t" },
      /must use https/,
    ],
    [
      "an incomplete Chat URL",
      { GOOGLE_CHAT_URL: "https://chat.googleapis.com/v1/spaces/A/messages?key=k" },
      /incomplete/,
    ],
    ["a bad PORT", { PORT: "eighty" }, /PORT must be a port number/],
  ])("%s", async (_name, extra, message) => {
    const result = await runInProcess(["serve"], env(extra));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
    expect(result.stderr).not.toMatch(/\bat .*\.[jt]s:\d+/);
    expect(result.stdout).toBe("");
  });

  it("a wrong flag", async () => {
    const result = await runInProcess(["serve", "--prot", "1"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown option '--prot'/);
  });

  it("a mistyped command gets a suggestion", async () => {
    const result = await runInProcess(["serv"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Did you mean serve\?/);
  });

  it("a port already in use", async () => {
    const { url } = await startServeOn();
    const port = new URL(url).port;
    const result = await runInProcess(["serve", "--port", port], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(`Port ${port} is already in use`);
  });
});
