import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";
import { cleanEnv, runCli, spawnCli } from "../support/cli-process.js";

/**
 * The demo as a newcomer runs it: a real child process with its own HOME and TMPDIR, so the test
 * can see that nothing was written outside the temporary directory and that nothing is left over.
 */
interface DemoDocument {
  ok: boolean;
  types: Array<{ type: string; status: number; delivered: boolean }>;
  duplicate: { status: number; duplicate: boolean; posted_once: boolean };
  forged: { status: number; error: string };
  chat_messages: number;
  preview_url: string;
  config_dir: string;
}

let root: string;
let home: string;
let temp: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "demo-test-"));
  home = join(root, "home");
  temp = join(root, "tmp");
  for (const dir of [home, temp]) mkdirSync(dir, { recursive: true });
  env = cleanEnv({ HOME: home, TMPDIR: temp });
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Every file and directory under `dir`, relative to it. */
function contents(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

function processesMentioning(text: string): string[] {
  return execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(text));
}

describe("demo", () => {
  it("delivers every known type to the Chat preview, refuses the duplicate and the forgery, and leaves nothing behind", async () => {
    const result = await runCli(["demo", "--json"], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as DemoDocument;

    expect(summary.ok).toBe(true);
    expect(summary.types.map((t) => t.type)).toEqual([...KNOWN_EVENT_TYPES.keys()]);
    for (const type of summary.types) expect(type).toMatchObject({ status: 200, delivered: true });
    expect(summary.duplicate).toEqual({ status: 200, duplicate: true, posted_once: true });
    expect(summary.forged).toEqual({ status: 401, error: "invalid_signature" });
    // init's check message, one card per type, and the repeated event once.
    expect(summary.chat_messages).toBe(1 + KNOWN_EVENT_TYPES.size + 1);

    expect(summary.config_dir.startsWith(temp)).toBe(true);
    expect(contents(temp)).toEqual([]);
    expect(contents(home)).toEqual([]);
    expect(await refused(summary.preview_url)).toBe(true);
    expect(processesMentioning(summary.config_dir)).toEqual([]);
  });

  it("tells the story step by step, without colour when asked", async () => {
    const result = await runCli(["demo", "--no-color"], { ...env, FORCE_COLOR: "1" });
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).not.toContain("\u001b[");
    expect(out).toContain("init: ✓ Created webhook 1");
    expect(out).toMatch(/tunnel +loopback stand-in open at http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/received +low_credit +signature ok, kept on disk/);
    expect(out).toContain("in Chat     ⚠️ Warning - Your Vast.ai Credit Balance Is Getting Low");
    expect(out).toMatch(/duplicate +instance_stopped +already kept/);
    expect(out).toContain("rejected    401 invalid_signature");
    const types = KNOWN_EVENT_TYPES.size;
    expect(out).toContain(`Done: ${types} of ${types} types delivered to the Chat preview`);
    expect(out).toContain("cleanup: Deleted webhook 1");
    expect(contents(temp)).toEqual([]);
  });

  it("--keep stays up for the trigger it suggests, keeps its secrets off the screen, and cleans up on Ctrl+C", async () => {
    const demo = spawnCli(["demo", "--keep"], env);
    try {
      await expect.poll(() => demo.stdout(), { timeout: 30_000 }).toContain("Press Ctrl+C");
      const out = demo.stdout();
      const configDir = /trigger instance_stopped --config-dir (\S+)/.exec(out)?.[1] ?? "";
      const pageUrl = /and watch (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1] ?? "";
      expect(configDir.startsWith(temp)).toBe(true);

      const messages = async () => {
        const answer = await fetch(new URL("messages", pageUrl));
        return ((await answer.json()) as { messages: unknown[] }).messages.length;
      };
      const before = await messages();
      const sent = await runCli(["trigger", "instance_stopped", "--config-dir", configDir], env);
      expect(sent.code).toBe(0);
      expect(sent.stdout).toMatch(/^Sent: instance_stopped event/);
      // The worker delivers on its own time: ask the preview until the card is there.
      await expect.poll(messages, { timeout: 15_000 }).toBe(before + 1);

      const secrets = JSON.parse(readFileSync(join(configDir, "secrets.json"), "utf8"));
      expect(secrets.webhookSecret).toMatch(/^\S{16,}$/);
      demo.child.kill("SIGINT");
      expect((await demo.exited).code).toBe(0);
      // Neither the signing secret, nor the API key, nor the Chat URL's key and token.
      for (const secret of [secrets.webhookSecret, secrets.apiKey, "demo-token", "demo-key"]) {
        expect(demo.stdout()).not.toContain(secret);
        expect(demo.stderr()).not.toContain(secret);
      }
      expect(contents(temp)).toEqual([]);
      expect(await refused(pageUrl)).toBe(true);
    } finally {
      demo.child.kill("SIGKILL");
    }
  });

  it("Ctrl+C in the middle stops it, cleans up and exits 130", async () => {
    const demo = spawnCli(["demo"], env);
    try {
      await expect.poll(() => demo.stdout(), { timeout: 20_000 }).toMatch(/received +low_credit/);
      demo.child.kill("SIGINT");
      expect((await demo.exited).code).toBe(130);
      expect(demo.stderr()).toBe("");
      expect(contents(temp)).toEqual([]);
      expect(contents(home)).toEqual([]);
    } finally {
      demo.child.kill("SIGKILL");
    }
  });
});
