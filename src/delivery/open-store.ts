import { existsSync } from "node:fs";
import type { EventStore, StoreOptions } from "./event-store.js";
import { chooseSqliteDriver, SQLITE_DRIVER_ENV } from "./sqlite/sqlite-driver.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import { parseStoreLocation } from "./store-location.js";

/**
 * The one place that chooses the database behind the EventStore interface: a `postgres://` or
 * `postgresql://` URL selects PostgreSQL (src/delivery/postgres/, issue 17), anything else is the
 * path of a SQLite file (store-location.ts). Which SQLite driver runs it is chosen in
 * sqlite/sqlite-driver.ts. The PostgreSQL client is imported only when a URL asks for it.
 */
export async function openEventStore(
  location: string,
  options: StoreOptions = {},
): Promise<EventStore> {
  const where = parseStoreLocation(location);
  if (where.kind === "postgresql") {
    const { openPostgresStore } = await import("./postgres/postgres-store.js");
    return openPostgresStore(where, options);
  }
  return openSqliteStore(where.path, options);
}

/**
 * Whether a store was ever made there (`events list` must not create one to say it is empty). A
 * PostgreSQL database is the user's, made before: it is taken as there, and the store's tables are
 * made on first use.
 */
export function eventStoreExists(location: string): boolean {
  return parseStoreLocation(location).kind === "postgresql" || existsSync(location);
}

/** What `status` says of the store: the database, what runs it here, and where it is. */
export interface EventStoreInfo {
  kind: "sqlite" | "postgresql";
  /** The driver this process runs the store on ("node:sqlite", "better-sqlite3", "pg"); null: none. */
  driver: string | null;
  /** The path, or the URL without its password. */
  location: string;
  exists: boolean;
  /** Why there is no driver, or the database cannot be reached, as a sentence. */
  problem: string | null;
}

/**
 * Names the store and its driver without opening it (the driver is loaded, the file is not). A
 * PostgreSQL store is asked briefly whether it answers, and at which schema version.
 */
export async function describeEventStore(
  location: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EventStoreInfo> {
  const where = parseStoreLocation(location);
  if (where.kind === "postgresql") {
    const { probePostgresStore } = await import("./postgres/postgres-store.js");
    const problem = await probePostgresStore(where);
    return { kind: "postgresql", driver: "pg", location: where.shown, exists: true, problem };
  }
  const info = { kind: "sqlite", location, exists: eventStoreExists(location) } as const;
  try {
    const driver = await chooseSqliteDriver(env[SQLITE_DRIVER_ENV]);
    return { ...info, driver: driver.name, problem: null };
  } catch (error) {
    return { ...info, driver: null, problem: (error as Error).message };
  }
}
