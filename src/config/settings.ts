import { chmodSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Conf from "conf";
import { z } from "zod";
import { CliError, ExitCode } from "../cli/errors.js";
import { ensurePrivateDir } from "./secret-store.js";

/**
 * The non-secret settings `init` stores for later commands: `<configDir>/config.json`, through conf
 * (atomic writes), 0600 in a 0700 directory. Secrets never go here: see secret-store.ts.
 */
export type TunnelChoice = "tunnelmole" | "cloudflared" | "ngrok" | "command" | "none";

export const TUNNEL_CHOICES: readonly TunnelChoice[] = [
  "tunnelmole",
  "cloudflared",
  "ngrok",
  "command",
  "none",
];

export interface Settings {
  /** The Vast.ai API base URL used at init (non-default only). */
  apiUrl?: string;
  webhookId?: number;
  webhookName?: string;
  eventTypes?: string[];
  tunnel?: TunnelChoice;
  tunnelCommand?: string;
  publicUrl?: string;
  port?: number;
  path?: string;
  /** The Chat space label, safe to show. */
  chatSpace?: string;
  /** Until when (ms since epoch) the previous webhook secret is still accepted after a rotation. */
  previousSecretExpiresAt?: number;
}

/** What `update` takes: a key set to undefined is removed. */
export type SettingsPatch = { [Key in keyof Settings]?: Settings[Key] | undefined };

export interface SettingsStore {
  /** The JSON file. */
  readonly path: string;
  /** Fresh from disk every time (another process may have changed it). */
  read(): Settings;
  /** Keys set to undefined are removed. Returns the settings as saved. */
  update(patch: SettingsPatch): Settings;
  /** Removes every setting (and the file); returns what was removed. */
  clear(): (keyof Settings)[];
}

const CONFIG_NAME = "config";

const httpUrl = (what: string) =>
  z.url({ protocol: /^https?$/, error: `expected ${what} starting with https://` });

const shape = {
  apiUrl: httpUrl("a URL").exactOptional(),
  webhookId: z.int({ error: "expected a whole number" }).nonnegative().exactOptional(),
  webhookName: z.string({ error: "expected text" }).exactOptional(),
  eventTypes: z
    .array(z.string().min(1), { error: "expected a list of event type keys" })
    .exactOptional(),
  tunnel: z
    .enum(TUNNEL_CHOICES as [TunnelChoice, ...TunnelChoice[]], {
      error: `expected one of ${TUNNEL_CHOICES.join(", ")}`,
    })
    .exactOptional(),
  tunnelCommand: z
    .string({ error: "expected a command" })
    .min(1, "expected a command")
    .exactOptional(),
  publicUrl: httpUrl("a URL").exactOptional(),
  port: z
    .int({ error: "expected a port number" })
    .min(0, "expected a port number from 0 to 65535")
    .max(65535, "expected a port number from 0 to 65535")
    .exactOptional(),
  path: z
    .string({ error: "expected a path" })
    .startsWith("/", "expected a path starting with /")
    .exactOptional(),
  chatSpace: z.string({ error: "expected text" }).exactOptional(),
  previousSecretExpiresAt: z
    .int({ error: "expected a time in milliseconds since 1970" })
    .nonnegative()
    .exactOptional(),
} satisfies Record<keyof Settings, z.ZodType>;

/** Unknown keys (from a newer version, say) are kept in the file but not returned. */
const settingsSchema = z.object(shape);
const SETTINGS_KEYS = Object.keys(shape) as (keyof Settings)[];

type RawSettings = Record<string, unknown>;

/** conf's `deserialize`: JSON, and an object, or a sentence about the file. */
class NotAnObject extends Error {}

export function openSettings(configDir: string): SettingsStore {
  let conf: Conf<RawSettings> | undefined;
  // Created on first use: conf reads the file (and may create the directory) as it starts.
  const open = (): Conf<RawSettings> => {
    conf ??= new Conf<RawSettings>({
      cwd: configDir,
      configName: CONFIG_NAME,
      projectName: "vast-gchat",
      configFileMode: 0o600,
      accessPropertiesByDotNotation: false,
      clearInvalidConfig: false,
      deserialize: (text) => {
        const value: unknown = JSON.parse(text);
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          throw new NotAnObject();
        }
        return value as RawSettings;
      },
    });
    return conf;
  };
  // conf's own rule (path.resolve(cwd, name.json)), so the path is known before conf starts.
  const path = resolve(configDir, `${CONFIG_NAME}.json`);

  const readRaw = (): RawSettings => {
    if (!fileExists(path)) return {};
    try {
      return { ...open().store };
    } catch (error) {
      throw readError(path, error);
    }
  };

  return {
    path,

    read() {
      return parseSettings(readRaw(), path);
    },

    update(patch) {
      const next = readRaw();
      const patched = new Set<string>();
      for (const [key, value] of Object.entries(patch)) {
        if (!(SETTINGS_KEYS as string[]).includes(key)) {
          throw new Error(`Unknown setting "${key}".`);
        }
        patched.add(key);
        if (value === undefined) delete next[key];
        else next[key] = value;
      }
      const result = settingsSchema.safeParse(next);
      if (!result.success) {
        const issue = result.error.issues[0];
        const key = String(issue?.path[0] ?? "");
        if (patched.has(key)) {
          throw new Error(`Refusing to save the setting "${key}": ${issue?.message ?? "invalid"}.`);
        }
        throw invalidError(path, result.error);
      }
      try {
        ensurePrivateDir(dirname(path));
        open().store = next;
        tightenFile(path);
      } catch (error) {
        if (error instanceof CliError) throw error;
        throw new CliError(
          `Cannot write the settings file ${path} (${errorCode(error) ?? "unknown error"}).`,
        );
      }
      return result.data;
    },

    clear() {
      let removed: (keyof Settings)[] = [];
      try {
        const raw = readRaw();
        removed = SETTINGS_KEYS.filter((key) => raw[key] !== undefined);
      } catch {
        // Damaged: removed all the same.
      }
      try {
        rmSync(path, { force: true });
      } catch (error) {
        throw new CliError(
          `Cannot remove the settings file ${path} (${errorCode(error) ?? "unknown error"}).`,
        );
      }
      return removed;
    },
  };
}

function parseSettings(raw: RawSettings, path: string): Settings {
  const result = settingsSchema.safeParse(raw);
  if (!result.success) throw invalidError(path, result.error);
  return result.data;
}

const HINT = "Fix it by hand, or delete it and run `vast-gchat init` again.";

function invalidError(path: string, error: z.ZodError): CliError {
  const issue = error.issues[0];
  const key = String(issue?.path[0] ?? "?");
  return new CliError(
    `The settings file ${path} has a bad value for "${key}": ${issue?.message ?? "invalid"}.`,
    { hint: HINT, exitCode: ExitCode.Usage },
  );
}

function readError(path: string, error: unknown): CliError {
  if (error instanceof SyntaxError) {
    return new CliError(`The settings file ${path} is damaged (not valid JSON).`, {
      hint: HINT,
      exitCode: ExitCode.Usage,
    });
  }
  if (error instanceof NotAnObject) {
    return new CliError(`The settings file ${path} is damaged (not a JSON object).`, {
      hint: HINT,
      exitCode: ExitCode.Usage,
    });
  }
  return new CliError(
    `Cannot read the settings file ${path} (${errorCode(error) ?? "unknown error"}).`,
    { exitCode: ExitCode.Usage, cause: error },
  );
}

/** conf writes with 0600, but not on every path (Snap); make sure. */
function tightenFile(path: string): void {
  if (process.platform === "win32") return;
  const stats = statSync(path);
  if ((stats.mode & 0o077) !== 0 && stats.uid === process.getuid?.()) chmodSync(path, 0o600);
}

function fileExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
