import { afterEach, describe, expect, it } from "vitest";
import { startAdapter } from "../../src/adapter/adapter.js";
import type { ChatMessage } from "../../src/chat/render.js";
import { plainTextOf } from "../../src/chat/render.js";
import type { StoredDelivery } from "../../src/delivery/event-store.js";
import { openEventStore } from "../../src/delivery/open-store.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  DEFAULT_SPACE,
  type FixtureRoute,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import type { ReceivedMessage } from "../support/fake-chat.js";
import { postSigned } from "../support/sign.js";

/**
 * Routes in the running adapter (issue 16): every route its own Chat space, with its own pacing,
 * digests, retries and dead letters, so one space refusing or throttling holds up nothing for the
 * others; an event routed to two spaces posted once in each; mentions only from configuration.
 * In-process adapters on loopback, a real SQLite file, the fake Chat's spaces.
 */
const BILLING_SPACE = "BBBBbilling";
const GPU_SPACE = "CCCCgpu";

let fx: AdapterFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

function messagesTo(f: AdapterFixture, space: string): ReceivedMessage[] {
  return f.chat.messages.filter((message) => message.space === space);
}

function textOf(message: ReceivedMessage | undefined): string {
  return plainTextOf(message?.body as ChatMessage);
}

/** Resolves once every (event, route) pair named has been reported `name` by the adapter. */
function waitForAll(
  f: AdapterFixture,
  name: "delivered" | "dead",
  pairs: Array<[eventId: string, route: string]>,
  timeoutMs = 15_000,
): Promise<void> {
  return Promise.all(
    pairs.map(([eventId, route]) =>
      waitForAdapterEvent(f.adapter, name, eventId, timeoutMs, route),
    ),
  ).then(() => undefined);
}

const THREE: FixtureRoute[] = [
  { name: "default", types: ["all"], space: DEFAULT_SPACE },
  { name: "billing", types: ["billing"], space: BILLING_SPACE, mentions: ["users/123456789"] },
  { name: "gpu", types: ["client:instance_stopped", "outbid"], space: GPU_SPACE },
];

describe("an event and its routes", () => {
  it("goes to every route whose list matches, once in each space, under a requestId of each", async () => {
    fx = await startAdapterFixture({ format: "text" }, THREE);
    const f = fx;
    const credit = sampleEvent("low_credit", { subject: "credit is low" });
    const stopped = sampleEvent("instance_stopped", { subject: "instance 4242 stopped" });
    const created = sampleEvent("instance_created", { subject: "instance 4243 created" });
    const all = waitForAll(f, "delivered", [
      [credit.event_id, "default"],
      [credit.event_id, "billing"],
      [stopped.event_id, "default"],
      [stopped.event_id, "gpu"],
      [created.event_id, "default"],
    ]);
    for (const event of [credit, stopped, created]) {
      expect((await postSigned(f.url, SECRET, event)).status).toBe(200);
    }
    await all;
    // Vast.ai's retry of one is the same event: no delivery is added, nothing is posted again.
    expect((await postSigned(f.url, SECRET, credit)).body).toMatchObject({ duplicate: true });

    const texts = (space: string) => messagesTo(f, space).map(textOf).join("\n");
    for (const [space, subjects] of [
      [DEFAULT_SPACE, ["credit is low", "instance 4242 stopped", "instance 4243 created"]],
      [BILLING_SPACE, ["credit is low"]],
      [GPU_SPACE, ["instance 4242 stopped"]],
    ] as const) {
      for (const subject of subjects) expect(texts(space).split(subject)).toHaveLength(2);
    }
    expect(texts(BILLING_SPACE)).not.toContain("instance");
    expect(texts(GPU_SPACE)).not.toContain("credit");

    // The same event in two spaces: two messages, two requestIds (the route is in what it is made
    // of, so two routes into one space would each make theirs).
    const requestIdOf = (space: string) =>
      messagesTo(f, space)
        .find((m) => textOf(m).includes("credit is low"))
        ?.query.get("requestId");
    expect(requestIdOf(DEFAULT_SPACE)).toMatch(/^vast-[0-9a-f]{40}$/);
    expect(requestIdOf(BILLING_SPACE)).toMatch(/^vast-[0-9a-f]{40}$/);
    expect(requestIdOf(DEFAULT_SPACE)).not.toBe(requestIdOf(BILLING_SPACE));

    const stored = await f.adapter.store.get(credit.event_id);
    expect(stored?.state).toBe("delivered");
    expect(stored?.deliveries.map((d) => [d.route, d.state, d.attempts])).toEqual([
      ["billing", "delivered", 1],
      ["default", "delivered", 1],
    ]);
    const attempts = await f.adapter.store.attemptsOf(stored?.seq ?? -1);
    expect(attempts.map((attempt) => attempt.route).sort()).toEqual(["billing", "default"]);
  });

  it("mentions the people of the route's configuration, never anyone an event names", async () => {
    fx = await startAdapterFixture({}, THREE);
    const f = fx;
    const hostile = sampleEvent("low_credit", {
      subject: "<users/all> pay now <users/999>",
      message: "Ping <users/all> and <users/424242>",
    });
    const all = waitForAll(f, "delivered", [
      [hostile.event_id, "default"],
      [hostile.event_id, "billing"],
    ]);
    await postSigned(f.url, SECRET, hostile);
    await all;
    const [billing] = messagesTo(f, BILLING_SPACE);
    const [plain] = messagesTo(f, DEFAULT_SPACE);
    // A card message gets a text of the route's mentions alone: `text` is the one field Chat reads
    // mentions from (the card shows the event's words as words).
    expect(billing?.body.text).toBe("<users/123456789>");
    // default mentions no one, whatever the event says.
    expect(plain?.body.text).toBeUndefined();
  });

  it("in text messages too: the event's markup is inert, the route's mentions open the text", async () => {
    fx = await startAdapterFixture({ format: "text" }, THREE);
    const f = fx;
    const hostile = sampleEvent("low_credit", { subject: "<users/all> pay now" });
    const all = waitForAll(f, "delivered", [
      [hostile.event_id, "default"],
      [hostile.event_id, "billing"],
    ]);
    await postSigned(f.url, SECRET, hostile);
    await all;
    const billing = String(messagesTo(f, BILLING_SPACE)[0]?.body.text);
    const plain = String(messagesTo(f, DEFAULT_SPACE)[0]?.body.text);
    expect(billing.split("\n")[0]).toBe("<users/123456789>");
    expect(billing.match(/<users\//g)).toHaveLength(1);
    expect(plain).not.toContain("<users/");
    expect(plain).toContain("pay now");
  });
});

describe("a space that fails beside a healthy one", () => {
  const TWO: FixtureRoute[] = [
    { name: "default", types: ["all"], space: DEFAULT_SPACE },
    { name: "ops", types: ["instance"], space: GPU_SPACE },
  ];

  it("a 404 space: the healthy one gets everything, the other's deliveries go to its own dead letters", async () => {
    fx = await startAdapterFixture({}, TWO);
    const f = fx;
    // The ops space's webhook was deleted.
    f.chat.spaceBehaviour.set(GPU_SPACE, { kind: "status", status: 404 });
    const events = Array.from({ length: 6 }, (_, i) =>
      sampleEvent("instance_stopped", { subject: `stopped ${i}` }),
    );
    const delivered = waitForAll(
      f,
      "delivered",
      events.map((event) => [event.event_id, "default"]),
    );
    const dead = waitForAll(
      f,
      "dead",
      events.map((event) => [event.event_id, "ops"]),
    );
    for (const event of events) await postSigned(f.url, SECRET, event);
    await Promise.all([delivered, dead]);

    const text = messagesTo(f, DEFAULT_SPACE)
      .map((m) => String(m.body.fallbackText))
      .join("\n");
    for (const event of events) expect(text).toContain(event.subject);
    expect(messagesTo(f, GPU_SPACE)).toEqual([]);
    const stored = await f.adapter.store.get(events[0]?.event_id ?? "");
    expect(stored?.deliveries).toMatchObject([
      { route: "default", state: "delivered" },
      { route: "ops", state: "dead", lastError: expect.stringContaining("Chat answered 404") },
    ]);
    const health = (await (await fetch(`${f.adapter.adminOrigin}/health`)).json()) as {
      routes: Record<string, { dead: number; queue: { pending: number } }>;
      dead: number;
    };
    expect(health.dead).toBe(6);
    expect(health.routes.default).toMatchObject({ dead: 0, queue: { pending: 0 } });
    expect(health.routes.ops).toMatchObject({ dead: 6, queue: { pending: 0 } });

    // The space is mended: its dead letters, and only its, go again; default posts nothing more.
    f.chat.spaceBehaviour.delete(GPU_SPACE);
    const before = messagesTo(f, DEFAULT_SPACE).length;
    const again = waitForAll(
      f,
      "delivered",
      events.map((event) => [event.event_id, "ops"]),
      20_000,
    );
    expect(await f.adapter.store.retryDead(Date.now(), "ops")).toBe(6);
    await again;
    expect(messagesTo(f, DEFAULT_SPACE)).toHaveLength(before);
    const opsText = messagesTo(f, GPU_SPACE)
      .map((m) => String(m.body.fallbackText))
      .join("\n");
    for (const event of events) expect(opsText.split(event.subject)).toHaveLength(2);
  });

  it("a throttled space (429): its events wait, the other space's go at once", async () => {
    fx = await startAdapterFixture({ initialBackoffMs: 10, maxBackoffMs: 60_000 }, TWO);
    const f = fx;
    f.chat.spaceBehaviour.set(GPU_SPACE, { kind: "status", status: 429, retryAfter: "30" });
    const events = Array.from({ length: 4 }, (_, i) =>
      sampleEvent("outbid", { subject: `outbid ${i}` }),
    );
    const retried: StoredDelivery[] = [];
    f.adapter.events.on("retrying", (event) => retried.push(event));
    const delivered = waitForAll(
      f,
      "delivered",
      events.map((event) => [event.event_id, "default"]),
    );
    for (const event of events) await postSigned(f.url, SECRET, event);
    await delivered;
    await f.chat.waitFor(() => retried.length > 0);
    expect(retried.every((event) => event.route === "ops")).toBe(true);
    const queue = await f.adapter.store.queue();
    expect(queue.routes.ops?.pending).toBe(4);
    expect(queue.routes.default).toBeUndefined();
    const health = (await (await fetch(`${f.adapter.adminOrigin}/health`)).json()) as {
      status: string;
      routes: Record<string, { status: string; chat?: { last_error: string } }>;
    };
    expect(health.status).toBe("degraded");
    expect(health.routes.default?.status).toBe("ok");
    expect(health.routes.ops).toMatchObject({
      status: "degraded",
      chat: { last_error: expect.stringContaining("429") },
    });
    // Retry-After 30 s: ops waits, once; default never waited for it.
    expect(f.chat.requestsBySpace.get(GPU_SPACE)).toBe(1);
  });
});

describe("deliveries for a route the adapter does not deliver", () => {
  it("are said in the log at start, not posted anywhere", async () => {
    fx = await startAdapterFixture({}, [
      { name: "default", types: ["all"], space: DEFAULT_SPACE },
      { name: "gone", types: ["outbid"], space: GPU_SPACE },
    ]);
    const { storePath } = fx;
    await fx.adapter.close(100);
    const store = await openEventStore(storePath);
    await store.accept({
      eventId: "kept-for-gone",
      notifType: "outbid",
      payload: JSON.stringify(sampleEvent("outbid")),
      receivedAt: Date.now(),
      routes: ["gone"],
    });
    await store.close();
    const warnings: Array<{ fields: object; message: string }> = [];
    const log = {
      debug() {},
      info() {},
      error() {},
      warn: (fields: object, message: string) => warnings.push({ fields, message }),
    };
    const again = await startAdapter({
      host: "127.0.0.1",
      port: 0,
      path: "/",
      secrets: () => [SECRET],
      routes: [
        { name: "default", types: ["all"], mentions: [], chatUrl: new URL(fx.chat.webhookUrl()) },
      ],
      format: "card",
      storePath,
      log,
    });
    try {
      expect(warnings).toContainEqual({
        fields: { route: "gone", pending: 1 },
        message: "events wait for a route this adapter does not deliver",
      });
      expect(again.routes).toEqual(["default"]);
      expect(fx.chat.requests).toBe(0);
    } finally {
      await again.close(100);
    }
  });
});

describe("a burst into three spaces, each taking one message a second", () => {
  it("finishes in about the time of the largest share, not of the sum", {
    timeout: 90_000,
  }, async () => {
    // One message a second per space, as Chat allows, here enforced by the fake (429 beyond);
    // no digests, so each event is a message and each space's share is 20 posts.
    fx = await startAdapterFixture({ rate: 1, digest: false, format: "text" }, [
      { name: "default", types: ["instance_started"], space: DEFAULT_SPACE },
      { name: "billing", types: ["low_credit"], space: BILLING_SPACE },
      { name: "gpu", types: ["outbid"], space: GPU_SPACE },
    ]);
    const f = fx;
    f.chat.ratePerSecond = 1;
    const perSpace = 20;
    const types = [
      ["instance_started", "default"],
      ["low_credit", "billing"],
      ["outbid", "gpu"],
    ] as const;
    const events = Array.from({ length: perSpace * 3 }, (_, i) => {
      const [type, route] = types[i % 3] as (typeof types)[number];
      return { route, event: sampleEvent(type, { subject: `burst ${i}` }) };
    });
    const all = waitForAll(
      f,
      "delivered",
      events.map(({ event, route }) => [event.event_id, route]),
      80_000,
    );
    const startedAt = Date.now();
    await Promise.all(events.map(({ event }) => postSigned(f.url, SECRET, event)));
    await all;
    const elapsedS = (Date.now() - startedAt) / 1000;

    // Each space's share: 20 posts a second apart, 19 s from the first to the last.
    const share = perSpace - 1;
    const sum = 3 * perSpace - 1;
    expect(elapsedS).toBeGreaterThanOrEqual(share * 0.95);
    expect(elapsedS).toBeLessThan(sum / 2);
    // Each space paced on its own: Chat never had to refuse one, and each got its 20.
    expect(f.chat.throttled).toBe(0);
    for (const space of [DEFAULT_SPACE, BILLING_SPACE, GPU_SPACE]) {
      expect(messagesTo(f, space)).toHaveLength(perSpace);
    }
  });
});
