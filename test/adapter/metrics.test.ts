import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countersOf } from "../../src/adapter/admin-client.js";
import type { AdapterEvents } from "../../src/adapter/events.js";
import { createMetrics } from "../../src/adapter/metrics.js";
import { chatSpaceLabel } from "../../src/chat/webhook-url.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { postSigned } from "../support/sign.js";

const SPACE = "AAAAfakeSpace";

let fx: AdapterFixture;

beforeEach(async () => {
  fx = await startAdapterFixture();
});
afterEach(async () => {
  await fx.close();
});

async function scrape(): Promise<string> {
  const response = await fetch(`${fx.adapter.adminOrigin}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

function parseLabels(raw: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of (raw ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    labels[match[1] as string] = match[2] as string;
  }
  return labels;
}

/** The value of one sample of the exposition text, or undefined when there is no such sample. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = parseLabels(match[2]);
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

const M = "vast_gchat_";

describe("GET /metrics", () => {
  it("counts received, duplicate and rejected deliveries", async () => {
    const before = await scrape();
    expect(sample(before, `${M}events_received_total`)).toBe(0);
    expect(sample(before, `${M}events_rejected_total`, { reason: "invalid_signature" })).toBe(0);

    const event = sampleEvent("low_credit");
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", event.event_id);
    expect((await postSigned(fx.url, SECRET, event)).status).toBe(200);
    expect((await postSigned(fx.url, SECRET, event)).body).toMatchObject({ duplicate: true });
    expect((await postSigned(fx.url, SECRET, sampleEvent("outbid"))).status).toBe(200);
    expect((await postSigned(fx.url, "not-the-secret", sampleEvent("outbid"))).status).toBe(401);
    await delivered;

    const text = await scrape();
    expect(sample(text, `${M}events_received_total`)).toBe(2);
    expect(sample(text, `${M}events_duplicate_total`)).toBe(1);
    expect(sample(text, `${M}events_rejected_total`, { reason: "invalid_signature" })).toBe(1);
    expect(sample(text, `${M}events_rejected_total`, { reason: "invalid_json" })).toBe(0);
  });

  it("counts a delivery and records its latency", async () => {
    const event = sampleEvent("instance_started");
    const latencies: number[] = [];
    fx.adapter.events.on("delivered", (_event, latencyMs) => latencies.push(latencyMs));
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", event.event_id);
    await postSigned(fx.url, SECRET, event);
    await delivered;

    const text = await scrape();
    expect(sample(text, `${M}events_delivered_total`)).toBe(1);
    expect(sample(text, `${M}delivery_latency_seconds_count`)).toBe(1);
    expect(sample(text, `${M}delivery_latency_seconds_bucket`, { le: "+Inf" })).toBe(1);
    expect(sample(text, `${M}delivery_latency_seconds_bucket`, { le: "3600" })).toBe(1);
    expect(latencies).toHaveLength(1);
    expect(sample(text, `${M}delivery_latency_seconds_sum`)).toBeCloseTo(
      (latencies[0] as number) / 1000,
      6,
    );
  });

  it("counts retries and shows the queue while Chat answers 500", async () => {
    fx.chat.behaviour = { kind: "status", status: 500 };
    const event = sampleEvent("billing_failed");
    const firstRetry = waitForAdapterEvent(fx.adapter, "retrying", event.event_id);
    await postSigned(fx.url, SECRET, event);
    await firstRetry;
    // The second failure comes after a jittered backoff of about 20 ms since receipt.
    await waitForAdapterEvent(fx.adapter, "retrying", event.event_id);

    const failing = await scrape();
    expect(sample(failing, `${M}delivery_retries_total`)).toBeGreaterThanOrEqual(2);
    expect(sample(failing, `${M}queue_depth`, { space: SPACE })).toBe(1);
    // Jitter can make the wait a little shorter than 20 ms, and the age is read in milliseconds.
    expect(sample(failing, `${M}oldest_pending_age_seconds`, { space: SPACE })).toBeGreaterThan(
      0.01,
    );
    expect(sample(failing, `${M}events_delivered_total`)).toBe(0);

    const delivered = waitForAdapterEvent(fx.adapter, "delivered", event.event_id);
    fx.chat.behaviour = { kind: "ok" };
    await delivered;

    const recovered = await scrape();
    expect(sample(recovered, `${M}queue_depth`, { space: SPACE })).toBe(0);
    expect(sample(recovered, `${M}oldest_pending_age_seconds`, { space: SPACE })).toBe(0);
    expect(sample(recovered, `${M}events_delivered_total`)).toBe(1);
  });

  it("counts a dead letter after a 400", async () => {
    fx.chat.behaviour = { kind: "status", status: 400 };
    const event = sampleEvent("machine_error");
    const dead = waitForAdapterEvent(fx.adapter, "dead", event.event_id);
    await postSigned(fx.url, SECRET, event);
    await dead;

    const text = await scrape();
    expect(sample(text, `${M}events_dead_total`)).toBe(1);
    expect(sample(text, `${M}dead_letters`, { space: SPACE })).toBe(1);
    expect(sample(text, `${M}queue_depth`, { space: SPACE })).toBe(0);
    expect(sample(text, `${M}events_delivered_total`)).toBe(0);
  });

  it("labels by the space id only and never shows the webhook's key or token", async () => {
    expect(fx.chat.webhookUrl()).toContain("key=");
    const event = sampleEvent("low_credit");
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", event.event_id);
    await postSigned(fx.url, SECRET, event);
    await delivered;

    const text = await scrape();
    const spaces = [...text.matchAll(/space="([^"]*)"/g)].map((match) => match[1]);
    expect(spaces.length).toBeGreaterThanOrEqual(3);
    expect(new Set(spaces)).toEqual(new Set([SPACE]));
    for (const secret of ["key=", "token=", "fake-key-123", "fake-token-456", "127.0.0.1"]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe("GET /metrics with routes", () => {
  it("labels what is about a delivery by route, and the queue by route and space", async () => {
    const routed = await startAdapterFixture({}, [
      { name: "default", types: ["all"], space: SPACE },
      { name: "billing", types: ["billing"], space: "BBBBbilling" },
      { name: "gone", types: ["outbid"], space: "CCCCgone" },
    ]);
    try {
      routed.chat.spaceBehaviour.set("CCCCgone", { kind: "status", status: 404 });
      const credit = sampleEvent("low_credit");
      const outbid = sampleEvent("outbid");
      const done = Promise.all([
        waitForAdapterEvent(routed.adapter, "delivered", credit.event_id, 15_000, "default"),
        waitForAdapterEvent(routed.adapter, "delivered", credit.event_id, 15_000, "billing"),
        waitForAdapterEvent(routed.adapter, "delivered", outbid.event_id, 15_000, "default"),
        waitForAdapterEvent(routed.adapter, "dead", outbid.event_id, 15_000, "gone"),
      ]);
      await postSigned(routed.url, SECRET, credit);
      await postSigned(routed.url, SECRET, outbid);
      await done;
      const response = await fetch(`${routed.adapter.adminOrigin}/metrics`);
      const text = await response.text();
      // Received once, whatever the number of its routes.
      expect(sample(text, `${M}events_received_total`)).toBe(2);
      expect(sample(text, `${M}events_delivered_total`, { route: "default" })).toBe(2);
      expect(sample(text, `${M}events_delivered_total`, { route: "billing" })).toBe(1);
      expect(sample(text, `${M}events_delivered_total`, { route: "gone" })).toBe(0);
      expect(sample(text, `${M}events_dead_total`, { route: "gone" })).toBe(1);
      expect(sample(text, `${M}events_dead_total`, { route: "default" })).toBe(0);
      expect(sample(text, `${M}delivery_latency_seconds_count`, { route: "billing" })).toBe(1);
      expect(sample(text, `${M}dead_letters`, { route: "gone", space: "CCCCgone" })).toBe(1);
      expect(sample(text, `${M}dead_letters`, { route: "default", space: SPACE })).toBe(0);
      expect(sample(text, `${M}queue_depth`, { route: "billing", space: "BBBBbilling" })).toBe(0);
      for (const secret of ["key=", "token=", "fake-key-123", "fake-token-456"]) {
        expect(text).not.toContain(secret);
      }
      // status adds every route's counters up.
      expect(countersOf(text)).toMatchObject({ received: 2, delivered: 3, dead: 1 });
    } finally {
      await routed.close();
    }
  });
});

describe("createMetrics", () => {
  it("still answers when the store cannot be read", async () => {
    const metrics = createMetrics({
      events: new EventEmitter<AdapterEvents>(),
      store: {
        queue() {
          return Promise.reject(new Error("database is locked"));
        },
      },
      routes: [{ name: "default", space: SPACE }],
    });
    const text = await metrics.render();
    expect(sample(text, `${M}queue_depth`, { space: SPACE })).toBeNaN();
    expect(sample(text, `${M}dead_letters`, { space: SPACE })).toBeNaN();
    expect(sample(text, `${M}events_received_total`)).toBe(0);
  });

  it("measures the oldest pending event's age with its clock, and keeps registries apart", async () => {
    const events = new EventEmitter<AdapterEvents>();
    const counts = { pending: 3, dead: 2, oldestPendingAt: 10_000 };
    const store = { queue: async () => ({ ...counts, routes: { default: counts } }) };
    const routes = [{ name: "default", space: SPACE }];
    const metrics = createMetrics({ events, store, routes, now: () => 25_000 });
    const other = createMetrics({
      events: new EventEmitter<AdapterEvents>(),
      store,
      routes: [{ name: "default", space: "B" }],
    });
    events.emit("accepted", "a", false, "low_credit", ["default"]);
    events.emit("rejected", "payload_too_large", 413, undefined);

    const text = await metrics.render();
    expect(sample(text, `${M}oldest_pending_age_seconds`, { space: SPACE })).toBe(15);
    expect(sample(text, `${M}queue_depth`, { space: SPACE })).toBe(3);
    expect(sample(text, `${M}dead_letters`, { space: SPACE })).toBe(2);
    expect(sample(text, `${M}events_received_total`)).toBe(1);
    expect(sample(text, `${M}events_rejected_total`, { reason: "payload_too_large" })).toBe(1);
    expect(sample(await other.render(), `${M}events_received_total`)).toBe(0);
  });

  it("derives the space label from the webhook URL without its query", () => {
    const url = new URL(
      "https://chat.googleapis.com/v1/spaces/AAAAxyz/messages?key=secret-key&token=secret-token",
    );
    expect(chatSpaceLabel(url)).toBe("AAAAxyz");
    expect(chatSpaceLabel(new URL("https://hooks.example.com/post?token=t"))).toBe(
      "hooks.example.com",
    );
  });
});
