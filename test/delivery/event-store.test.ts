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

const D = "default";

function accept(store: EventStore, eventId: string, receivedAt = 1000, routes = [D]) {
  return store.accept({
    eventId,
    notifType: "low_credit",
    payload: `{"event_id":"${eventId}"}`,
    receivedAt,
    routes,
  });
}

const delivered = (store: EventStore, seqs: number[], post: PostRecord, route = D) =>
  store.recordOutcome(route, { post, delivered: seqs, clearPosting: false });
const retry = (
  store: EventStore,
  seqs: number[],
  post: PostRecord,
  at: number,
  error: string,
  route = D,
) =>
  store.recordOutcome(route, {
    post,
    retry: { seqs, nextAttemptAt: at, error },
    clearPosting: false,
  });
const dead = (store: EventStore, seqs: number[], post: PostRecord, error: string, route = D) =>
  store.recordOutcome(route, { post, dead: { seqs, error }, clearPosting: false });

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
    const first = await store.nextPending(D);
    expect(first?.eventId).toBe("first");
    await delivered(store, [first?.seq ?? -1], { at: 2000, status: 200, carried: 1 });
    expect((await store.nextPending(D))?.eventId).toBe("second");
  });

  it("records retries and dead letters", async () => {
    const store = await open();
    await accept(store, "a");
    const event = await store.nextPending(D);
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
    expect(await store.nextPending(D)).toBeUndefined();
    expect(await store.stats()).toMatchObject({ pending: 0, dead: 1 });
    expect(await store.attemptsOf(event.seq)).toEqual([
      { route: D, at: 1500, outcome: "retry", status: 500, error: "Chat answered 500", carried: 1 },
      { route: D, at: 6000, outcome: "dead", status: 400, error: "Chat answered 400", carried: 1 },
    ]);
  });

  it("records an outcome whole: dead letters, retries and the note of the post together", async () => {
    const store = await open();
    for (const id of ["old", "new"]) await accept(store, id);
    const [old, young] = [await seqOf(store, "old"), await seqOf(store, "new")];
    await store.notePosting(D, [old, young]);
    await store.recordOutcome(D, {
      post: { at: 2000, status: 503, carried: 2 },
      dead: { seqs: [old], error: "gave up" },
      retry: { seqs: [young], nextAttemptAt: 9000, error: "Chat answered 503" },
      clearPosting: true,
    });
    expect(await store.get("old")).toMatchObject({ state: "dead", lastError: "gave up" });
    expect(await store.get("new")).toMatchObject({ state: "pending", nextAttemptAt: 9000 });
    expect(await store.attemptsOf(young)).toEqual([
      { route: D, at: 2000, outcome: "retry", status: 503, error: "Chat answered 503", carried: 2 },
    ]);
    expect(await store.unfinishedPosting(D)).toBeUndefined();
  });

  it("forgets delivered ids after the retention and beyond the count bound, never pending ones", async () => {
    const store = await open({ retentionMs: 10_000, maxDelivered: 2 });
    for (const id of ["old", "b", "c", "d", "pending"]) await accept(store, id);
    for (const id of ["old", "b", "c", "d"]) {
      const event = await store.nextPending(D);
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
    expect((await store.dueBatch(D, 1000, 2)).map((e) => e.eventId)).toEqual(["a", "b"]);
    const [a, b] = await store.dueBatch(D, 1000, 2);
    await delivered(store, [a?.seq ?? -1, b?.seq ?? -1], { at: 2000, status: 200, carried: 2 });
    expect(await store.attemptsOf(a?.seq ?? -1)).toEqual([
      { route: D, at: 2000, outcome: "delivered", status: 200, error: null, carried: 2 },
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
    expect(await store.unfinishedPosting(D)).toBeUndefined();
    const seqs = [await seqOf(store, "a"), await seqOf(store, "b"), await seqOf(store, "c")];
    await store.notePosting(D, seqs);
    await delivered(store, [seqs[1] ?? -1], { at: 2000, status: 200, carried: 1 });
    expect((await store.unfinishedPosting(D))?.map((event) => event.eventId)).toEqual(["a", "c"]);
    await store.clearPosting(D);
    expect(await store.unfinishedPosting(D)).toBeUndefined();
  });

  it("reports the oldest pending event, and the queue", async () => {
    const store = await open();
    await accept(store, "a", 1000);
    await accept(store, "b", 3000);
    await dead(store, [await seqOf(store, "a")], { at: 4000, carried: 1 }, "refused");
    const counts = { pending: 1, delivered: 0, dead: 1, oldestPendingAt: 3000 };
    expect(await store.stats()).toEqual({ ...counts, routes: { default: counts } });
    const queue = { pending: 1, dead: 1, oldestPendingAt: 3000 };
    expect(await store.queue()).toEqual({ ...queue, routes: { default: queue } });
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

  describe("with routes: one delivery per (event, route)", () => {
    const OPS = "ops";
    const BILLING = "billing";
    const at = (ms: number, status?: number): PostRecord => ({ at: ms, status, carried: 1 });

    it("keeps an event once, with a pending delivery for each of its routes, in one go", async () => {
      const store = await open();
      expect(await accept(store, "a", 1000, [OPS, BILLING])).toEqual({ duplicate: false });
      // A retry of the delivery is the same event: its routes are not added to, whatever they are.
      expect(await accept(store, "a", 1000, [D])).toEqual({ duplicate: true });
      const event = await store.get("a");
      expect(event?.state).toBe("pending");
      expect(event?.deliveries.map(({ route, state }) => [route, state])).toEqual([
        [BILLING, "pending"],
        [OPS, "pending"],
      ]);
      // No route named: the route default.
      await accept(store, "b", 1000, []);
      expect((await store.get("b"))?.deliveries.map((d) => d.route)).toEqual([D]);
    });

    it("gives each route only its own deliveries: order, due time and the note of its post", async () => {
      const store = await open();
      await accept(store, "a", 1000, [OPS, BILLING]);
      await accept(store, "b", 1001, [OPS]);
      await accept(store, "c", 1002, [BILLING]);
      const [a, b, c] = [await seqOf(store, "a"), await seqOf(store, "b"), await seqOf(store, "c")];
      expect((await store.nextPending(OPS))?.eventId).toBe("a");
      expect((await store.dueBatch(BILLING, 5000, 10)).map((e) => e.eventId)).toEqual(["a", "c"]);
      expect(await store.nextPending(D)).toBeUndefined();

      // Ops's Chat fails: its copy of a waits until 9000; billing's is due now.
      await retry(store, [a], at(1500, 429), 9000, "Chat answered 429", OPS);
      expect((await store.nextPending(OPS))?.nextAttemptAt).toBe(9000);
      expect((await store.dueBatch(OPS, 5000, 10)).map((e) => e.eventId)).toEqual(["b"]);
      expect((await store.dueBatch(BILLING, 5000, 10)).map((e) => e.route)).toEqual([
        BILLING,
        BILLING,
      ]);

      await store.notePosting(OPS, [a, b]);
      await store.notePosting(BILLING, [a, c]);
      expect((await store.unfinishedPosting(OPS))?.map((e) => e.eventId)).toEqual(["a", "b"]);
      await store.recordOutcome(BILLING, {
        post: { at: 2000, status: 200, carried: 2 },
        delivered: [a, c],
        clearPosting: true,
      });
      expect(await store.unfinishedPosting(BILLING)).toBeUndefined();
      expect((await store.unfinishedPosting(OPS))?.map((e) => e.eventId)).toEqual(["a", "b"]);
      expect((await store.get("c"))?.state).toBe("delivered");
      // a is delivered to billing, not to ops.
      expect(await store.get("a")).toMatchObject({
        state: "pending",
        attempts: 2,
        lastError: "Chat answered 429",
        deliveredAt: null,
      });
      expect(await store.attemptsOf(a)).toEqual([
        {
          route: OPS,
          at: 1500,
          outcome: "retry",
          status: 429,
          error: "Chat answered 429",
          carried: 1,
        },
        { route: BILLING, at: 2000, outcome: "delivered", status: 200, error: null, carried: 2 },
      ]);
    });

    it("sums an event's deliveries: pending while one is, dead while one is, else delivered", async () => {
      const store = await open();
      await accept(store, "a", 1000, [OPS, BILLING]);
      const a = await seqOf(store, "a");
      await dead(store, [a], at(2000, 404), "Chat answered 404", OPS);
      expect((await store.get("a"))?.state).toBe("pending");
      await delivered(store, [a], at(3000, 200), BILLING);
      expect(await store.get("a")).toMatchObject({
        state: "dead",
        lastError: "Chat answered 404",
        deliveredAt: null,
        deliveries: [
          { route: BILLING, state: "delivered", attempts: 1, deliveredAt: 3000, lastError: null },
          { route: OPS, state: "dead", attempts: 1, deliveredAt: null },
        ],
      });
      expect((await store.list({ state: "dead" })).map((e) => [e.eventId, e.route])).toEqual([
        ["a", OPS],
      ]);
      // Only ops's dead letter goes again, and once it is delivered, the event is.
      expect(await store.retryDead(4000, BILLING)).toBe(0);
      expect(await store.retryDead(4000, OPS)).toBe(1);
      expect(await store.get("a")).toMatchObject({ state: "pending", nextAttemptAt: 4000 });
      await delivered(store, [a], at(5000, 200), OPS);
      expect(await store.get("a")).toMatchObject({
        state: "delivered",
        deliveredAt: 5000,
        attempts: 3,
        lastError: null,
      });
    });

    it("replays every route of an event, or one, also a route it did not go to", async () => {
      const store = await open();
      await accept(store, "a", 1000, [OPS, BILLING]);
      await accept(store, "b", 1000, [OPS]);
      const [a, b] = [await seqOf(store, "a"), await seqOf(store, "b")];
      await delivered(store, [a], at(2000, 200), OPS);
      await delivered(store, [a], at(2000, 200), BILLING);
      await delivered(store, [b], at(2000, 200), OPS);

      expect(await store.replay("a", 3000)).toBe(true);
      expect((await store.get("a"))?.deliveries.map((d) => [d.route, d.state, d.queuedAt])).toEqual(
        [
          [BILLING, "pending", 3000],
          [OPS, "pending", 3000],
        ],
      );
      expect(await store.replay("b", 3000, { route: BILLING })).toBe(true);
      expect((await store.get("b"))?.deliveries.map((d) => [d.route, d.state])).toEqual([
        [BILLING, "pending"],
        [OPS, "delivered"],
      ]);
      expect((await store.dueBatch(BILLING, 3000, 10)).map((e) => e.eventId)).toEqual(["a", "b"]);
      expect(await store.replay("nope", 3000, { route: OPS })).toBe(false);
    });

    it("counts each route's deliveries, and the queue of each", async () => {
      const store = await open();
      await accept(store, "a", 1000, [OPS, BILLING]);
      await accept(store, "b", 2000, [OPS]);
      await accept(store, "c", 3000, [BILLING]);
      await dead(store, [await seqOf(store, "a")], at(4000, 404), "gone", OPS);
      await delivered(store, [await seqOf(store, "a")], at(4000, 200), BILLING);
      const stats = await store.stats();
      expect(stats).toEqual({
        pending: 2,
        delivered: 1,
        dead: 1,
        oldestPendingAt: 2000,
        routes: {
          [OPS]: { pending: 1, delivered: 0, dead: 1, oldestPendingAt: 2000 },
          [BILLING]: { pending: 1, delivered: 1, dead: 0, oldestPendingAt: 3000 },
        },
      });
      expect(await store.queue()).toEqual({
        pending: 2,
        dead: 1,
        oldestPendingAt: 2000,
        routes: {
          [OPS]: { pending: 1, dead: 1, oldestPendingAt: 2000 },
          [BILLING]: { pending: 1, dead: 0, oldestPendingAt: 3000 },
        },
      });
      expect((await store.list({ route: BILLING })).map((e) => e.eventId)).toEqual(["c", "a"]);
      expect((await store.list()).map((e) => `${e.eventId}:${e.route}`)).toEqual([
        "c:billing",
        "b:ops",
        "a:billing",
        "a:ops",
      ]);
    });

    it("forgets an event only once it is delivered to every route", async () => {
      const store = await open({ retentionMs: 10_000 });
      await accept(store, "a", 1000, [OPS, BILLING]);
      const a = await seqOf(store, "a");
      await delivered(store, [a], at(2000, 200), OPS);
      expect(await store.prune(1_000_000)).toBe(0);
      await dead(store, [a], at(3000, 400), "refused", BILLING);
      expect(await store.prune(1_000_000)).toBe(0);
      await store.retryDead(4000);
      await delivered(store, [a], at(5000, 200), BILLING);
      expect(await store.prune(14_000)).toBe(0);
      expect(await store.prune(16_000)).toBe(1);
      expect(await store.get("a")).toBeUndefined();
      expect(await store.attemptsOf(a)).toEqual([]);
    });

    it("gives up a removed route: its undelivered deliveries, its note, and events left with none", async () => {
      const store = await open();
      await accept(store, "a", 1000, [OPS, BILLING]);
      await accept(store, "b", 1000, [OPS]);
      await accept(store, "c", 1000, [OPS]);
      const [a, b, c] = [await seqOf(store, "a"), await seqOf(store, "b"), await seqOf(store, "c")];
      await delivered(store, [a], at(2000, 200), BILLING);
      await delivered(store, [c], at(2000, 200), OPS);
      await store.notePosting(OPS, [a, b]);
      expect(await store.forgetRoute(OPS)).toBe(2);
      expect(await store.unfinishedPosting(OPS)).toBeUndefined();
      // a went to billing too: delivered there, so delivered. b went nowhere else: forgotten, so a
      // new delivery of it would be routed afresh. c's delivery to ops was made: kept.
      expect(await store.get("a")).toMatchObject({ state: "delivered", deliveredAt: 2000 });
      expect(await store.get("b")).toBeUndefined();
      expect((await store.get("c"))?.deliveries.map((d) => [d.route, d.state])).toEqual([
        [OPS, "delivered"],
      ]);
      expect(await store.queue()).toMatchObject({ pending: 0, routes: {} });
      // A post that was under way for ops when it was removed records nothing, and fails nothing.
      await store.recordOutcome(OPS, {
        post: { at: 3000, status: 200, carried: 2 },
        delivered: [a, b],
        clearPosting: true,
      });
      expect(await store.attemptsOf(a)).toHaveLength(1);
      expect(await accept(store, "b", 4000, [D])).toEqual({ duplicate: false });
    });
  });
});
