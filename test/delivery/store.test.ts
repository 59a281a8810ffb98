import { mkdtempSync, rmSync } from "node:fs";
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
    store.markDelivered(first?.seq ?? -1, 2000);
    expect(store.nextPending()?.eventId).toBe("second");
  });

  it("records retries and dead letters", () => {
    const store = open();
    accept(store, "a");
    const event = store.nextPending();
    if (!event) throw new Error("no event");
    store.markRetry(event.seq, 5000, "Chat answered 500");
    expect(store.get("a")).toMatchObject({
      attempts: 1,
      nextAttemptAt: 5000,
      lastError: "Chat answered 500",
      state: "pending",
    });
    store.markDead(event.seq, "Chat answered 400");
    expect(store.get("a")).toMatchObject({
      attempts: 2,
      state: "dead",
      lastError: "Chat answered 400",
    });
    expect(store.nextPending()).toBeUndefined();
    expect(store.stats()).toMatchObject({ pending: 0, dead: 1 });
  });

  it("forgets delivered ids after the retention and beyond the count bound, never pending ones", () => {
    const store = open({ retentionMs: 10_000, maxDelivered: 2 });
    for (const id of ["old", "b", "c", "d", "pending"]) accept(store, id);
    for (const id of ["old", "b", "c", "d"]) {
      const event = store.nextPending();
      store.markDelivered(event?.seq ?? -1, id === "old" ? 1000 : 50_000);
    }
    expect(store.prune(20_000)).toBe(2); // "old" by age, then "b" over the bound of 2
    expect(store.get("old")).toBeUndefined();
    expect(store.get("b")).toBeUndefined();
    expect(store.get("d")?.state).toBe("delivered");
    expect(store.get("pending")?.state).toBe("pending");
    expect(accept(store, "old")).toEqual({ duplicate: false });
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
    const { writeFileSync, mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "nested"), { recursive: true });
    writeFileSync(
      path,
      "this is not sqlite, it is a text file that is long enough to have a header".repeat(20),
    );
    expect(() => EventStore.open(path)).toThrow(StoreUnavailableError);
  });
});
