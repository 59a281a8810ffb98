import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type EventStore, StoreUnavailableError } from "../../../src/delivery/event-store.js";
import { SCHEMA_VERSION } from "../../../src/delivery/sqlite/schema.js";
import {
  openSqliteStore,
  type SqliteStoreOptions,
} from "../../../src/delivery/sqlite/sqlite-store.js";
import { otherConnection, SQLITE_DRIVERS_HERE } from "./drivers.js";

/** What is SQLite's own: the file format and its versions, another process's lock; on each driver. */
let dir: string;
let path: string;
const opened: EventStore[] = [];

function accept(store: EventStore, eventId: string) {
  return store.accept({
    eventId,
    notifType: "low_credit",
    payload: "{}",
    receivedAt: 1000,
    routes: ["default"],
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-sqlite-"));
  path = join(dir, "nested", "events.db");
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(SQLITE_DRIVERS_HERE)("the SQLite event store on %s", (driver) => {
  async function open(options: SqliteStoreOptions = {}): Promise<EventStore> {
    const store = await openSqliteStore(path, { driver, ...options });
    opened.push(store);
    return store;
  }

  it("opens a version 1 file: adds what is new and keeps every event", async () => {
    mkdirSync(join(dir, "nested"), { recursive: true });
    const old = await otherConnection(path, driver);
    old.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, notif_type TEXT,
      payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
      received_at INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, last_error TEXT, delivered_at INTEGER);
      INSERT INTO events (event_id, payload, received_at, next_attempt_at) VALUES ('kept', '{}', 1234, 1234);
      PRAGMA user_version = 1;`);
    old.close();
    const store = await open();
    const kept = await store.get("kept");
    expect(kept).toMatchObject({ state: "pending", receivedAt: 1234, queuedAt: 1234 });
    // Its one delivery is the route default's now.
    expect(kept?.deliveries.map((delivery) => delivery.route)).toEqual(["default"]);
    const seq = kept?.seq ?? -1;
    await store.recordOutcome("default", {
      post: { at: 2000, status: 400, carried: 1 },
      dead: { seqs: [seq], error: "refused" },
      clearPosting: false,
    });
    expect(await store.attemptsOf(seq)).toHaveLength(1);
    expect(await store.retryDead(5000)).toBe(1);
    expect((await store.get("kept"))?.queuedAt).toBe(5000);
    // The note of the post under way is there too, one a route.
    await store.notePosting("default", [seq]);
    expect((await store.unfinishedPosting("default"))?.map((event) => event.eventId)).toEqual([
      "kept",
    ]);
  });

  it("refuses a file written by a newer vast-gchat", async () => {
    mkdirSync(join(dir, "nested"), { recursive: true });
    const newer = await otherConnection(path, driver);
    newer.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    newer.close();
    await expect(openSqliteStore(path, { driver })).rejects.toThrow(
      /written by a newer vast-gchat/,
    );
  });

  it("rejects with StoreUnavailableError when another process holds the write lock", async () => {
    const store = await open({ busyTimeoutMs: 50 });
    const other = await otherConnection(path, driver);
    try {
      other.exec("BEGIN EXCLUSIVE");
      await expect(accept(store, "a")).rejects.toThrow(StoreUnavailableError);
      await expect(accept(store, "a")).rejects.toThrow("event store unavailable (SQLITE_BUSY)");
      other.exec("ROLLBACK");
      expect(await accept(store, "a")).toEqual({ duplicate: false });
    } finally {
      other.close();
    }
  });

  it("refuses to open a file that is not a database", async () => {
    mkdirSync(join(dir, "nested"), { recursive: true });
    writeFileSync(
      path,
      "this is not sqlite, it is a text file that is long enough to have a header".repeat(20),
    );
    await expect(openSqliteStore(path, { driver })).rejects.toThrow(
      "event store unavailable (SQLITE_NOTADB)",
    );
  });

  it("rolls back the whole outcome when one of its writes fails", async () => {
    const store = await open();
    await accept(store, "a");
    await accept(store, "b");
    const seq = (await store.get("a"))?.seq ?? -1;
    const other = (await store.get("b"))?.seq ?? -1;
    // The second event's attempt is refused (a trigger stands in for whatever a disk may refuse).
    const db = await otherConnection(path, driver);
    db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON attempts WHEN NEW.seq = ${other}
             BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    db.close();
    await expect(
      store.recordOutcome("default", {
        post: { at: 2000, status: 200, carried: 2 },
        delivered: [seq, other],
        clearPosting: false,
      }),
    ).rejects.toThrow("event store unavailable (SQLITE_CONSTRAINT_TRIGGER)");
    expect(await store.get("a")).toMatchObject({ state: "pending", attempts: 0 });
    expect((await store.get("a"))?.deliveries[0]).toMatchObject({ state: "pending", attempts: 0 });
    expect(await store.attemptsOf(seq)).toEqual([]);
    // And the connection is usable: no transaction was left open.
    await store.recordOutcome("default", {
      post: { at: 2000, status: 200, carried: 1 },
      delivered: [seq],
      clearPosting: false,
    });
    expect(await store.attemptsOf(seq)).toEqual([
      { route: "default", at: 2000, outcome: "delivered", status: 200, error: null, carried: 1 },
    ]);
    expect((await store.get("a"))?.state).toBe("delivered");
  });
  describe("group commit: the events of one event-loop turn share a transaction", () => {
    it("answers each event, a repeat within the same turn included, and commits them all", async () => {
      const store = await open();
      const answers = await Promise.all(["a", "b", "a", "c"].map((id) => accept(store, id)));
      expect(answers).toEqual([
        { duplicate: false },
        { duplicate: false },
        { duplicate: true },
        { duplicate: false },
      ]);
      await store.close();
      const reopened = await open();
      for (const id of ["a", "b", "c"]) expect((await reopened.get(id))?.state).toBe("pending");
      expect((await reopened.stats()).pending).toBe(3);
    });

    it("refuses only the event a constraint refuses, not the others of its turn", async () => {
      const store = await open();
      await accept(store, "first");
      const db = await otherConnection(path, driver);
      db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = 'poison'
               BEGIN SELECT RAISE(ABORT, 'refused'); END`);
      db.close();
      const answers = await Promise.allSettled(["a", "poison", "b"].map((id) => accept(store, id)));
      expect(answers.map((answer) => answer.status)).toEqual([
        "fulfilled",
        "rejected",
        "fulfilled",
      ]);
      expect((answers[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
      expect(String((answers[1] as PromiseRejectedResult).reason)).toContain(
        "SQLITE_CONSTRAINT_TRIGGER",
      );
      expect(await store.get("a")).toBeDefined();
      expect(await store.get("b")).toBeDefined();
      expect(await store.get("poison")).toBeUndefined();
    });

    it("refuses the whole turn at once when another process holds the lock", async () => {
      const store = await open({ busyTimeoutMs: 50 });
      const other = await otherConnection(path, driver);
      try {
        other.exec("BEGIN EXCLUSIVE");
        const answers = await Promise.allSettled(["a", "b", "c"].map((id) => accept(store, id)));
        for (const answer of answers) {
          expect(answer.status).toBe("rejected");
          expect(String((answer as PromiseRejectedResult).reason)).toContain("SQLITE_BUSY");
        }
        other.exec("ROLLBACK");
      } finally {
        other.close();
      }
      // Nothing of the refused turn was kept: Vast.ai's retries are new events to the store.
      expect(await accept(store, "a")).toEqual({ duplicate: false });
    });

    it("commits what was accepted in the closing turn before the file is closed", async () => {
      const store = await open();
      const answer = accept(store, "late");
      await store.close();
      expect(await answer).toEqual({ duplicate: false });
      const reopened = await open();
      expect(await reopened.get("late")).toBeDefined();
    });
  });
});
