import { join } from "node:path";
import envPaths from "env-paths";
import { checkConfigDir } from "./trust.js";

/**
 * Where the configuration, the secrets file and the event store live (SPEC.md: --config-dir).
 * Every command finds its config directory here, so this is where one that another user could
 * have changed is refused (trust.ts), before anything in it is read or run.
 */
export function resolveConfigDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const dir = flag || env.VAST_GCHAT_CONFIG_DIR || envPaths("vast-gchat", { suffix: "" }).config;
  checkConfigDir(dir);
  return dir;
}

export function eventStorePath(configDir: string): string {
  return join(configDir, "events.db");
}
