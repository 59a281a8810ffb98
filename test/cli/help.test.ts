import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SERVE_ENVIRONMENT, SERVE_NODE_OPTIONS } from "../../src/cli/commands/service.js";
import { cleanEnv, runCli } from "../support/cli-process.js";
import { runInProcess } from "../support/run-program.js";

const COMMANDS = [
  "init",
  "serve",
  "test",
  "types",
  "cleanup",
  "status",
  "rotate-secret",
  "events",
  "route",
  "trigger",
  "demo",
  "service",
];

describe("--help", () => {
  it("lists every command with a one-line purpose", async () => {
    const result = await runInProcess(["--help"], cleanEnv({}));
    expect(result.code).toBe(0);
    for (const command of COMMANDS)
      expect(result.stdout).toMatch(new RegExp(`\\n  ${command}\\b.*\\S`));
    expect(result.stdout).toMatchSnapshot();
  });

  it.each(COMMANDS)("%s --help: purpose, options and examples", async (command) => {
    const result = await runInProcess([command, "--help"], cleanEnv({ COLUMNS: "100" }));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: vast-gchat ${command}`);
    expect(result.stdout).toContain("Examples:");
    expect(result.stdout).not.toContain("\u001b[");
    expect(result.stdout).toMatchSnapshot();
  });
});

// chalk decides on colour once, when a process loads it: these need processes of their own.
describe("output", () => {
  it("has no colour when piped, even for a command that colours its output", async () => {
    const result = await runCli(["demo"], {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
    });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain("\u001b[");
  });

  it("has colour when FORCE_COLOR asks for it, and none with --no-color", async () => {
    const forced = await runCli(["demo"], cleanEnv({ FORCE_COLOR: "1", NO_COLOR: "" }));
    expect(forced.stdout).toContain("\u001b[");
    const off = await runCli(["demo", "--no-color"], cleanEnv({ FORCE_COLOR: "1", NO_COLOR: "" }));
    expect(off.stdout).not.toContain("\u001b[");
  });
});

describe("service", () => {
  it("prints a systemd unit that systemd-analyze accepts, with no secret in it", async (test) => {
    if (spawnSync("systemd-analyze", ["--version"]).status !== 0)
      test.skip(true, "needs systemd-analyze");
    const dir = mkdtempSync(join(tmpdir(), "vast-gchat-unit-"));
    try {
      const result = await runInProcess(
        ["service", "--config-dir", dir],
        cleanEnv({ VAST_WEBHOOK_SECRET: "whsec-unit-test" }),
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`serve --config-dir ${dir}`);
      // Started with the memory settings that keep a long-running serve's memory flat and low.
      expect(result.stdout).toMatch(
        /^ExecStart=\S+node --max-old-space-size=256 --max-semi-space-size=1 \S+vast-gchat\.js serve/m,
      );
      expect(result.stdout).toMatch(/^Environment=MALLOC_ARENA_MAX=2$/m);
      expect(result.stdout).not.toContain("whsec-unit-test");
      const unit = join(dir, "vast-gchat.service");
      writeFileSync(unit, result.stdout);
      const verify = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
      expect(verify.stderr).toBe("");
      expect(verify.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts serve as the replica unit in deploy/ and the Dockerfile do", () => {
    const options = SERVE_NODE_OPTIONS.join(" ");
    const replicaUnit = readFileSync(
      new URL("../../deploy/vast-gchat-replica.service", import.meta.url),
      "utf8",
    );
    expect(replicaUnit).toContain(`Environment="NODE_OPTIONS=${options}"`);
    const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
    expect(dockerfile).toContain(`NODE_OPTIONS="${options}"`);
    for (const [name, value] of Object.entries(SERVE_ENVIRONMENT)) {
      expect(replicaUnit).toContain(`Environment=${name}=${value}\n`);
      expect(dockerfile).toMatch(new RegExp(`^ +${name}=${value} `, "m"));
    }
  });
});
