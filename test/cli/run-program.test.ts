import chalk from "chalk";
import { afterEach, describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.js";
import { cleanEnv } from "../support/cli-process.js";
import { runInProcess } from "../support/run-program.js";

/** The in-process runner the command tests use: it must leave this process as it found it. */
describe("runInProcess", () => {
  const level = chalk.level;
  afterEach(() => {
    chalk.level = level;
  });

  it("answers the exit code and what was written, as a process would", async () => {
    expect(await runInProcess(["--version"], cleanEnv({}))).toEqual({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: "",
    });
    const usage = await runInProcess(["serv"], cleanEnv({}));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Did you mean serve\?/);
  });

  it("puts chalk's colour level and the umask back, whatever the command set", async () => {
    chalk.level = 2;
    const umask = process.umask(0o022);
    // --no-color sets chalk's level to 0 before the command runs (and fails without a key).
    const result = await runInProcess(["types", "--no-color"], cleanEnv({ FORCE_COLOR: "3" }));
    expect(result.code).toBe(2);
    expect(chalk.level).toBe(2);
    expect(process.umask(umask)).toBe(0o022);
  });
});
