import { existsSync } from "node:fs";
import type { EventStore, StoreOptions } from "./event-store.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";

/**
 * The one place that chooses the database behind the EventStore interface. Today a location is
 * always the path of a SQLite file; a `postgres://` URL will select PostgreSQL (issue 17) here,
 * and nowhere else.
 */
export function openEventStore(location: string, options: StoreOptions = {}): Promise<EventStore> {
  return openSqliteStore(location, options);
}

/** Whether a store was ever made there (`events list` must not create one to say it is empty). */
export function eventStoreExists(location: string): boolean {
  return existsSync(location);
}
