import { execFile, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { keepYoungGenerationSmall } from "../../src/cli/young-generation.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface YoungGeneration {
  set: boolean;
  before: number;
  after: number;
}

/**
 * A fresh Node process (V8's flags are the process's): optionally keeps the young generation
 * small, then makes objects that stay alive across collections before they become garbage, as
 * requests in flight do, and reports the young generation's size before and after.
 */
async function allocateIn(
  execArgv: string[],
  nodeOptions: string | undefined,
  keepSmall: boolean,
): Promise<YoungGeneration> {
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    const { keepYoungGenerationSmall } = await import("./src/cli/young-generation.ts");
    const youngSize = () => getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size;
    const set = ${keepSmall} && keepYoungGenerationSmall(process.execArgv, process.env.NODE_OPTIONS);
    const before = youngSize();
    const alive = [];
    for (let i = 0; i < 400_000; i++) {
      alive.push({ i, text: "event " + i });
      if (alive.length > 50_000) alive.splice(0, 10_000);
    }
    console.log(JSON.stringify({ set, before, after: youngSize() }));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...execArgv, "--import", "tsx", "--input-type=module", "-e", script],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: nodeOptions ?? "" } },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as YoungGeneration;
}

describe("keepYoungGenerationSmall", () => {
  it("stops V8 growing the young generation under surviving garbage", async () => {
    const left = await allocateIn([], undefined, false);
    const kept = await allocateIn([], undefined, true);
    // The probe is real: left to V8, the young generation grows several times over.
    expect(left.after).toBeGreaterThan(2 * left.before);
    expect(kept.set).toBe(true);
    // V8 may commit a page or two more of the young generation it has; it does not grow it.
    expect(kept.after * 4).toBeLessThan(left.after);
  });

  it("leaves a young generation the user sized, in NODE_OPTIONS or on the command line", async () => {
    const fromEnvironment = await allocateIn([], "--max-semi-space-size=16", true);
    expect(fromEnvironment.set).toBe(false);
    expect(fromEnvironment.after).toBeGreaterThan(2 * fromEnvironment.before);
    const fromCommandLine = await allocateIn(["--semi_space_growth_factor=2"], undefined, true);
    expect(fromCommandLine.set).toBe(false);
    expect(fromCommandLine.after).toBeGreaterThan(2 * fromCommandLine.before);
  });

  it("knows its flag is V8's on this line, and sets nothing on a line newer than those checked", () => {
    // CI runs this file on Node 20 and 26; a line whose V8 dropped the flag fails here.
    const v8Options = execFileSync(process.execPath, ["--v8-options"], { encoding: "utf8" });
    expect(v8Options).toContain("--semi-space-growth-factor");
    // Refused before V8 is touched, so this process's own V8 is left as it was.
    expect(keepYoungGenerationSmall([], undefined, "99.0.0")).toBe(false);
  });
});
