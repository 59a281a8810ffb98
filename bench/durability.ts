import { chooseSqliteDriver } from "../src/delivery/sqlite/sqlite-driver.js";

/**
 * The kill -9 check: after the adapter died mid-load, every event id it answered 2xx for must be
 * in its store. Opened read-only, after the process is gone, as the next `serve` would find it,
 * with the driver serve chose (node:sqlite or better-sqlite3).
 */
export interface DurabilityResult {
  acknowledged: number;
  missing: number;
  /** A few missing ids, for the report. */
  examples: string[];
  /** Rows in `events`: more than acknowledged when requests in flight at the kill were kept. */
  rows: number;
}

export async function checkAcknowledged(
  storePath: string,
  ackedIds: Iterable<string>,
): Promise<DurabilityResult> {
  const db = (await chooseSqliteDriver()).open(storePath, { readonly: true });
  try {
    const has = db.prepare<[id: string]>("SELECT 1 FROM events WHERE event_id = ?");
    const rows = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM events").get()?.n ?? 0;
    let acknowledged = 0;
    let missing = 0;
    const examples: string[] = [];
    for (const id of ackedIds) {
      acknowledged++;
      if (has.get(id) === undefined) {
        missing++;
        if (examples.length < 5) examples.push(id);
      }
    }
    return { acknowledged, missing, examples, rows };
  } finally {
    db.close();
  }
}
