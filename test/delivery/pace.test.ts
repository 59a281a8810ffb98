import { afterEach, describe, expect, it } from "vitest";
import { type RunningAdapter, startAdapter } from "../../src/adapter/adapter.js";
import { Pace } from "../../src/delivery/pace.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import {
  type AdapterFixture,
  DEFAULT_SPACE,
  SECRET,
  startAdapterFixture,
} from "../support/adapter-fixture.js";
import { FakeChat } from "../support/fake-chat.js";
import { SKIP_POSTGRES } from "../support/postgres-cluster.js";
import { postSigned } from "../support/sign.js";
import { usePostgresCluster } from "./postgres/backend.js";

/**
 * Chat counts a space's messages, whoever posts them (docs/google-chat.md): routes that post to
 * one space share its pace, so together they keep to one message per interval.
 */
describe("the pace of one space", () => {
  const [a, b] = [{}, {}];

  it("gives the turn to one worker at a time, until Chat answers or it gives the turn back", () => {
    const pace = new Pace(1000);
    expect(pace.take(a, 0)).toBe(0);
    // a holds the turn: b waits an interval and asks again; a may ask again (same turn).
    expect(pace.take(b, 0)).toBe(1000);
    expect(pace.take(a, 10)).toBe(0);
    pace.release(b); // not b's to give back
    expect(pace.take(b, 10)).toBe(1000);
    pace.posted(a, 100);
    // The next post to the space waits one interval from Chat's answer, whoever makes it.
    expect(pace.take(b, 600)).toBe(500);
    expect(pace.take(a, 1100)).toBe(0);
    pace.release(a);
    expect(pace.take(b, 1100)).toBe(0);
    pace.reset();
    pace.posted(b, 1200);
    pace.reset();
    expect(pace.take(a, 1200)).toBe(0);
  });
});

describe("two routes into one space", () => {
  let fx: AdapterFixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it("keep to the space's rate together: Chat never answers 429", async () => {
    // 20 messages a second, on both sides; each event matches both routes.
    fx = await startAdapterFixture({ format: "text", rate: 20, digest: false }, [
      { name: "default", types: ["all"], space: DEFAULT_SPACE },
      { name: "ops", types: ["low_credit"], mentions: ["all"], space: DEFAULT_SPACE },
    ]);
    const f = fx;
    f.chat.ratePerSecond = 20;
    const events = Array.from({ length: 5 }, (_, i) =>
      sampleEvent("low_credit", { subject: `credit ${i}` }),
    );
    // Every event delivered to both routes: ten deliveries recorded.
    const recorded = new Promise<void>((resolve) => {
      let count = 0;
      f.adapter.events.on("delivered", () => {
        if (++count === 10) resolve();
      });
    });
    for (const event of events) expect((await postSigned(f.url, SECRET, event)).status).toBe(200);
    await recorded;
    expect(f.chat.messages).toHaveLength(10);
    expect(f.chat.throttled).toBe(0);
  });
});

describe.skipIf(SKIP_POSTGRES)("two routes into one space, on two replicas", () => {
  const cluster = usePostgresCluster();
  const running: RunningAdapter[] = [];
  afterEach(async () => {
    for (const adapter of running.splice(0)) await adapter.close(500);
  });

  it("are delivered by one replica at a time, so the space still gets one message per interval", async () => {
    const chat = await FakeChat.start();
    try {
      chat.ratePerSecond = 20;
      const storePath = await cluster().createDatabase();
      const url = new URL(chat.webhookUrl(DEFAULT_SPACE));
      for (let i = 0; i < 2; i++) {
        running.push(
          await startAdapter({
            host: "127.0.0.1",
            port: 0,
            path: "/",
            secrets: () => [SECRET],
            routes: [
              { name: "default", types: ["all"], mentions: [], chatUrl: url },
              { name: "ops", types: ["low_credit"], mentions: ["all"], chatUrl: url },
            ],
            format: "text",
            digest: false,
            storePath,
            rate: 20,
            initialBackoffMs: 20,
            maxBackoffMs: 200,
          }),
        );
      }
      const events = Array.from({ length: 6 }, (_, i) =>
        sampleEvent("low_credit", { subject: `credit ${i}` }),
      );
      // Each replica takes half of the events; each event goes to both routes.
      for (const [i, event] of events.entries()) {
        const adapter = running[i % 2] as RunningAdapter;
        expect((await postSigned(`${adapter.origin}/`, SECRET, event)).status).toBe(200);
      }
      await chat.waitForMessages(12);
      expect(chat.messages).toHaveLength(12);
      expect(chat.throttled).toBe(0);
    } finally {
      await chat.close();
    }
  });
});
