import { existsSync } from "node:fs";
import type { EventStore, StoreOptions } from "./event-store.js";
import { chooseSqliteDriver, SQLITE_DRIVER_ENV } from "./sqlite/sqlite-driver.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";

/**
 * The one place that chooses the database behind the EventStore interface. Today a location is
 * always the path of a SQLite file; a `postgres://` URL will select PostgreSQL (issue 17) here,
 * and nowhere else. Which SQLite driver runs it is chosen in sqlite/sqlite-driver.ts.
 */
export function openEventStore(location: string, options: StoreOptions = {}): Promise<EventStore> {
  return openSqliteStore(location, options);
}

/** Whether a store was ever made there (`events list` must not create one to say it is empty). */
export function eventStoreExists(location: string): boolean {
  return existsSync(location);
}

/** What `status` says of the store: the database, what runs it here, and where it is. */
export interface EventStoreInfo {
  kind: "sqlite";
  /** The driver this process runs the store on ("node:sqlite", "better-sqlite3"); null: none. */
  driver: string | null;
  location: string;
  exists: boolean;
  /** Why there is no driver, as a sentence. */
  problem: string | null;
}

/** Names the store and its driver without opening it (the driver is loaded, the file is not). */
export async function describeEventStore(
  location: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EventStoreInfo> {
  const info = { kind: "sqlite", location, exists: eventStoreExists(location) } as const;
  try {
    const driver = await chooseSqliteDriver(env[SQLITE_DRIVER_ENV]);
    return { ...info, driver: driver.name, problem: null };
  } catch (error) {
    return { ...info, driver: null, problem: (error as Error).message };
  }
}
