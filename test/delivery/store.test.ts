import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventStore, StoreUnavailableError } from "../../src/delivery/store.js";

let dir: string;
let path: string;
const opened: EventStore[] = [];

function open(options = {}): EventStore {
  const store = EventStore.open(path, options);
  opened.push(store);
  return store;
}

function accept(store: EventStore, eventId: string, receivedAt = 1000) {
  return store.accept({
    eventId,
    notifType: "low_credit",
    payload: `{"event_id":"${eventId}"}`,
    receivedAt,
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-store-"));
  path = join(dir, "nested", "events.db");
});

afterEach(() => {
  for (const store of opened.splice(0)) store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("EventStore", () => {
  it("keeps an event once and recognises its id again, also after reopening", () => {
    const store = open();
    expect(accept(store, "a")).toEqual({ duplicate: false });
    expect(accept(store, "a")).toEqual({ duplicate: true });
    store.close();
    const reopened = open();
    expect(accept(reopened, "a")).toEqual({ duplicate: true });
    expect(reopened.stats().pending).toBe(1);
  });

  it("hands out pending events in order of arrival", () => {
    const store = open();
    for (const id of ["first", "second", "third"]) accept(store, id);
    const first = store.nextPending();
    expect(first?.eventId).toBe("first");
    store.markDelivered([first?.seq ?? -1], { at: 2000, status: 200, carried: 1 });
    expect(store.nextPending()?.eventId).toBe("second");
  });

  it("records retries and dead letters", () => {
    const store = open();
    accept(store, "a");
    const event = store.nextPending();
    if (!event) throw new Error("no event");
    store.markRetry([event.seq], { at: 1500, status: 500, carried: 1 }, 5000, "Chat answered 500");
    expect(store.get("a")).toMatchObject({
      attempts: 1,
      nextAttemptAt: 5000,
      lastError: "Chat answered 500",
      state: "pending",
    });
    store.markDead([event.seq], { at: 6000, status: 400, carried: 1 }, "Chat answered 400");
    expect(store.get("a")).toMatchObject({
      attempts: 2,
      state: "dead",
      lastError: "Chat answered 400",
    });
    expect(store.nextPending()).toBeUndefined();
    expect(store.stats()).toMatchObject({ pending: 0, dead: 1 });
    expect(store.attemptsOf(event.seq)).toEqual([
      { at: 1500, outcome: "retry", status: 500, error: "Chat answered 500", carried: 1 },
      { at: 6000, outcome: "dead", status: 400, error: "Chat answered 400", carried: 1 },
    ]);
  });

  it("forgets delivered ids after the retention and beyond the count bound, never pending ones", () => {
    const store = open({ retentionMs: 10_000, maxDelivered: 2 });
    for (const id of ["old", "b", "c", "d", "pending"]) accept(store, id);
    for (const id of ["old", "b", "c", "d"]) {
      const event = store.nextPending();
      store.markDelivered([event?.seq ?? -1], { at: id === "old" ? 1000 : 50_000, carried: 1 });
    }
    expect(store.prune(20_000)).toBe(2); // "old" by age, then "b" over the bound of 2
    expect(store.get("old")).toBeUndefined();
    expect(store.get("b")).toBeUndefined();
    expect(store.get("d")?.state).toBe("delivered");
    expect(store.get("pending")?.state).toBe("pending");
    expect(accept(store, "old")).toEqual({ duplicate: false });
  });

  it("hands out due events in order, lists them, replays one and requeues the dead", () => {
    const store = open();
    for (const id of ["a", "b", "c"]) accept(store, id);
    expect(store.dueBatch(1000, 2).map((e) => e.eventId)).toEqual(["a", "b"]);
    const [a, b] = store.dueBatch(1000, 2);
    store.markDelivered([a?.seq ?? -1, b?.seq ?? -1], { at: 2000, status: 200, carried: 2 });
    expect(store.attemptsOf(a?.seq ?? -1)).toEqual([
      { at: 2000, outcome: "delivered", status: 200, error: null, carried: 2 },
    ]);
    expect(store.list({ state: "delivered" }).map((e) => e.eventId)).toEqual(["b", "a"]);
    expect(store.replay("a", 3000)).toBe(true);
    expect(store.replay("nope", 3000)).toBe(false);
    expect(store.get("a")).toMatchObject({
      state: "pending",
      deliveredAt: null,
      nextAttemptAt: 3000,
    });
    const c = store.get("c");
    store.markDead([c?.seq ?? -1], { at: 2500, status: 400, carried: 1 }, "refused");
    expect(store.retryDead(4000)).toBe(1);
    expect(store.get("c")).toMatchObject({ state: "pending", nextAttemptAt: 4000 });
  });

  it("opens a version 1 file: adds what is new and keeps every event", () => {
    mkdirSync(join(dir, "nested"), { recursive: true });
    const old = new Database(path);
    old.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, notif_type TEXT,
      payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
      received_at INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, last_error TEXT, delivered_at INTEGER);
      INSERT INTO events (event_id, payload, received_at, next_attempt_at) VALUES ('kept', '{}', 1234, 1234);
      PRAGMA user_version = 1;`);
    old.close();
    const store = open();
    expect(store.get("kept")).toMatchObject({ state: "pending", receivedAt: 1234, queuedAt: 1234 });
    store.markDead(
      [store.get("kept")?.seq ?? -1],
      { at: 2000, status: 400, carried: 1 },
      "refused",
    );
    expect(store.attemptsOf(store.get("kept")?.seq ?? -1)).toHaveLength(1);
    expect(store.retryDead(5000)).toBe(1);
    expect(store.get("kept")?.queuedAt).toBe(5000);
    // Version 3's note of the post under way is there too.
    store.notePosting([store.get("kept")?.seq ?? -1]);
    expect(store.unfinishedPosting()?.map((event) => event.eventId)).toEqual(["kept"]);
  });

  it("notes the post under way until its outcome is recorded, and only its pending events", () => {
    const store = open();
    for (const id of ["a", "b", "c"]) accept(store, id);
    expect(store.unfinishedPosting()).toBeUndefined();
    const seqs = ["a", "b", "c"].map((id) => store.get(id)?.seq ?? -1);
    store.notePosting(seqs);
    store.markDelivered([seqs[1] ?? -1], { at: 2000, status: 200, carried: 1 });
    expect(store.unfinishedPosting()?.map((event) => event.eventId)).toEqual(["a", "c"]);
    store.clearPosting();
    expect(store.unfinishedPosting()).toBeUndefined();
  });

  it("reports the oldest pending event", () => {
    const store = open();
    accept(store, "a", 1000);
    accept(store, "b", 3000);
    expect(store.stats()).toEqual({ pending: 2, delivered: 0, dead: 0, oldestPendingAt: 1000 });
  });

  it("throws StoreUnavailableError when another process holds the write lock", () => {
    const store = open({ busyTimeoutMs: 50 });
    const other = new Database(path);
    try {
      other.exec("BEGIN EXCLUSIVE");
      expect(() => accept(store, "a")).toThrow(StoreUnavailableError);
      other.exec("ROLLBACK");
      expect(accept(store, "a")).toEqual({ duplicate: false });
    } finally {
      other.close();
    }
  });

  it("refuses to open a file that is not a database", async () => {
    const { writeFileSync } = await import("node:fs");
    mkdirSync(join(dir, "nested"), { recursive: true });
    writeFileSync(
      path,
      "this is not sqlite, it is a text file that is long enough to have a header".repeat(20),
    );
    expect(() => EventStore.open(path)).toThrow(StoreUnavailableError);
  });
});
