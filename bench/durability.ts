import { chooseSqliteDriver } from "../src/delivery/sqlite/sqlite-driver.js";

/**
 * The kill -9 check: after the adapter died mid-load, every event id it answered 2xx for must be
 * in its store. Opened read-only, after the process is gone, as the next `serve` would find it,
 * with the driver serve chose (node:sqlite or better-sqlite3).
 */
export type DurabilityResult = Awaited<ReturnType<typeof checkAcknowledged>>;

export async function checkAcknowledged(storePath: string, ackedIds: Iterable<string>) {
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
    // rows: more than acknowledged when requests in flight at the kill were kept.
    return { acknowledged, missing, examples, rows };
  } finally {
    db.close();
  }
}

/** The disk-full check: `PRAGMA integrity_check` of a store, read-only. */
export async function integrityCheck(storePath: string): Promise<string> {
  const db = (await chooseSqliteDriver()).open(storePath, { readonly: true });
  try {
    return db
      .prepare<[], { integrity_check: string }>("PRAGMA integrity_check")
      .all()
      .map((entry) => entry.integrity_check)
      .join("; ");
  } finally {
    db.close();
  }
}
