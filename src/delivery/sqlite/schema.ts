import { DEFAULT_ROUTE } from "../../route-syntax.js";
import { StoreUnavailableError } from "../event-store.js";
import type { SqliteConnection } from "./sqlite-driver.js";

/**
 * The SQLite file's tables, and how an older file is brought up to date. The version is SQLite's
 * `user_version`; a file written by a newer vast-gchat is refused rather than misread.
 *
 * Version 4 (routes, issue 16) keeps one delivery per (event, route) in `deliveries`; attempts name
 * their route, and the note of the post under way is one row per route (`postings`). The upgrade
 * from 3 only adds: every event kept becomes a delivery of the route `default` in the state it was
 * in (so pending events are delivered to `default` after the upgrade, and dead ones wait for
 * `retry-dead` there), every attempt is `default`'s, and a noted post becomes `default`'s note.
 */
export const SCHEMA_VERSION = 4;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq             INTEGER PRIMARY KEY,
  event_id        TEXT    NOT NULL UNIQUE,
  notif_type      TEXT,
  payload         TEXT    NOT NULL,
  -- From version 4 on, the columns state to delivered_at are the sum of the event's deliveries
  -- (deliveries below; the store writes them with every change of a delivery): pending while any
  -- delivery is, else dead while any is, else delivered. Pruning reads them. Up to version 3 they
  -- were the event's one delivery.
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  received_at     INTEGER NOT NULL,
  queued_at       INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  delivered_at    INTEGER
);
-- Up to version 3 the worker read pending events through events_pending; from version 4 on it
-- reads deliveries, and the index only cost every event two more writes.
DROP INDEX IF EXISTS events_pending;
CREATE INDEX IF NOT EXISTS events_delivered ON events (delivered_at) WHERE state = 'delivered';
CREATE INDEX IF NOT EXISTS events_dead ON events (seq) WHERE state = 'dead';
-- Version 4: an event's delivery to one route (one Chat space), each with its own state, retries
-- and dead letter. A route's worker reads only its own, through the small partial indexes.
CREATE TABLE IF NOT EXISTS deliveries (
  seq             INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  route           TEXT    NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  -- When it was last queued: at receipt, or by a replay or retry-dead. The maximum age counts
  -- from here, and it tells the posts of a replay apart from a repeat of the same post.
  queued_at       INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  delivered_at    INTEGER,
  PRIMARY KEY (seq, route)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (route, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (route, seq) WHERE state = 'dead';
-- Every post that carried an event, for \`events show\`: to which route, when, how it ended, and
-- Chat's answer.
CREATE TABLE IF NOT EXISTS attempts (
  id       INTEGER PRIMARY KEY,
  seq      INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  at       INTEGER NOT NULL,
  outcome  TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status   INTEGER,
  error    TEXT,
  -- How many events the posted message carried (more than one for a digest).
  carried  INTEGER NOT NULL DEFAULT 1,
  route    TEXT    NOT NULL DEFAULT '${DEFAULT_ROUTE}'
);
CREATE INDEX IF NOT EXISTS attempts_seq ON attempts (seq);
-- The post under way in each route: its events are noted before it is sent and forgotten once
-- its outcome is recorded, so after a crash in between the same events go again, under the same
-- requestId, which lets Chat drop the repeat. One row a route at most.
CREATE TABLE IF NOT EXISTS postings (
  route TEXT PRIMARY KEY,
  seqs  TEXT NOT NULL
);
`;

/**
 * Creates the tables of a new file and adds what an older one lacks, in one transaction (another
 * process opening the same old file waits, then finds it current). Only a new or older file is
 * written to: opening a current one (to read, for `events list`) takes no lock.
 */
export function migrate(db: SqliteConnection, path: string): void {
  if (checkVersion(db, path) === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Another process may have brought it up to date while this one waited for the lock.
    if (checkVersion(db, path) === SCHEMA_VERSION) return;
    db.exec(SCHEMA);
    // A version 1 file has the events table without queued_at: add it, from received_at.
    if (!hasColumn(db, "events", "queued_at")) {
      db.exec(`ALTER TABLE events ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
               UPDATE events SET queued_at = received_at;`);
    }
    // Up to version 3: one space, so every attempt was the route default's.
    if (!hasColumn(db, "attempts", "route")) {
      db.exec(`ALTER TABLE attempts ADD COLUMN route TEXT NOT NULL DEFAULT '${DEFAULT_ROUTE}'`);
    }
    adoptOlderWrites(db);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

/**
 * Makes what the release before routes wrote deliverable here: up to version 3 an event had one
 * delivery, in its own row, and one note of the post under way (`posting`); now they are the route
 * default's, as they stood. Run by the upgrade, and again each time serve opens the store: an
 * upgraded file may still be written by the old serve until it is restarted (a newer `status` or
 * `events` upgrades the file under it), and what it keeps then has no delivery yet. `posting` stays
 * for that old serve; an event with no delivery is otherwise never left behind (a removed route's
 * events are forgotten with it), so any such event is the old release's.
 */
export function adoptOlderWrites(db: SqliteConnection): void {
  db.exec(`INSERT OR IGNORE INTO deliveries
             (seq, route, state, attempts, queued_at, next_attempt_at, last_error, delivered_at)
           SELECT seq, '${DEFAULT_ROUTE}', state, attempts, queued_at, next_attempt_at, last_error,
                  delivered_at
           FROM events e
           WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = e.seq)`);
  if (hasTable(db, "posting")) {
    db.exec(`INSERT OR IGNORE INTO postings (route, seqs)
               SELECT '${DEFAULT_ROUTE}', seqs FROM posting;
             DELETE FROM posting;`);
  }
}

/** The file's version; a newer one than this code knows is refused. */
function checkVersion(db: SqliteConnection, path: string): number {
  const version = db
    .prepare<[], { user_version: number }>("PRAGMA user_version")
    .get()?.user_version;
  if (version === undefined) throw new Error("PRAGMA user_version returned no row");
  if (version > SCHEMA_VERSION) {
    throw new StoreUnavailableError(
      `the event store ${path} was written by a newer vast-gchat (schema ${version}); upgrade vast-gchat`,
    );
  }
  return version;
}

function hasColumn(db: SqliteConnection, table: string, column: string): boolean {
  const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
  return columns.some((row) => row.name === column);
}

function hasTable(db: SqliteConnection, name: string): boolean {
  return (
    db
      .prepare<[name: string], { n: number }>(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
      )
      .get(name)?.n === 1
  );
}
