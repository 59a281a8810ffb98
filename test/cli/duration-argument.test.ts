import { describe, expect, it } from "vitest";
import { durationArgument, formatDuration } from "../../src/cli/duration-argument.js";
import { cleanEnv } from "../support/cli-process.js";
import { runInProcess } from "../support/run-program.js";

const parse = durationArgument(1000, 24 * 3_600_000);

describe("durationArgument", () => {
  it.each([
    ["0", 0],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    [" 2M ", 120_000],
    ["24h", 86_400_000],
  ])("%s is %d ms", (text, ms) => {
    expect(parse(text)).toBe(ms);
  });

  it.each(["5", "300", "", "5 m", "m", "-5m", "1d", "5min", "0.5s", "25h"])(
    "refuses %j",
    (text) => {
      expect(() => parse(text)).toThrow(/30s, 5m or 1h|from 1s to 24h/);
    },
  );

  it("formats as it parses", () => {
    expect([0, 1000, 300_000, 5_400_000, 21_600_000].map(formatDuration)).toEqual([
      "0",
      "1s",
      "5m",
      "1h30m",
      "6h",
    ]);
  });

  it("serve refuses a bare number before doing anything: one line naming the flag, exit 2", async () => {
    const result = await runInProcess(["serve", "--check-every", "5"], cleanEnv({}));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("option '--check-every <duration>' argument '5' is invalid.");
    expect(result.stderr).toContain("such as 30s, 5m or 1h");
    const short = await runInProcess(["serve", "--self-test-every", "500ms"], cleanEnv({}));
    expect(short.code).toBe(2);
  });
});
