import { afterAll, beforeAll } from "vitest";
import {
  availableSqliteDrivers,
  loadSqliteDriver,
  SQLITE_DRIVER_ENV,
  type SqliteConnection,
  type SqliteDriverName,
} from "../../../src/delivery/sqlite/sqlite-driver.js";

/**
 * The SQLite drivers that load on the Node running the tests: node:sqlite from 22.13 on,
 * better-sqlite3 where its addon was built for this Node. Store tests run once on each
 * (`describe.each(SQLITE_DRIVERS_HERE)`), so none is skipped and neither goes untested.
 */
export const SQLITE_DRIVERS_HERE: SqliteDriverName[] = await availableSqliteDrivers();
if (SQLITE_DRIVERS_HERE.length === 0) {
  throw new Error(`no SQLite driver loads on Node ${process.version}: the store cannot be tested`);
}

/**
 * The enclosing describe's tests open their stores on `driver`, chosen as a user would force it
 * (VAST_GCHAT_SQLITE_DRIVER); set before any beforeEach, so a fixture's store is on it too.
 */
export function useSqliteDriver(driver: SqliteDriverName): void {
  let before: string | undefined;
  beforeAll(() => {
    before = process.env[SQLITE_DRIVER_ENV];
    process.env[SQLITE_DRIVER_ENV] = driver;
  });
  afterAll(() => {
    if (before === undefined) delete process.env[SQLITE_DRIVER_ENV];
    else process.env[SQLITE_DRIVER_ENV] = before;
  });
}

/** Another connection to the file, as another process would hold it (locks, old versions). */
export async function otherConnection(
  path: string,
  driver: SqliteDriverName,
): Promise<SqliteConnection> {
  return (await loadSqliteDriver(driver)).open(path);
}
