import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./targets.js";

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
