import { afterEach, describe, expect, it } from "vitest";
import { type ChatMessage, plainTextOf } from "../../src/chat/render.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { postSigned } from "../support/sign.js";

/**
 * Delivery under pressure against a fake Chat that, like Google's, takes one message a second per
 * space and answers 429 beyond.
 */
let fx: AdapterFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

function textOf(f: AdapterFixture): string {
  return f.chat.messages.map((m) => plainTextOf(m.body as ChatMessage)).join("\n");
}

describe("a burst into one space", () => {
  it("delivers 200 events in a handful of digest posts, with no dead letters and few 429s", async () => {
    fx = await startAdapterFixture({ rate: 1 });
    const f = fx;
    f.chat.ratePerSecond = 1;
    const events = Array.from({ length: 200 }, (_, i) =>
      sampleEvent("instance_stopped", { subject: `burst ${String(i).padStart(3, "0")}` }),
    );
    // Sent concurrently, they arrive in any order: wait for all 200 deliveries, whichever is last.
    const all = new Promise<void>((resolve) => {
      let delivered = 0;
      f.adapter.events.on("delivered", () => {
        if (++delivered === events.length) resolve();
      });
    });
    await Promise.all(events.map((event) => postSigned(f.url, SECRET, event)));
    await all;
    const text = textOf(f);
    // Subjects are all of one length, so none is part of another: each appears exactly once.
    for (const event of events) expect(text.split(event.subject)).toHaveLength(2);
    expect(await f.adapter.store.stats()).toMatchObject({ delivered: 200, dead: 0, pending: 0 });
    expect(f.chat.messages.length).toBeLessThanOrEqual(10);
    expect(f.chat.throttled).toBeLessThanOrEqual(3);
    // Each post carries a request id, so Google can drop a repeat after a crash.
    for (const message of f.chat.messages)
      expect(message.query.get("requestId")).toMatch(/^vast-[0-9a-f]{40}$/);
  });
});

describe("giving up", () => {
  it("sends an event to the dead letters once Chat has been down longer than the maximum age", async () => {
    fx = await startAdapterFixture({ maxAgeMs: 300 });
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 503 };
    const event = sampleEvent("low_credit");
    const dead = waitForAdapterEvent(f.adapter, "dead", event.event_id);
    await postSigned(f.url, SECRET, event);
    await dead;
    const stored = await f.adapter.store.get(event.event_id);
    expect(stored?.state).toBe("dead");
    expect(stored?.lastError).toMatch(/^gave up after 0 h: Chat answered 503/);
    expect(stored?.attempts).toBeGreaterThanOrEqual(2);
    expect(
      (await f.adapter.store.attemptsOf(stored?.seq ?? -1)).every((a) => a.status === 503),
    ).toBe(true);
    // Nothing is waiting any more, so nothing is at risk: /health is ok, and still says why.
    expect(await (await fetch(`${f.adapter.adminOrigin}/health`)).json()).toMatchObject({
      status: "ok",
      chat: { last_error: expect.stringContaining("Chat answered 503") },
      queue: { pending: 0 },
      dead: 1,
    });
  });
});

describe("/health while Chat fails", () => {
  it("reports degraded with the reason, still 200, and ok again once Chat recovers", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 500 };
    const event = sampleEvent("low_credit");
    const retried = waitForAdapterEvent(f.adapter, "retrying", event.event_id);
    await postSigned(f.url, SECRET, event);
    await retried;
    const degraded = await fetch(`${f.adapter.adminOrigin}/health`);
    expect(degraded.status).toBe(200);
    expect(await degraded.json()).toMatchObject({
      ok: true,
      status: "degraded",
      chat: { last_error: expect.stringContaining("Chat answered 500") },
    });
    const delivered = waitForAdapterEvent(f.adapter, "delivered", event.event_id);
    f.chat.behaviour = { kind: "ok" };
    await delivered;
    expect(await (await fetch(`${f.adapter.adminOrigin}/health`)).json()).toMatchObject({
      status: "ok",
    });
  });
});

describe("a digest Chat refuses", () => {
  it("is split: each event goes alone, so only the one at fault is dead-lettered", async () => {
    fx = await startAdapterFixture();
    const f = fx;
    f.chat.behaviour = { kind: "status", status: 503 };
    const events = Array.from({ length: 4 }, (_, i) =>
      sampleEvent("outbid", { subject: `split ${i}` }),
    );
    const held = waitForAdapterEvent(f.adapter, "retrying", events[0]?.event_id ?? "");
    for (const event of events) await postSigned(f.url, SECRET, event);
    await held;
    // Chat now refuses any message carrying "split 2", and takes the others.
    f.chat.behaviour = { kind: "ok" };
    f.chat.refuseIf = (body) => JSON.stringify(body).includes("split 2");
    const dead = waitForAdapterEvent(f.adapter, "dead", events[2]?.event_id ?? "");
    const lastDelivered = waitForAdapterEvent(f.adapter, "delivered", events[3]?.event_id ?? "");
    await dead;
    await lastDelivered;
    expect(await f.adapter.store.stats()).toMatchObject({ delivered: 3, dead: 1, pending: 0 });
  });
});
