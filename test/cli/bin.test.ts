import { statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.js";
import { cleanEnv, runCli, spawnProcess } from "../support/cli-process.js";
import { API_KEY, startWorld, type World } from "../support/world.js";

const STDIN_TRAP = fileURLToPath(new URL("../fixtures/stdin-trap.cjs", import.meta.url));

/**
 * The built binary, as a user starts it. The other command tests run the program in-process
 * (run-program.ts); these hold what only a process shows: that bin/ starts dist/, that main()'s
 * answer is the exit status, that an error is a sentence and never a stack trace, that secrets
 * come through a real pipe, and the umask.
 */
describe("bin/vast-gchat.js", () => {
  it("starts, prints the help and exits 0", async () => {
    const result = await runCli(["--help"], cleanEnv({}));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: vast-gchat \[options\] \[command\]/);
    expect(result.stderr).toBe("");
  });

  it("prints the version", async () => {
    const result = await runCli(["--version"], cleanEnv({}));
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${VERSION}\n`);
  });

  it("leaves standard input alone unless a command reads it (building it costs every start)", async () => {
    // Quoted: NODE_OPTIONS splits on spaces, and a clone's path may hold one.
    const trap = cleanEnv({ NODE_OPTIONS: `--require "${STDIN_TRAP}"` });
    for (const args of [["--help"], ["--version"], ["serve", "--help"]]) {
      const result = await runCli(args, trap);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe("");
    }
    // The trap springs when something does read it. (So does importing node:process as a module,
    // which reads every property: chalk does, and so every command that colours its output.)
    const reading = spawnProcess(process.execPath, ["-e", "process.stdin"], trap);
    expect((await reading.exited).code).toBe(0);
    expect(reading.stderr()).toBe("stdin-trap: process.stdin read\n");
  });

  it("exits 2 on a usage error, with commander's suggestion", async () => {
    const result = await runCli(["serv"], cleanEnv({}));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Did you mean serve\?/);
  });

  it("exits 2 on missing configuration: the sentence and its hint, no stack trace", async () => {
    const result = await runCli(["serve"], cleanEnv({ VAST_WEBHOOK_SECRET: "" }));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^Error: No webhook signing secret/);
    expect(result.stderr.trim().split("\n")).toHaveLength(2);
    expect(result.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(result.stdout).toBe("");
  });
});

describe("init through the binary", () => {
  let world: World;
  beforeEach(async () => {
    world = await startWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it("reads both secrets from a pipe and keeps them private", async () => {
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
    const result = await world.runProcess(args, {}, `${API_KEY}\n${world.chat.webhookUrl()}\n`);
    expect(result.stderr).toContain("readable only by you");
    expect(result.code).toBe(0);
    expect(world.vast.webhooks()).toHaveLength(1);
    expect(statSync(world.configDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(world.configDir, "secrets.json")).mode & 0o777).toBe(0o600);
  });
});
