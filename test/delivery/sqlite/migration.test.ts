import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningAdapter, startAdapter } from "../../../src/adapter/adapter.js";
import { openEventStore } from "../../../src/delivery/open-store.js";
import { SCHEMA_VERSION } from "../../../src/delivery/sqlite/schema.js";
import { FakeChat } from "../../support/fake-chat.js";
import { otherConnection, SQLITE_DRIVERS_HERE, useSqliteDriver } from "./drivers.js";

/**
 * The upgrade from the release before routes: a store file that release made (schema 3, its own
 * DDL in test/fixtures/store-v3.sql, with events in every state and the note of a post cut short by
 * a crash) opened by this one. Every event becomes a delivery of the route `default` as it stood;
 * the pending ones are delivered to `default`, the noted post first and under the requestId that
 * release sent it with, so Chat can drop it if it got through before the crash.
 */
const FIXTURE = new URL("../../fixtures/store-v3.sql", import.meta.url);

let dir: string;
let path: string;
let chat: FakeChat | undefined;
let adapter: RunningAdapter | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-migration-"));
  path = join(dir, "events.db");
});

afterEach(async () => {
  await adapter?.close(500);
  adapter = undefined;
  await chat?.close();
  chat = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** What the release before routes derived a post's requestId from (its worker.ts). */
function v3RequestId(events: Array<[eventId: string, queuedAt: number]>): string {
  const ids = events.map(([eventId, queuedAt]) => `${eventId}@${queuedAt}`).join(",");
  return `vast-${createHash("sha256").update(ids).digest("hex").slice(0, 40)}`;
}

describe.each(SQLITE_DRIVERS_HERE)("a store made by the release before routes, on %s", (driver) => {
  useSqliteDriver(driver);

  beforeEach(async () => {
    const old = await otherConnection(path, driver);
    old.exec(readFileSync(FIXTURE, "utf8"));
    old.close();
  });

  it("becomes version 4 with every event a delivery of default, as it stood", async () => {
    const store = await openEventStore(path);
    try {
      expect(await store.get("v3-delivered")).toMatchObject({
        state: "delivered",
        attempts: 2,
        deliveredAt: 1700000000700,
        deliveries: [
          { route: "default", state: "delivered", attempts: 2, deliveredAt: 1700000000700 },
        ],
      });
      expect(await store.get("v3-dead")).toMatchObject({
        state: "dead",
        deliveries: [
          {
            route: "default",
            state: "dead",
            lastError: "Chat answered 404 (NOT_FOUND: Requested entity was not found.)",
          },
        ],
      });
      expect(await store.get("v3-pending-1")).toMatchObject({
        state: "pending",
        deliveries: [
          {
            route: "default",
            state: "pending",
            attempts: 1,
            queuedAt: 1700000002000,
            nextAttemptAt: 1700000003000,
            lastError: "Chat timed out",
          },
        ],
      });
      // Every attempt was the route default's, and the queue is default's.
      expect(
        (await store.attemptsOf(1)).map((attempt) => [attempt.route, attempt.outcome]),
      ).toEqual([
        ["default", "retry"],
        ["default", "delivered"],
      ]);
      expect(await store.stats()).toMatchObject({
        pending: 2,
        delivered: 1,
        dead: 1,
        routes: { default: { pending: 2, delivered: 1, dead: 1 } },
      });
      // The post that release had under way is default's note now.
      expect((await store.unfinishedPosting("default"))?.map((event) => event.eventId)).toEqual([
        "v3-pending-1",
        "v3-pending-2",
      ]);
      // Dead letters wait for retry-dead, in default.
      expect(await store.retryDead(Date.now(), "default")).toBe(1);
    } finally {
      await store.close();
    }
    const db = await otherConnection(path, driver);
    try {
      const version = db.prepare<[], { user_version: number }>("PRAGMA user_version").get();
      expect(version?.user_version).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBe(4);
      // Version 3's one-row note moved; its table stays (empty) for an old serve still running.
      const tables = db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((row) => row.name);
      expect(tables).toEqual(
        expect.arrayContaining(["events", "deliveries", "attempts", "postings", "posting"]),
      );
      expect(db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM posting").get()?.n).toBe(0);
    } finally {
      db.close();
    }
  });

  it("takes over what the old serve kept after the upgrade, once the new serve opens it", async () => {
    // A newer `status` upgrades the file while the old serve still runs: it goes on keeping events
    // (and noting its post) the old way, in events and posting, with no delivery for them.
    await (await openEventStore(path)).close();
    const old = await otherConnection(path, driver);
    old.exec(`INSERT INTO events (event_id, notif_type, payload, received_at, queued_at, next_attempt_at)
              VALUES ('kept-by-old-serve', 'low_credit', '{}', 1700000009000, 1700000009000, 1700000009000);
              INSERT INTO posting (id, seqs) VALUES (1, '[3,4]');`);
    old.close();
    const commands = await openEventStore(path);
    try {
      // A command's store only reads: it does not take over what a running serve may still own.
      expect((await commands.get("kept-by-old-serve"))?.deliveries).toEqual([]);
    } finally {
      await commands.close();
    }
    const serve = await openEventStore(path, { background: true });
    try {
      expect(await serve.get("kept-by-old-serve")).toMatchObject({
        state: "pending",
        deliveries: [{ route: "default", state: "pending" }],
      });
      expect((await serve.unfinishedPosting("default"))?.map((event) => event.eventId)).toEqual([
        "v3-pending-1",
        "v3-pending-2",
      ]);
    } finally {
      await serve.close();
    }
  });

  it("is brought up to date once: opened again, nothing is copied twice", async () => {
    for (let i = 0; i < 2; i++) {
      const store = await openEventStore(path);
      try {
        expect(await store.stats()).toMatchObject({ pending: 2, delivered: 1, dead: 1 });
        expect((await store.get("v3-pending-1"))?.deliveries).toHaveLength(1);
      } finally {
        await store.close();
      }
    }
  });

  it("delivers its pending events to default after the upgrade: the cut-short post first, under its requestId", async () => {
    chat = await FakeChat.start();
    adapter = await startAdapter({
      host: "127.0.0.1",
      port: 0,
      path: "/",
      secrets: () => ["unused"],
      routes: [
        { name: "default", types: ["all"], mentions: [], chatUrl: new URL(chat.webhookUrl()) },
      ],
      format: "text",
      storePath: path,
      rate: 1000,
    });
    await chat.waitForMessages(1);
    const [message] = chat.messages;
    expect(chat.messages).toHaveLength(1);
    expect(message?.query.get("requestId")).toBe(
      v3RequestId([
        ["v3-pending-1", 1700000002000],
        ["v3-pending-2", 1700000003000],
      ]),
    );
    const text = String(message?.body.text);
    expect(text).toContain("You were outbid on machine 1234");
    expect(text).toContain("Instance 4243 started");
    const store = adapter.store;
    await expect.poll(async () => (await store.stats()).pending).toBe(0);
    expect((await store.get("v3-pending-2"))?.deliveries).toMatchObject([
      { route: "default", state: "delivered", attempts: 1 },
    ]);
    expect(await store.unfinishedPosting("default")).toBeUndefined();
    // The dead letter stays dead until asked; nothing else was posted.
    expect((await store.get("v3-dead"))?.state).toBe("dead");
    expect(chat.messages).toHaveLength(1);
  });
});
