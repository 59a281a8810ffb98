import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * rotate-secret's grace (issue 13, item 1): by default and at most, only as long as a delivery
 * signed with the old secret before the rotation can still be valid (300 s of signature window and
 * 30 s for clocks), never minutes more; 0 refuses the old secret at once.
 */
let world: World;
beforeEach(async () => {
  world = await startWorld();
  expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
});
afterEach(async () => {
  await world.close();
});

interface Report {
  previous_accepted_until: string | null;
  grace_seconds: number;
}

async function rotate(...args: string[]) {
  const old = world.vast.secretOf(1) ?? "";
  const before = Date.now();
  const result = await world.run(["rotate-secret", "--json", ...args]);
  const after = Date.now();
  const text = result.stdout + result.stderr;
  expect(text).not.toContain(old);
  expect(text).not.toContain(world.vast.secretOf(1));
  return { result, old, before, after };
}

function acceptedFor(stdout: string, since: number): number {
  const until = (JSON.parse(stdout) as Report).previous_accepted_until;
  return until === null ? 0 : Date.parse(until) - since;
}

function stored(): string {
  return readFileSync(join(world.configDir, "secrets.json"), "utf8");
}

describe("rotate-secret --grace", () => {
  it("keeps the previous secret 330 s by default: the 300 s signature window and 30 s for clocks", async () => {
    const { result, old, before, after } = await rotate();
    expect(result.code).toBe(0);
    expect(acceptedFor(result.stdout, after)).toBeLessThanOrEqual(330_000);
    expect(acceptedFor(result.stdout, before)).toBeGreaterThanOrEqual(330_000);
    expect((JSON.parse(result.stdout) as Report).grace_seconds).toBe(330);
    expect(stored()).toContain(old);
  });

  it("takes seconds and minutes", async () => {
    const seconds = await rotate("--grace", "90s");
    expect(seconds.result.code).toBe(0);
    expect(acceptedFor(seconds.result.stdout, seconds.after)).toBeLessThanOrEqual(90_000);
    expect(acceptedFor(seconds.result.stdout, seconds.before)).toBeGreaterThanOrEqual(90_000);
    const minutes = await rotate("--grace", "2m");
    expect(acceptedFor(minutes.result.stdout, minutes.before)).toBeGreaterThanOrEqual(120_000);
    expect(acceptedFor(minutes.result.stdout, minutes.after)).toBeLessThanOrEqual(120_000);
  });

  it("cuts a longer grace (an old script's --grace 30, in minutes) to 330 s and says so", async () => {
    const { result, after } = await rotate("--grace", "30");
    expect(result.code).toBe(0);
    expect(acceptedFor(result.stdout, after)).toBeLessThanOrEqual(330_000);
    expect(result.stderr).toContain(
      "--grace 30 is longer than a delivery signed with the old secret stays valid: it is accepted for 330 s instead.",
    );
  });

  it("0 refuses the previous secret at once and keeps nothing of it", async () => {
    const { result, old } = await rotate("--grace", "0");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      previous_accepted_until: null,
      grace_seconds: 0,
    });
    expect(stored()).not.toContain(old);
    expect(readFileSync(join(world.configDir, "config.json"), "utf8")).not.toContain(
      "previousSecretExpiresAt",
    );
  });

  it("refuses what is not a duration, before asking Vast.ai for anything", async () => {
    const old = world.vast.secretOf(1);
    for (const grace of ["soon", "-1", "5h", ""]) {
      const result = await world.run(["rotate-secret", "--grace", grace]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("--grace must be a duration such as 90s or 2m");
    }
    expect(world.vast.secretOf(1)).toBe(old);
  });
});
