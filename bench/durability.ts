import Database from "better-sqlite3";

/**
 * The kill -9 check: after the adapter died mid-load, every event id it answered 2xx for must be
 * in its store. Opened read-only, after the process is gone, as the next `serve` would find it.
 */
export interface DurabilityResult {
  acknowledged: number;
  missing: number;
  /** A few missing ids, for the report. */
  examples: string[];
  /** Rows in `events`: more than acknowledged when requests in flight at the kill were kept. */
  rows: number;
}

export function checkAcknowledged(storePath: string, ackedIds: Iterable<string>): DurabilityResult {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    const has = db.prepare("SELECT 1 FROM events WHERE event_id = ?").pluck();
    const rows = db.prepare("SELECT COUNT(*) FROM events").pluck().get() as number;
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
