import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ChatMessage, plainTextOf } from "../../src/chat/render.js";
import type { EventStore, StoredDelivery } from "../../src/delivery/event-store.js";
import { openEventStore } from "../../src/delivery/open-store.js";
import {
  backoffDelay,
  DeliveryWorker,
  type PostRequest,
  requestIdFor,
} from "../../src/delivery/worker.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { postSigned } from "../support/sign.js";
import { otherConnection, SQLITE_DRIVERS_HERE, useSqliteDriver } from "./sqlite/drivers.js";

let fx: AdapterFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

describe("an event that cannot be rendered", () => {
  it("deep nesting (far under the size cap) is drawn with an ellipsis, and delivered", async () => {
    fx = await startAdapterFixture({ format: "text" });
    const f = fx;
    // No message, so the payload itself is shown: 5,000 nested arrays once overflowed the stack.
    const deep = `{"event_id":"deep-1","notif_type":"low_credit","a":${"[".repeat(5000)}${"]".repeat(5000)}}`;
    const delivered = waitForAdapterEvent(f.adapter, "delivered", "deep-1");
    expect((await postSigned(f.url, SECRET, deep)).status).toBe(200);
    await delivered;
    // Brackets become look-alikes in text: no Markdown link can be made of them.
    expect(plainTextOf(f.chat.messages[0]?.body as ChatMessage)).toContain("［［［［");
    expect(plainTextOf(f.chat.messages[0]?.body as ChatMessage)).toContain("…");
  });

  it("goes to the dead letters with the reason, and the queue goes on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "worker-render-"));
    const store = await openEventStore(join(dir, "events.db"));
    const posted: string[] = [];
    const dead: string[] = [];
    const delivered = new Promise<void>((resolve) => {
      const worker = new DeliveryWorker({
        store,
        render: (event) => {
          if (event.eventId === "bad") throw new RangeError("Maximum call stack size exceeded");
          return { text: event.eventId };
        },
        post: async (request) => {
          posted.push(String(request.message.text));
          return { kind: "delivered", status: 200 };
        },
        observer: {
          dead: (event) => dead.push(event.eventId),
          delivered: () => {
            void worker.stop().then(resolve);
          },
        },
      });
      void (async () => {
        for (const eventId of ["bad", "good"]) {
          await store.accept({
            eventId,
            notifType: "low_credit",
            payload: "{}",
            receivedAt: Date.now(),
            routes: ["default"],
          });
        }
        worker.start();
      })();
    });
    try {
      await delivered;
      expect(dead).toEqual(["bad"]);
      expect(posted).toEqual(["good"]);
      expect(await store.get("bad")).toMatchObject({
        state: "dead",
        lastError: "could not render the message: Maximum call stack size exceeded",
      });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(SQLITE_DRIVERS_HERE)("a post whose outcome was never recorded (%s)", (driver) => {
  useSqliteDriver(driver);

  it("goes again with the same events and the same requestId, before anything newer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "worker-unfinished-"));
    const path = join(dir, "events.db");
    const accept = async (store: EventStore, ids: string[]) => {
      for (const eventId of ids) {
        await store.accept({
          eventId,
          notifType: "outbid",
          payload: "{}",
          receivedAt: Date.now(),
          routes: ["default"],
        });
      }
    };
    const render = (event: StoredDelivery): ChatMessage => ({ text: event.eventId });
    const renderDigest = (events: StoredDelivery[]) => ({
      message: { text: events.map((event) => event.eventId).join(",") },
      carried: events.length,
    });
    try {
      // First life: a digest of three is sent, and the process stops before Chat answers.
      const first = await openEventStore(path);
      await accept(first, ["a", "b", "c"]);
      const sent: PostRequest[] = [];
      const hanging = new DeliveryWorker({
        store: first,
        render,
        renderDigest,
        post: (request, signal) => {
          sent.push(request);
          return new Promise((_, reject) =>
            signal.addEventListener("abort", () => reject(signal.reason)),
          );
        },
      });
      hanging.start();
      await vi.waitFor(() => expect(sent).toHaveLength(1));
      await hanging.stop(0);
      await accept(first, ["d", "e", "f"]);
      await first.close();

      // Second life: the same three first, under the same requestId; then the newer three.
      const second = await openEventStore(path);
      const posted: PostRequest[] = [];
      await new Promise<void>((resolve) => {
        const worker = new DeliveryWorker({
          store: second,
          render,
          renderDigest,
          rate: 1000,
          post: async (request) => {
            posted.push(request);
            if (posted.length === 2) void worker.stop().then(resolve);
            return { kind: "delivered", status: 200 };
          },
        });
        worker.start();
      });
      expect(posted.map((p) => p.message.text)).toEqual(["a,b,c", "d,e,f"]);
      expect(posted[0]?.requestId).toBe(sent[0]?.requestId);
      expect(await second.unfinishedPosting("default")).toBeUndefined();
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(SQLITE_DRIVERS_HERE)(
  "a post cut short by a crash, then refused for now (%s)",
  (driver) => {
    useSqliteDriver(driver);

    it("goes again as that very post, under its requestId, until Chat takes it", async () => {
      const dir = mkdtempSync(join(tmpdir(), "worker-repeat-"));
      const path = join(dir, "events.db");
      const render = (event: StoredDelivery): ChatMessage => ({ text: event.eventId });
      const renderDigest = (events: StoredDelivery[]) => ({
        message: { text: events.map((event) => event.eventId).join(",") },
        carried: events.length,
      });
      const accept = async (store: EventStore, ids: string[], route: string) => {
        for (const eventId of ids) {
          await store.accept({
            eventId,
            notifType: "outbid",
            payload: "{}",
            receivedAt: Date.now(),
            routes: [route],
          });
        }
      };
      try {
        const first = await openEventStore(path);
        await accept(first, ["a", "b", "c"], "ops");
        const sent: PostRequest[] = [];
        const hanging = new DeliveryWorker({
          store: first,
          route: "ops",
          render,
          renderDigest,
          post: (request, signal) => {
            sent.push(request);
            return new Promise((_, reject) =>
              signal.addEventListener("abort", () => reject(signal.reason)),
            );
          },
        });
        hanging.start();
        await vi.waitFor(() => expect(sent).toHaveLength(1));
        await hanging.stop(0);
        await accept(first, ["d", "e", "f"], "ops");
        await first.close();

        // After the restart Chat answers the repeat 429 (too soon after the first, which it made):
        // that says nothing of the first, so the next try is the same post again, not a bigger one.
        const second = await openEventStore(path);
        const posted: PostRequest[] = [];
        await new Promise<void>((resolve) => {
          const worker = new DeliveryWorker({
            store: second,
            route: "ops",
            render,
            renderDigest,
            rate: 1000,
            initialBackoffMs: 1,
            maxBackoffMs: 5,
            post: async (request) => {
              posted.push(request);
              if (posted.length === 1)
                return { kind: "retry", status: 429, reason: "Chat answered 429" };
              // The last event posted: done, whatever the posts were.
              if (String(request.message.text).includes("f")) void worker.stop().then(resolve);
              return { kind: "delivered", status: 200 };
            },
          });
          worker.start();
        });
        expect(posted.map((p) => p.message.text)).toEqual(["a,b,c", "a,b,c", "d,e,f"]);
        expect(posted[0]?.requestId).toBe(sent[0]?.requestId);
        expect(posted[1]?.requestId).toBe(sent[0]?.requestId);
        expect(posted[2]?.requestId).not.toBe(sent[0]?.requestId);
        expect(await second.unfinishedPosting("ops")).toBeUndefined();
        await second.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe("delivery to Chat", () => {
  it("delivers in order of arrival, each event once", async () => {
    fx = await startAdapterFixture({ format: "text" });
    const f = fx;
    f.chat.behaviour = { kind: "ok", delayMs: 20 };
    const sent = Array.from({ length: 5 }, (_, i) =>
      sampleEvent("low_credit", { subject: `event ${i}` }),
    );
    const last = waitForAdapterEvent(f.adapter, "delivered", sent.at(-1)?.event_id ?? "");
    for (const event of sent) await postSigned(f.url, SECRET, event);
    await last;
    const text = f.chat.messages.map((m) => plainTextOf(m.body as ChatMessage)).join("\n");
    const positions = sent.map((event) => text.indexOf(event.subject));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    for (const event of sent) expect(text.split(event.subject)).toHaveLength(2);
  });

  it("keeps retrying while Chat is down and delivers once it is back", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 500 };
    const event = sampleEvent("instance_stopped");
    const retried = waitForAdapterEvent(f.adapter, "retrying", event.event_id);
    await postSigned(f.url, SECRET, event);
    await retried;
    await f.chat.waitFor((c) => c.requests >= 3);
    expect(await f.adapter.store.get(event.event_id)).toMatchObject({
      state: "pending",
      lastError: expect.stringContaining("500"),
    });
    const delivered = waitForAdapterEvent(f.adapter, "delivered", event.event_id);
    f.chat.behaviour = { kind: "ok" };
    await delivered;
    expect((await f.adapter.store.get(event.event_id))?.state).toBe("delivered");
    expect(f.chat.messages).toHaveLength(1);
  });

  it("retries a post that hangs, after the timeout", async () => {
    fx = await startAdapterFixture({ chatTimeoutMs: 200 });
    const f = fx;
    f.chat.behaviour = { kind: "hang" };
    const event = sampleEvent("low_credit");
    const retried = waitForAdapterEvent(f.adapter, "retrying", event.event_id);
    await postSigned(f.url, SECRET, event);
    expect((await retried).lastError).toBeNull();
    expect((await f.adapter.store.get(event.event_id))?.lastError).toBe("Chat timed out");
    const delivered = waitForAdapterEvent(f.adapter, "delivered", event.event_id);
    f.chat.behaviour = { kind: "ok" };
    await delivered;
    expect((await f.adapter.store.get(event.event_id))?.attempts).toBeGreaterThanOrEqual(2);
    expect(f.chat.messages).toHaveLength(1);
  });

  it("after a post with no answer, sends the same events again (same requestId), not a bigger digest", async () => {
    fx = await startAdapterFixture({ chatTimeoutMs: 200 });
    const f = fx;
    f.chat.behaviour = { kind: "hang" };
    const first = sampleEvent("low_credit", { subject: "first" });
    const retried = waitForAdapterEvent(f.adapter, "retrying", first.event_id);
    await postSigned(f.url, SECRET, first);
    await retried;
    // Chat may have made that message: three more arrive meanwhile, and must not join its retry.
    const later = ["second", "third", "fourth"].map((subject) =>
      sampleEvent("outbid", { subject }),
    );
    for (const event of later) await postSigned(f.url, SECRET, event);
    const hungIds = f.chat.hungRequestIds;
    const delivered = waitForAdapterEvent(f.adapter, "delivered", later[2]?.event_id ?? "");
    f.chat.behaviour = { kind: "ok" };
    await delivered;
    const [retry, digest] = f.chat.messages;
    expect(plainTextOf(retry?.body as ChatMessage)).not.toContain("second");
    expect(retry?.query.get("requestId")).toBe(hungIds[0]);
    expect(plainTextOf(digest?.body as ChatMessage)).toMatch(/second[\s\S]*third[\s\S]*fourth/);
  });

  it("moves an event Chat refuses for good to the dead letters, and goes on with the next", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 400 };
    const refused = sampleEvent("low_credit");
    const dead = waitForAdapterEvent(f.adapter, "dead", refused.event_id);
    await postSigned(f.url, SECRET, refused);
    await dead;
    expect((await f.adapter.store.get(refused.event_id))?.state).toBe("dead");
    expect((await f.adapter.store.get(refused.event_id))?.lastError).toBe(
      "Chat answered 400 (INVALID_ARGUMENT: fake INVALID_ARGUMENT)",
    );
    f.chat.behaviour = { kind: "ok" };
    const next = sampleEvent("low_credit");
    await postSigned(f.url, SECRET, next);
    await f.chat.waitForMessages(1);
    expect(JSON.stringify(f.chat.messages[0]?.body)).toContain(next.event_id);
  });

  it("honours Chat's Retry-After on a 429", async () => {
    fx = await startAdapterFixture({ initialBackoffMs: 10, maxBackoffMs: 60_000 });
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 429, retryAfter: "30" };
    const event = sampleEvent("low_credit");
    const retried = waitForAdapterEvent(f.adapter, "retrying", event.event_id);
    const sentAt = Date.now();
    await postSigned(f.url, SECRET, event);
    await retried;
    const stored = await f.adapter.store.get(event.event_id);
    expect(stored?.lastError).toContain("429 (RESOURCE_EXHAUSTED");
    expect(stored?.nextAttemptAt).toBeGreaterThanOrEqual(sentAt + 30_000);
  });

  it("never waits longer than its own longest backoff, whatever Retry-After says", async () => {
    fx = await startAdapterFixture({ initialBackoffMs: 10, maxBackoffMs: 500 });
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 503, retryAfter: "86400" };
    const event = sampleEvent("low_credit");
    const retried = waitForAdapterEvent(f.adapter, "retrying", event.event_id);
    await postSigned(f.url, SECRET, event);
    await retried;
    expect((await f.adapter.store.get(event.event_id))?.nextAttemptAt).toBeLessThanOrEqual(
      Date.now() + 500,
    );
    const delivered = waitForAdapterEvent(f.adapter, "delivered", event.event_id);
    f.chat.behaviour = { kind: "ok" };
    await delivered;
  });

  it.each([403, 404])("moves an event to the dead letters on a %i", async (status) => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "status", status };
    const event = sampleEvent("low_credit");
    const dead = waitForAdapterEvent(f.adapter, "dead", event.event_id);
    await postSigned(f.url, SECRET, event);
    expect((await dead).eventId).toBe(event.event_id);
    expect((await f.adapter.store.get(event.event_id))?.lastError).toContain(
      `Chat answered ${status}`,
    );
    expect(f.chat.requests).toBe(1);
  });

  it("threads events about the same instance", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    await postSigned(f.url, SECRET, sampleEvent("instance_started"));
    await postSigned(f.url, SECRET, sampleEvent("low_credit"));
    await f.chat.waitForMessages(2);
    const [threaded, plain] = f.chat.messages;
    expect(threaded?.query.get("messageReplyOption")).toBe("REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    expect(threaded?.body.thread).toEqual({ threadKey: expect.stringContaining("1234567") });
    expect(plain?.query.get("messageReplyOption")).toBeNull();
    expect(plain?.body.thread).toBeUndefined();
  });

  it("on shutdown, leaves a post that does not finish in time pending", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "hang" };
    const event = sampleEvent("low_credit");
    await postSigned(f.url, SECRET, event);
    await f.chat.waitFor((c) => c.requests >= 1);
    await f.adapter.close(100);
    const reopened = await openEventStore(f.storePath);
    try {
      expect(await reopened.get(event.event_id)).toMatchObject({ state: "pending", attempts: 0 });
    } finally {
      await reopened.close();
    }
  });
});

describe.each(SQLITE_DRIVERS_HERE)("a store that refuses to record (%s)", (driver) => {
  useSqliteDriver(driver);

  it("posts once when the store refuses to record a delivery: it retries the write, not the post", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "ok", delayMs: 300 };
    const event = sampleEvent("low_credit");
    await postSigned(f.url, SECRET, event);
    await f.chat.waitFor((c) => c.requests >= 1);
    const other = await otherConnection(f.storePath, driver);
    try {
      other.exec("BEGIN EXCLUSIVE");
      await once(f.adapter.events, "storeError");
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    const delivered = waitForAdapterEvent(f.adapter, "delivered", event.event_id);
    await delivered;
    expect(f.chat.requests).toBe(1);
    expect(f.chat.messages).toHaveLength(1);
  });
});

describe("requestIdFor", () => {
  const events = [
    { eventId: "a", queuedAt: 1000 },
    { eventId: "b", queuedAt: 2000 },
  ] as StoredDelivery[];

  it("differs between routes for the same events: two routes into one space each make theirs", () => {
    const ids = ["default", "ops", "billing"].map((route) => requestIdFor(events, route));
    expect(new Set(ids).size).toBe(3);
    expect(requestIdFor(events, "ops")).toBe(requestIdFor(events, "ops"));
  });

  it("is, for default, what the release before routes sent, so a post it noted goes again alike", () => {
    const before = `vast-${createHash("sha256").update("a@1000,b@2000").digest("hex").slice(0, 40)}`;
    expect(requestIdFor(events)).toBe(before);
    expect(requestIdFor(events, "default")).toBe(before);
  });

  it("is new after a replay (queued again)", () => {
    const replayed = [{ eventId: "a", queuedAt: 5000 }] as StoredDelivery[];
    expect(requestIdFor(replayed, "ops")).not.toBe(
      requestIdFor([events[0] as StoredDelivery], "ops"),
    );
  });
});

describe("backoffDelay", () => {
  it("grows with each attempt and stays under the cap", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const delay = backoffDelay(attempt, 1000, 60_000);
      const base = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      expect(delay).toBeGreaterThanOrEqual(base / 2);
      expect(delay).toBeLessThanOrEqual(base);
    }
  });
});
