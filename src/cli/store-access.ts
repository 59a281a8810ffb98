import { eventStorePath } from "../config/paths.js";
import {
  type EventStore,
  NoStoreDriverError,
  StoreUnavailableError,
} from "../delivery/event-store.js";
import { openEventStore } from "../delivery/open-store.js";
import { parseStoreLocation, redactStoreLocation } from "../delivery/store-location.js";
import { UserError } from "../user-error.js";
import { CliError } from "./errors.js";

/** The environment's name for `--store`. */
export const STORE_ENV = "VAST_GCHAT_STORE";

/** What `--store` gives the commands that read or run the event store. */
export interface StoreFlag {
  /** A postgres:// or postgresql:// URL, or the path of a SQLite file. */
  store?: string;
}

/**
 * Where the event store is: `--store`, else VAST_GCHAT_STORE, else `events.db` in the config
 * directory (SPEC.md, "Store"). A PostgreSQL URL that is not a URL is a usage error (exit 2) that
 * does not quote it: it may hold a password. A password given with `--store` is in the process
 * list and the shell's history: `warn` says so and where it belongs instead.
 */
export function resolveStoreLocation(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  configDir: string,
  warn: (message: string) => void,
): string {
  const location = flag || env[STORE_ENV] || eventStorePath(configDir);
  const parsed = parseStoreLocation(location);
  if (flag && parsed.kind === "postgresql" && parsed.secrets.length > 0) warn(PASSWORD_ON_ARGV);
  return location;
}

const PASSWORD_ON_ARGV =
  "--store puts the database password in the process list and your shell history; VAST_GCHAT_STORE, PGPASSWORD or ~/.pgpass keeps it out.";

/** Whether the store is a PostgreSQL database (shared by replicas) rather than a SQLite file. */
export function isSharedStore(location: string): boolean {
  return parseStoreLocation(location).kind === "postgresql";
}

/** A user-facing command may wait for the adapter's write lock longer than a webhook request. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens the event store for one piece of a command's work and always closes it. A store that is
 * busy or broken is a sentence for the user (exit 1), never "a bug in vast-gchat".
 */
export async function withStore<T>(
  path: string,
  work: (store: EventStore) => Promise<T>,
): Promise<T> {
  let store: EventStore | undefined;
  try {
    store = await openEventStore(path, { busyTimeoutMs: BUSY_TIMEOUT_MS });
    return await work(store);
  } catch (error) {
    // A sentence for the user already (a route that is not there, say): as it is.
    if (error instanceof UserError) throw error;
    const reason =
      error instanceof StoreUnavailableError
        ? error.message
        : `event store error (${(error as Error).message})`;
    throw new CliError(`Could not read the event store ${redactStoreLocation(path)}: ${reason}.`, {
      // No driver: the message already says what to install; trying again would not help.
      ...(error instanceof NoStoreDriverError
        ? {}
        : {
            hint: "If the adapter is busy, try again in a moment; DEBUG=vast-gchat shows the details.",
          }),
      cause: error,
    });
  } finally {
    await store?.close();
  }
}
