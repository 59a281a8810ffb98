import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type EventStore, StoreUnavailableError } from "../../../src/delivery/event-store.js";
import { openEventStore } from "../../../src/delivery/open-store.js";
import {
  openPostgresStore,
  type PostgresStoreOptions,
  probePostgresStore,
} from "../../../src/delivery/postgres/postgres-store.js";
import { SCHEMA_VERSION } from "../../../src/delivery/postgres/schema.js";
import { parseStoreLocation } from "../../../src/delivery/store-location.js";
import { SKIP_POSTGRES } from "../../support/postgres-cluster.js";
import { usePostgresCluster } from "./backend.js";

/**
 * What only the PostgreSQL store must do: be shared. Two stores on one database stand for two
 * replicas: the signed id is unique across them, a route's outbox is handed to one of them at a
 * time, a dead one's claim expires and its noted post goes again whole; migrations run once when
 * replicas start together; a newer schema is refused; an unreachable server is a
 * StoreUnavailableError (never a hang, never the password), and the store recovers by itself.
 */
describe.skipIf(SKIP_POSTGRES)("the PostgreSQL store, shared by replicas", () => {
  const cluster = usePostgresCluster();
  let url: string;
  const opened: EventStore[] = [];

  const where = () => {
    const location = parseStoreLocation(url);
    if (location.kind !== "postgresql") throw new Error("not a PostgreSQL URL");
    return location;
  };
  async function replica(options: PostgresStoreOptions = {}): Promise<EventStore> {
    const store = await openPostgresStore(where(), options);
    opened.push(store);
    return store;
  }
  const accept = (store: EventStore, eventId: string, receivedAt = 1000) =>
    store.accept({ eventId, notifType: "low_credit", payload: "{}", receivedAt, routes: [] });

  beforeEach(async () => {
    if (!cluster().running) await cluster().start();
    url = await cluster().createDatabase();
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it("keeps an event once across replicas: a repeat that reaches the other one is a duplicate", async () => {
    const [a, b] = [await replica(), await replica()];
    expect(await accept(a, "e1")).toEqual({ duplicate: false });
    expect(await accept(b, "e1")).toEqual({ duplicate: true });
    // Both at once: exactly one keeps it.
    const answers = await Promise.all([accept(a, "e2"), accept(b, "e2"), accept(a, "e2")]);
    expect(answers.filter((answer) => !answer.duplicate)).toHaveLength(1);
    expect((await a.stats()).pending).toBe(2);
  });

  it("hands a route's outbox to one replica at a time", async () => {
    const [a, b] = [await replica(), await replica()];
    for (const id of ["x", "y", "z"]) await accept(a, id);
    expect((await a.nextPending("default"))?.eventId).toBe("x");
    // a holds the route now: b sees no work and gets nothing to post.
    expect(await b.nextPending("default")).toBeUndefined();
    expect(await b.dueBatch("default", 5000, 10)).toEqual([]);
    expect(await b.unfinishedPosting("default")).toBeUndefined();
    await expect(b.notePosting("default", [1])).rejects.toBeInstanceOf(StoreUnavailableError);
    const due = await a.dueBatch("default", 5000, 10);
    expect(due.map((event) => event.eventId)).toEqual(["x", "y", "z"]);
  });

  it("commits synchronously whatever the database's default: an acknowledgement means committed", async () => {
    // A database whose default would let a commit return before it is safe.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const database = new URL(url).pathname.slice(1);
      await admin.query(`ALTER DATABASE "${database}" SET synchronous_commit = off`);
      const store = await replica();
      // What the store's own session runs with, read inside its own insert by a trigger.
      await admin.query(`CREATE TABLE seen (setting text);
        CREATE FUNCTION note_setting() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN INSERT INTO seen VALUES (current_setting('synchronous_commit')); RETURN NEW; END $$;
        CREATE TRIGGER note_setting AFTER INSERT ON vast_gchat.events
          FOR EACH ROW EXECUTE FUNCTION note_setting();`);
      await accept(store, "safe");
      const { rows } = await admin.query<{ setting: string }>("SELECT setting FROM seen");
      expect(rows).toEqual([{ setting: "on" }]);
    } finally {
      await admin.end();
    }
  });

  it("lets different replicas drain different routes at once, each route by one of them", async () => {
    const [a, b] = [await replica(), await replica()];
    await a.accept({
      eventId: "both",
      notifType: "low_credit",
      payload: "{}",
      receivedAt: 1000,
      routes: ["billing", "ops"],
    });
    expect((await a.nextPending("billing"))?.route).toBe("billing");
    expect((await b.nextPending("ops"))?.route).toBe("ops");
    expect(await b.nextPending("billing")).toBeUndefined();
    expect(await a.nextPending("ops")).toBeUndefined();
    expect((await b.get("both"))?.deliveries.map((d) => [d.route, d.state])).toEqual([
      ["billing", "pending"],
      ["ops", "pending"],
    ]);
  });

  it("hands the routes of one Chat space to one replica together, so one replica keeps its pace", async () => {
    // x and y post to one space, z to another (serve names a shared space from the URLs).
    const sharedSpaces = new Map([
      ["x", "space:0123456789abcdef"],
      ["y", "space:0123456789abcdef"],
    ]);
    const [a, b] = [await replica({ sharedSpaces }), await replica({ sharedSpaces })];
    const route = (store: EventStore, id: string, to: string) =>
      store.accept({
        eventId: id,
        notifType: "low_credit",
        payload: "{}",
        receivedAt: 1000,
        routes: [to],
      });
    await route(a, "for-x", "x");
    await route(a, "for-y", "y");
    await route(a, "for-z", "z");
    expect((await a.nextPending("x"))?.eventId).toBe("for-x");
    // a holds the space now: b gets none of its routes, but the other space's route is free.
    expect(await b.nextPending("y")).toBeUndefined();
    expect(await b.dueBatch("y", 5000, 10)).toEqual([]);
    expect((await b.nextPending("z"))?.eventId).toBe("for-z");
    expect((await a.nextPending("y"))?.eventId).toBe("for-y");
    // a stops: its claims end (no post to pace from), and b takes the space.
    await a.close();
    expect((await b.nextPending("y"))?.eventId).toBe("for-y");
    expect((await b.nextPending("x"))?.eventId).toBe("for-x");
  });

  it("lets the next replica take a dead one's route once its claim expires, with exactly the post it had under way", async () => {
    const dead = await replica({ claimTtlMs: 300 });
    const next = await replica({ claimTtlMs: 300 });
    for (const id of ["a", "b", "c", "d"]) await accept(dead, id);
    const due = await dead.dueBatch("default", 5000, 3);
    await dead.notePosting(
      "default",
      due.map((event) => event.seq),
    );
    // The replica dies with its post under way: nothing recorded, its claim left to expire.
    expect(await next.nextPending("default")).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await next.nextPending("default"))?.eventId).toBe("a");
    const again = await next.unfinishedPosting("default");
    expect(again?.map((event) => event.eventId)).toEqual(["a", "b", "c"]);
    // Same events, same queuing: the worker derives the same requestId from them.
    expect(again?.map((event) => event.queuedAt)).toEqual(due.map((event) => event.queuedAt));
    // The dead one, were it to come back, finds the route taken and its note not its own.
    await expect(dead.notePosting("default", [due[0]?.seq ?? -1])).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await next.recordOutcome("default", {
      post: { at: 6000, status: 200, carried: 3 },
      delivered: again?.map((event) => event.seq) ?? [],
      clearPosting: true,
    });
    expect(await next.unfinishedPosting("default")).toBeUndefined();
    expect((await next.stats()).delivered).toBe(3);
  });

  it("lets a stopping replica's route go a second after its last post, not at the claim's end", async () => {
    const stopping = await replica({ claimTtlMs: 20_000 });
    const next = await replica({ claimTtlMs: 20_000 });
    for (const id of ["a", "b"]) await accept(stopping, id);
    const [first] = await stopping.dueBatch("default", 5000, 1);
    await stopping.notePosting("default", [first?.seq ?? -1]);
    await stopping.recordOutcome("default", {
      post: { at: 6000, status: 200, carried: 1 },
      delivered: [first?.seq ?? -1],
      clearPosting: true,
    });
    await stopping.close();
    // Not at once: the space's pace holds across the handover.
    expect(await next.nextPending("default")).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await next.nextPending("default"))?.eventId).toBe("b");
  });

  it("does not let a claimant's recorded outcome clear another replica's note", async () => {
    const a = await replica({ claimTtlMs: 200 });
    const b = await replica({ claimTtlMs: 200 });
    await accept(a, "e");
    const [event] = await a.dueBatch("default", 5000, 1);
    await a.notePosting("default", [event?.seq ?? -1]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await b.nextPending("default");
    await b.notePosting("default", [event?.seq ?? -1]);
    // a's answer comes back late: recorded, but b's note of its own post stays.
    await a.recordOutcome("default", {
      post: { at: 6000, status: 200, carried: 1 },
      delivered: [event?.seq ?? -1],
      clearPosting: true,
    });
    expect(await b.unfinishedPosting("default")).toEqual([]);
  });

  it("never lets a prune undo a replay on another connection, whichever locks the event first", async () => {
    const store = await replica({ retentionMs: 1000 });
    for (const id of ["kept", "gone"]) {
      await accept(store, id);
      const seq = (await store.get(id))?.seq as number;
      await store.recordOutcome("default", {
        post: { at: 2000, status: 200, carried: 1 },
        delivered: [seq],
        clearPosting: false,
      });
    }
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    /** Resolves once some session waits for a row lock: the call under test is blocked. */
    const blocked = async () => {
      for (;;) {
        const { rows } = await other.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted",
        );
        if ((rows[0]?.n ?? 0) > 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    try {
      // A replay (another process: `events replay`) has locked "kept" and requeued it, not yet
      // committed, when the prune starts: the prune waits, then sees it pending and keeps it.
      await other.query("BEGIN");
      await other.query("SELECT seq FROM vast_gchat.events WHERE event_id = 'kept' FOR SHARE");
      await other.query(
        `UPDATE vast_gchat.deliveries SET state = 'pending' WHERE seq =
           (SELECT seq FROM vast_gchat.events WHERE event_id = 'kept')`,
      );
      const pruning = store.prune(1_000_000);
      await blocked();
      await other.query("COMMIT");
      expect(await pruning).toBe(1);
      expect((await store.get("kept"))?.state).toBe("pending");
      expect(await store.get("gone")).toBeUndefined();

      // A prune (another replica) has locked "kept" when the replay starts: the replay waits,
      // then finds the event gone and says so, rather than reporting a requeue that vanished.
      await store.recordOutcome("default", {
        post: { at: 3000, status: 200, carried: 1 },
        delivered: [(await store.get("kept"))?.seq as number],
        clearPosting: false,
      });
      await other.query("BEGIN");
      await other.query("SELECT seq FROM vast_gchat.events WHERE event_id = 'kept' FOR UPDATE");
      const replaying = store.replay("kept", 5000);
      await blocked();
      await other.query("DELETE FROM vast_gchat.events WHERE event_id = 'kept'");
      await other.query("COMMIT");
      expect(await replaying).toBe(false);
      expect(await store.get("kept")).toBeUndefined();
    } finally {
      await other.end();
    }
  });

  it("migrates once when several replicas start together, and refuses a newer schema", async () => {
    const stores = await Promise.all(Array.from({ length: 5 }, () => replica()));
    expect(stores).toHaveLength(5);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const version = await client.query("SELECT version FROM vast_gchat.schema_version");
      expect(version.rows).toEqual([{ version: SCHEMA_VERSION }]);
      await client.query("UPDATE vast_gchat.schema_version SET version = $1", [SCHEMA_VERSION + 1]);
    } finally {
      await client.end();
    }
    const refusal = await openEventStore(url).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(StoreUnavailableError);
    expect((refusal as Error).message).toMatch(
      new RegExp(
        `written by a newer vast-gchat \\(schema ${SCHEMA_VERSION + 1}, this one knows ${SCHEMA_VERSION}\\); upgrade vast-gchat`,
      ),
    );
    expect((refusal as Error).message).not.toContain(cluster().password);
    expect(await probePostgresStore(where())).toMatch(/newer vast-gchat/);
  });

  it("answers StoreUnavailableError quickly while the server is down, and recovers by itself", async () => {
    const store = await replica();
    await accept(store, "before");
    await cluster().stop("fast");
    const started = Date.now();
    const refusal = await accept(store, "during").catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(String((refusal as Error).message)).not.toContain(cluster().password);
    expect(await probePostgresStore(where())).toMatch(/^cannot reach postgresql:\/\/.*:\*\*\*@/);
    await cluster().start();
    expect(await accept(store, "after")).toEqual({ duplicate: false });
    expect(await accept(store, "before")).toEqual({ duplicate: true });
    expect((await store.stats()).pending).toBe(2);
  });

  it("never shows the password of a URL the server refuses", async () => {
    const wrong = url.replace(cluster().password, "not-the-password-5e4d");
    const refusal = await openEventStore(wrong).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(StoreUnavailableError);
    const text = `${(refusal as Error).message}\n${((refusal as Error).cause as Error).stack}`;
    expect(text).toMatch(/28P01|password authentication failed/);
    expect(text).not.toContain("not-the-password-5e4d");
    expect(text).not.toContain(cluster().password);
  });
});
