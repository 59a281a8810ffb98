import type pg from "pg";
import { StoreUnavailableError } from "../event-store.js";

/**
 * The PostgreSQL store's tables, in a schema of their own (`vast_gchat`), so the database may hold
 * other things too. Version 1, in the shape the SQLite store reached with routes (issue 16):
 *
 * - `events`: an event once (the signed `event_id` is UNIQUE: the dedupe across replicas).
 * - `deliveries`: one per (event, route), each with its own state, attempts, retry time and error.
 * - `attempts`: every post that carried an event, for `events show`.
 * - `routes`: one row per route, which is both the claim on the route's outbox and the note of its
 *   post under way. The replica whose id is in `claimed_by` is the only one that posts the route's
 *   events until `claim_expires_at` (renewed as it works): pacing and digests are per route, so
 *   one replica at a time drains a route, paced, and builds its digests. A replica that dies leaves
 *   its claim to expire; the next one to take it finds `posting` (the events of the post that had
 *   no recorded outcome) and posts exactly those again, under the same requestId.
 *
 * Times are milliseconds since the epoch (bigint), as in SQLite, from the replicas' clocks, except
 * the claim's, which is the server's (`clock_timestamp()`): replicas on machines whose clocks differ
 * still agree on when a claim has expired.
 */
export const SCHEMA_VERSION = 1;
export const SCHEMA = "vast_gchat";

/** The advisory lock under which migrations run: (classid, objid), two-integer form. */
const LOCK_CLASS = 0x7661_7374; // "vast"
const LOCK_MIGRATE = 2;

const CREATE = `
CREATE SCHEMA IF NOT EXISTS vast_gchat;
CREATE TABLE IF NOT EXISTS vast_gchat.schema_version (
  id      integer PRIMARY KEY CHECK (id = 1),
  version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS vast_gchat.events (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id    text   NOT NULL UNIQUE,
  notif_type  text,
  payload     text   NOT NULL,
  received_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type ON vast_gchat.events (notif_type, seq);
CREATE TABLE IF NOT EXISTS vast_gchat.deliveries (
  seq             bigint  NOT NULL REFERENCES vast_gchat.events (seq) ON DELETE CASCADE,
  route           text    NOT NULL,
  state           text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  queued_at       bigint  NOT NULL,
  next_attempt_at bigint  NOT NULL,
  last_error      text,
  delivered_at    bigint,
  PRIMARY KEY (seq, route)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON vast_gchat.deliveries (route, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_dead ON vast_gchat.deliveries (route, seq) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS vast_gchat.attempts (
  id      bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  seq     bigint  NOT NULL REFERENCES vast_gchat.events (seq) ON DELETE CASCADE,
  route   text    NOT NULL,
  at      bigint  NOT NULL,
  outcome text    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
  status  integer,
  error   text,
  carried integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS attempts_seq ON vast_gchat.attempts (seq);
CREATE TABLE IF NOT EXISTS vast_gchat.routes (
  route            text PRIMARY KEY,
  claimed_by       text,
  claim_expires_at timestamptz,
  posting          bigint[],
  last_post_at     timestamptz
);
`;

/** The version a database holds, or 0 when it has none of our tables yet. */
export async function schemaVersion(client: pg.ClientBase): Promise<number> {
  const exists = await client.query<{ present: boolean }>(
    "SELECT to_regclass('vast_gchat.schema_version') IS NOT NULL AS present",
  );
  if (!exists.rows[0]?.present) return 0;
  const row = await client.query<{ version: number }>(
    "SELECT version FROM vast_gchat.schema_version WHERE id = 1",
  );
  return row.rows[0]?.version ?? 0;
}

export function newerSchemaError(version: number, shown: string): StoreUnavailableError {
  return new StoreUnavailableError(
    `the event store ${shown} was written by a newer vast-gchat (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade vast-gchat on this replica`,
  );
}

/**
 * Brings the database up to this version, once, however many replicas start together: the work
 * is one transaction under an advisory lock, and a replica that waited for the lock finds it done.
 * A database already current is only read. A newer one is refused: this code would misread it.
 */
export async function migrate(client: pg.ClientBase, shown: string): Promise<void> {
  const seen = await schemaVersion(client);
  if (seen > SCHEMA_VERSION) throw newerSchemaError(seen, shown);
  if (seen === SCHEMA_VERSION) return;
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1, $2)", [LOCK_CLASS, LOCK_MIGRATE]);
    const version = await schemaVersion(client);
    if (version > SCHEMA_VERSION) throw newerSchemaError(version, shown);
    if (version < SCHEMA_VERSION) {
      await client.query(CREATE);
      await client.query(
        `INSERT INTO vast_gchat.schema_version (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`,
        [SCHEMA_VERSION],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
