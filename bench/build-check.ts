import { existsSync, readdirSync, statSync } from "node:fs";
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
