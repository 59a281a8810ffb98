import { resolve } from "node:path";
import { z } from "zod";
import { UserError } from "../user-error.js";
import {
  DAMAGED_FILE_HINT,
  type PrivateJsonObject,
  readPrivateJsonObject,
  removePrivateFile,
  writePrivateJson,
} from "./private-file.js";
import { type Route, routesSchema } from "./routes.js";
import { TUNNEL_CHOICES, type TunnelChoice } from "./tunnel-choices.js";

/**
 * The non-secret settings `init` stores for later commands: `<configDir>/config.json`, a flat JSON
 * object validated with zod, 0600 in a 0700 directory and replaced atomically (private-file.ts).
 * Secrets never go here: see secret-store.ts.
 */
export type { TunnelChoice } from "./tunnel-choices.js";

export interface Settings {
  /** The Vast.ai API base URL used at init (non-default only). */
  apiUrl?: string;
  webhookId?: number;
  webhookName?: string;
  /**
   * The types `init` chose (`--events`): what the webhook always subscribes to. The webhook gets
   * these and whatever the routes name (vast/routing.ts, subscriptionOf).
   */
  eventTypes?: string[];
  tunnel?: TunnelChoice;
  tunnelCommand?: string;
  publicUrl?: string;
  port?: number;
  path?: string;
  /** The `default` route's Chat space label, safe to show. */
  chatSpace?: string;
  /**
   * Which Chat space gets which notifications (config/routes.ts); absent in a set-up made before
   * routes, which reads as the one route `default` (routesOf). Their Chat URLs are secrets.
   */
  routes?: Route[];
  /** Until when (ms since epoch) the previous webhook secret is still accepted after a rotation. */
  previousSecretExpiresAt?: number;
  /**
   * Set while `rotate-secret` runs (ms since epoch): Vast.ai may already sign with a secret not
   * yet stored, so a running adapter answers a mismatch with 503 (retried) instead of 401 (lost).
   */
  rotationStartedAt?: number;
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

const SETTINGS_FILE = "config.json";
/** How messages name the file. */
const WHAT = "settings file";

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
  routes: routesSchema.exactOptional(),
  previousSecretExpiresAt: z
    .int({ error: "expected a time in milliseconds since 1970" })
    .nonnegative()
    .exactOptional(),
  rotationStartedAt: z
    .int({ error: "expected a time in milliseconds since 1970" })
    .nonnegative()
    .exactOptional(),
} satisfies Record<keyof Settings, z.ZodType>;

/** Unknown keys (from a newer version, say) are kept in the file but not returned. */
const settingsSchema = z.object(shape);
const SETTINGS_KEYS = Object.keys(shape) as (keyof Settings)[];

export function openSettings(configDir: string): SettingsStore {
  const path = resolve(configDir, SETTINGS_FILE);
  // No file yet means no settings yet; reading creates nothing (not even the directory).
  const readRaw = (): PrivateJsonObject =>
    readPrivateJsonObject(path, WHAT) ?? (Object.create(null) as PrivateJsonObject);

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
      // Unknown keys (from a newer version) are written back as they were.
      writePrivateJson(path, next, WHAT);
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
      removePrivateFile(path, WHAT);
      return removed;
    },
  };
}

function parseSettings(raw: PrivateJsonObject, path: string): Settings {
  const result = settingsSchema.safeParse(raw);
  if (!result.success) throw invalidError(path, result.error);
  return result.data;
}

function invalidError(path: string, error: z.ZodError): UserError {
  const issue = error.issues[0];
  const key = String(issue?.path[0] ?? "?");
  return new UserError(
    `The settings file ${path} has a bad value for "${key}": ${issue?.message ?? "invalid"}.`,
    { hint: DAMAGED_FILE_HINT, kind: "usage" },
  );
}
