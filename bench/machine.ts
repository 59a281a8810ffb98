import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { chooseSqliteDriver } from "../src/delivery/sqlite/sqlite-driver.js";
import { isPostgresUrl } from "../src/delivery/store-location.js";
import { REPO_ROOT } from "./targets.js";

/** The machine a run was taken on: figures from a shared, noisy machine mean little without it. */
export type MachineInfo = Awaited<ReturnType<typeof machineInfo>>;

/** The 1, 5 and 15 minute load averages, e.g. "1.16 1.07 1.86". */
export function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");
}

/** What a command printed (python3 --version prints to stdout since 3.4), or undefined when it failed. */
function output(command: string, args: string[]): string | undefined {
  const result = spawnSync(command, args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 15_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

export async function machineInfo() {
  // serve is started with this Node, VAST_GCHAT_SQLITE_DRIVER and VAST_GCHAT_STORE (targets.ts),
  // so it chooses alike.
  const driver = await chooseSqliteDriver().then(
    (chosen) => chosen.name,
    () => "no driver",
  );
  const store = isPostgresUrl(process.env.VAST_GCHAT_STORE ?? "")
    ? "postgresql (pg)"
    : `sqlite (${driver})`;
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    /** The store serve runs on here: the SQLite driver this Node and VAST_GCHAT_SQLITE_DRIVER choose. */
    store,
    python: output("python3", ["--version"]),
    commit: output("git", ["rev-parse", "--short", "HEAD"]),
    /** Whether the working tree had uncommitted changes (the figures may not match the commit). */
    dirty: (output("git", ["status", "--porcelain", "--untracked-files=no"]) ?? "") !== "",
  };
}

/**
 * The bench and the soak run the built CLI (dist/): a missing build stops them, and a build older
 * than src/ earns a warning, since it would measure old code.
 */
export function checkBuild(
  script: "bench" | "bench:routes" | "bench:stores" | "soak",
  warn: (message: string) => void,
): void {
  const built = join(REPO_ROOT, "dist/cli/main.js");
  if (!existsSync(built)) {
    throw new Error(`dist/ is missing: run \`npm run build\` before \`npm run ${script}\`.`);
  }
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
      const path = join(dir, entry.name);
      return Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
    }, 0);
  if (newest(join(REPO_ROOT, "src")) > statSync(built).mtimeMs) {
    warn("warning: src/ changed after the last build; run `npm run build` first.");
  }
}

/** A temporary work directory, removed however the script ends (an error, Ctrl+C). */
export function workdirFor(name: string): string {
  const workdir = mkdtempSync(join(tmpdir(), `vast-gchat-${name}-`));
  process.once("exit", () => rmSync(workdir, { recursive: true, force: true }));
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => process.exit(130));
  }
  return workdir;
}

/** Runs a script's main and exits with its code; an error is printed with its stack, exit 1. */
export function benchScript(tag: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`[${tag}] failed: ${error instanceof Error ? error.stack : String(error)}`);
      process.exit(1);
    },
  );
}
