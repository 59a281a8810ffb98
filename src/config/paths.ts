import { join } from "node:path";
import envPaths from "env-paths";

/** Where the configuration, the secrets file and the event store live (SPEC.md: --config-dir). */
export function resolveConfigDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag || env.VAST_GCHAT_CONFIG_DIR || envPaths("vast-gchat", { suffix: "" }).config;
}

export function eventStorePath(configDir: string): string {
  return join(configDir, "events.db");
}
