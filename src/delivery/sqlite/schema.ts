import { StoreUnavailableError } from "../event-store.js";
import type { SqliteConnection } from "./sqlite-driver.js";

/**
 * The SQLite file's tables, and how an older file is brought up to date. The version is SQLite's
 * `user_version`; a file written by a newer vast-gchat is refused rather than misread.
 */
export const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq             INTEGER PRIMARY KEY,
  event_id        TEXT    NOT NULL UNIQUE,
  notif_type      TEXT,
  payload         TEXT    NOT NULL,
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  received_at     INTEGER NOT NULL,
  -- When it was last queued: at receipt, or by a replay or retry-dead. The maximum age counts
  -- from here, and it tells the posts of a replay apart from a repeat of the same post.
  queued_at       INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  delivered_at    INTEGER
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS events_delivered ON events (delivered_at) WHERE state = 'delivered';
CREATE INDEX IF NOT EXISTS events_dead ON events (seq) WHERE state = 'dead';
-- Every post that carried an event, for \`events show\`: when, how it ended, and Chat's answer.
CREATE TABLE IF NOT EXISTS attempts (
  id       INTEGER PRIMARY KEY,
  seq      INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
  at       INTEGER NOT NULL,
  outcome  TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status   INTEGER,
  error    TEXT,
  -- How many events the posted message carried (more than one for a digest).
  carried  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS attempts_seq ON attempts (seq);
-- The post under way (version 3): its events are noted before it is sent and forgotten once its
-- outcome is recorded, so after a crash in between the same events go again, under the same
-- requestId, which lets Chat drop the repeat. One row at most.
CREATE TABLE IF NOT EXISTS posting (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seqs TEXT    NOT NULL
);
`;

/**
 * Creates the tables of a new file and adds what an older one lacks. Only a new or older file is
 * written to: opening a current one (to read, for `events list`) takes no lock.
 */
export function migrate(db: SqliteConnection, path: string): void {
  const version = db
    .prepare<[], { user_version: number }>("PRAGMA user_version")
    .get()?.user_version;
  if (version === undefined) throw new Error("PRAGMA user_version returned no row");
  if (version > SCHEMA_VERSION) {
    throw new StoreUnavailableError(
      `the event store ${path} was written by a newer vast-gchat (schema ${version}); upgrade vast-gchat`,
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.exec(SCHEMA);
  // A version 1 file has the events table without queued_at: add it, from received_at.
  const columns = db.prepare<[], { name: string }>("PRAGMA table_info(events)").all();
  if (!columns.some((column) => column.name === "queued_at")) {
    db.exec(`ALTER TABLE events ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
             UPDATE events SET queued_at = received_at;`);
  }
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
}
