import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventStore, PostRecord, StoreOptions } from "../../src/delivery/event-store.js";
import { openEventStore } from "../../src/delivery/open-store.js";
import { STORE_BACKENDS, usePostgresCluster } from "./postgres/backend.js";
import { useSqliteDriver } from "./sqlite/drivers.js";

/**
 * The EventStore contract, through the interface only: what any database behind it must do.
 * (SQLite's own matters, its file format, locks and checkpoints, are in sqlite/; PostgreSQL's,
 * replicas and claims, in postgres/.) Once on each SQLite driver this Node has, chosen as
 * VAST_GCHAT_SQLITE_DRIVER would, and once on PostgreSQL (a new database for each test).
 */
let dir: string;
/** A SQLite file's path, or a PostgreSQL database's URL. */
let path: string;
const opened: EventStore[] = [];

async function open(options: StoreOptions = {}): Promise<EventStore> {
  const store = await openEventStore(path, options);
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

const delivered = (store: EventStore, seqs: number[], post: PostRecord) =>
  store.recordOutcome({ post, delivered: seqs, clearPosting: false });
const retry = (store: EventStore, seqs: number[], post: PostRecord, at: number, error: string) =>
  store.recordOutcome({ post, retry: { seqs, nextAttemptAt: at, error }, clearPosting: false });
const dead = (store: EventStore, seqs: number[], post: PostRecord, error: string) =>
  store.recordOutcome({ post, dead: { seqs, error }, clearPosting: false });

async function seqOf(store: EventStore, eventId: string): Promise<number> {
  return (await store.get(eventId))?.seq ?? -1;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-store-"));
  path = join(dir, "nested", "events.db");
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(STORE_BACKENDS)("EventStore on %s", (backend) => {
  if (backend === "postgresql") {
    const cluster = usePostgresCluster();
    beforeEach(async () => {
      path = await cluster().createDatabase();
    });
  } else {
    useSqliteDriver(backend);
  }

  it("keeps an event once and recognises its id again, also after reopening", async () => {
    const store = await open();
    expect(await accept(store, "a")).toEqual({ duplicate: false });
    expect(await accept(store, "a")).toEqual({ duplicate: true });
    await store.close();
    const reopened = await open();
    expect(await accept(reopened, "a")).toEqual({ duplicate: true });
    expect((await reopened.stats()).pending).toBe(1);
  });

  it("hands out pending events in order of arrival", async () => {
    const store = await open();
    for (const id of ["first", "second", "third"]) await accept(store, id);
    const first = await store.nextPending();
    expect(first?.eventId).toBe("first");
    await delivered(store, [first?.seq ?? -1], { at: 2000, status: 200, carried: 1 });
    expect((await store.nextPending())?.eventId).toBe("second");
  });

  it("records retries and dead letters", async () => {
    const store = await open();
    await accept(store, "a");
    const event = await store.nextPending();
    if (!event) throw new Error("no event");
    await retry(
      store,
      [event.seq],
      { at: 1500, status: 500, carried: 1 },
      5000,
      "Chat answered 500",
    );
    expect(await store.get("a")).toMatchObject({
      attempts: 1,
      nextAttemptAt: 5000,
      lastError: "Chat answered 500",
      state: "pending",
    });
    await dead(store, [event.seq], { at: 6000, status: 400, carried: 1 }, "Chat answered 400");
    expect(await store.get("a")).toMatchObject({
      attempts: 2,
      state: "dead",
      lastError: "Chat answered 400",
    });
    expect(await store.nextPending()).toBeUndefined();
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 1 });
    expect(await store.attemptsOf(event.seq)).toEqual([
      { at: 1500, outcome: "retry", status: 500, error: "Chat answered 500", carried: 1 },
      { at: 6000, outcome: "dead", status: 400, error: "Chat answered 400", carried: 1 },
    ]);
  });

  it("records an outcome whole: dead letters, retries and the note of the post together", async () => {
    const store = await open();
    for (const id of ["old", "new"]) await accept(store, id);
    const [old, young] = [await seqOf(store, "old"), await seqOf(store, "new")];
    await store.notePosting([old, young]);
    await store.recordOutcome({
      post: { at: 2000, status: 503, carried: 2 },
      dead: { seqs: [old], error: "gave up" },
      retry: { seqs: [young], nextAttemptAt: 9000, error: "Chat answered 503" },
      clearPosting: true,
    });
    expect(await store.get("old")).toMatchObject({ state: "dead", lastError: "gave up" });
    expect(await store.get("new")).toMatchObject({ state: "pending", nextAttemptAt: 9000 });
    expect(await store.attemptsOf(young)).toEqual([
      { at: 2000, outcome: "retry", status: 503, error: "Chat answered 503", carried: 2 },
    ]);
    expect(await store.unfinishedPosting()).toBeUndefined();
  });

  it("forgets delivered ids after the retention and beyond the count bound, never pending ones", async () => {
    const store = await open({ retentionMs: 10_000, maxDelivered: 2 });
    for (const id of ["old", "b", "c", "d", "pending"]) await accept(store, id);
    for (const id of ["old", "b", "c", "d"]) {
      const event = await store.nextPending();
      await delivered(store, [event?.seq ?? -1], { at: id === "old" ? 1000 : 50_000, carried: 1 });
    }
    expect(await store.prune(20_000)).toBe(2); // "old" by age, then "b" over the bound of 2
    expect(await store.get("old")).toBeUndefined();
    expect(await store.get("b")).toBeUndefined();
    expect((await store.get("d"))?.state).toBe("delivered");
    expect((await store.get("pending"))?.state).toBe("pending");
    expect(await accept(store, "old")).toEqual({ duplicate: false });
  });

  it("hands out due events in order, lists them, replays one and requeues the dead", async () => {
    const store = await open();
    for (const id of ["a", "b", "c"]) await accept(store, id);
    expect((await store.dueBatch(1000, 2)).map((e) => e.eventId)).toEqual(["a", "b"]);
    const [a, b] = await store.dueBatch(1000, 2);
    await delivered(store, [a?.seq ?? -1, b?.seq ?? -1], { at: 2000, status: 200, carried: 2 });
    expect(await store.attemptsOf(a?.seq ?? -1)).toEqual([
      { at: 2000, outcome: "delivered", status: 200, error: null, carried: 2 },
    ]);
    expect((await store.list({ state: "delivered" })).map((e) => e.eventId)).toEqual(["b", "a"]);
    expect(await store.replay("a", 3000)).toBe(true);
    expect(await store.replay("nope", 3000)).toBe(false);
    expect(await store.get("a")).toMatchObject({
      state: "pending",
      deliveredAt: null,
      nextAttemptAt: 3000,
    });
    await dead(store, [await seqOf(store, "c")], { at: 2500, status: 400, carried: 1 }, "refused");
    expect(await store.retryDead(4000)).toBe(1);
    expect(await store.get("c")).toMatchObject({ state: "pending", nextAttemptAt: 4000 });
  });

  it("notes the post under way until its outcome is recorded, and only its pending events", async () => {
    const store = await open();
    for (const id of ["a", "b", "c"]) await accept(store, id);
    expect(await store.unfinishedPosting()).toBeUndefined();
    const seqs = [await seqOf(store, "a"), await seqOf(store, "b"), await seqOf(store, "c")];
    await store.notePosting(seqs);
    await delivered(store, [seqs[1] ?? -1], { at: 2000, status: 200, carried: 1 });
    expect((await store.unfinishedPosting())?.map((event) => event.eventId)).toEqual(["a", "c"]);
    await store.clearPosting();
    expect(await store.unfinishedPosting()).toBeUndefined();
  });

  it("reports the oldest pending event, and the queue", async () => {
    const store = await open();
    await accept(store, "a", 1000);
    await accept(store, "b", 3000);
    await dead(store, [await seqOf(store, "a")], { at: 4000, carried: 1 }, "refused");
    expect(await store.stats()).toEqual({
      pending: 1,
      delivered: 0,
      dead: 1,
      oldestPendingAt: 3000,
    });
    expect(await store.queue()).toEqual({ pending: 1, dead: 1, oldestPendingAt: 3000 });
  });

  it("finds the newest event of a type since a time", async () => {
    const store = await open();
    await accept(store, "early", 1000);
    await accept(store, "late", 5000);
    expect((await store.latestOfType("low_credit", 2000))?.eventId).toBe("late");
    expect(await store.latestOfType("low_credit", 6000)).toBeUndefined();
    expect(await store.latestOfType("outbid", 0)).toBeUndefined();
  });

  it("closes twice without harm", async () => {
    const store = await open();
    await Promise.all([store.close(), store.close()]);
  });
});
