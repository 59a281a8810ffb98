import { describe, expect, it } from "vitest";
import type { AdapterLog } from "../../src/adapter/adapter.js";
import {
  ChainWatcher,
  type ChainWatchOptions,
  type VastSide,
} from "../../src/adapter/chain-watch.js";
import { type ProblemChange, ProblemTracker } from "../../src/adapter/problems.js";
import { SelfTestGate } from "../../src/adapter/self-test-gate.js";
import { type TestDelivery, VastApiError } from "../../src/vast/api-client.js";
import type { UpdateWebhookInput, Webhook } from "../../src/vast/api-types.js";
import { ManualScheduler } from "../support/manual-scheduler.js";

/**
 * The chain watcher on a clock the test moves, against a stand-in for the Vast.ai client: what it
 * asks, when, and what it makes of the answers. The emulator tests (test/cli/serve-watch.test.ts)
 * run the same against the real client and serve.
 */
const URL_HERE = "https://adapter.example.org/";

class FakeVast {
  webhook: Webhook | undefined = {
    id: 7,
    webhook_url: URL_HERE,
    event_types: ["client:low_credit", "client:outbid"],
  };
  calls: string[] = [];
  findError: Error | undefined;
  testAnswer: () => Promise<TestDelivery> = async () => ({ webhookId: 7, eventId: "e1" });
  /** Called while the test call is under way, as Vast.ai delivers before answering. */
  onTest: (() => void) | undefined;

  client = {
    findWebhook: async (id: number) => {
      this.calls.push(`GET ${id}`);
      if (this.findError) throw this.findError;
      return this.webhook?.id === id ? structuredClone(this.webhook) : undefined;
    },
    updateWebhook: async (id: number, input: UpdateWebhookInput) => {
      this.calls.push(`PUT ${id} ${JSON.stringify(input)}`);
      if (!this.webhook) throw new Error("gone");
      Object.assign(this.webhook, input);
      return structuredClone(this.webhook);
    },
    testWebhook: async (id: number) => {
      this.calls.push(`TEST ${id}`);
      this.onTest?.();
      return this.testAnswer();
    },
  };
}

function logRecorder() {
  const lines: Array<{ level: string; msg: string; fields: object }> = [];
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields });
    };
  const log: AdapterLog = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  return { log, lines, messages: () => lines.map((line) => line.msg) };
}

function setUp(overrides: Partial<ChainWatchOptions> = {}, vastOverrides: Partial<VastSide> = {}) {
  const scheduler = new ManualScheduler();
  const problems = new ProblemTracker({ now: () => scheduler.now() });
  const changes: ProblemChange[] = [];
  problems.subscribe((change) => changes.push(change));
  const fake = new FakeVast();
  const { log, messages, lines } = logRecorder();
  const released: string[] = [];
  const gate = new SelfTestGate({ release: (event) => released.push(event.eventId) });
  let chat: { since: number; reason: string } | null = null;
  const pointedBack: string[] = [];
  const vast: VastSide = {
    client: fake.client,
    webhookId: () => 7,
    expectedUrl: () => URL_HERE,
    pointBack: async () => {
      pointedBack.push(URL_HERE);
      if (fake.webhook) fake.webhook.webhook_url = URL_HERE;
    },
    wantedTypes: () => ["client:low_credit", "outbid"],
    mayUpdate: true,
    ...vastOverrides,
  };
  const watcher = new ChainWatcher({
    problems,
    scheduler,
    log,
    checkEveryMs: 60_000,
    selfTestEveryMs: 0,
    vast,
    selfTest: gate,
    chatFailing: () => chat,
    ...overrides,
  });
  return {
    scheduler,
    problems,
    changes,
    fake,
    messages,
    lines,
    released,
    gate,
    pointedBack,
    watcher,
    setChat: (value: typeof chat) => {
      chat = value;
    },
    opened: () => changes.filter((c) => c.change === "opened").map((c) => c.problem.kind),
    resolved: () => changes.filter((c) => c.change === "resolved").map((c) => c.problem.kind),
  };
}

describe("the webhook check", () => {
  it("asks once a period, never before the first period is over", async () => {
    const t = setUp();
    t.watcher.start();
    await t.scheduler.advance(59_999);
    expect(t.fake.calls).toEqual([]);
    await t.scheduler.advance(1);
    expect(t.fake.calls).toEqual(["GET 7"]);
    await t.scheduler.advance(5 * 60_000);
    expect(t.fake.calls).toHaveLength(6);
    expect(t.changes).toEqual([]);
    t.watcher.stop();
  });

  it("a deleted webhook: one problem for as long as it lasts, resolved when it is back", async () => {
    const t = setUp();
    t.watcher.start();
    const webhook = t.fake.webhook;
    t.fake.webhook = undefined;
    await t.scheduler.advance(5 * 60_000);
    expect(t.opened()).toEqual(["webhook_missing"]);
    const problem = t.problems.list()[0];
    expect(problem?.since).toBe(t.scheduler.now() - 4 * 60_000);
    expect(problem?.action).toContain("`vast-gchat init`");
    t.fake.webhook = webhook;
    await t.scheduler.advance(60_000);
    expect(t.resolved()).toEqual(["webhook_missing"]);
    t.watcher.stop();
  });

  it("points a webhook found elsewhere back, with a warning and no problem", async () => {
    const t = setUp();
    t.watcher.start();
    if (t.fake.webhook) t.fake.webhook.webhook_url = "https://old-tunnel.example/";
    await t.scheduler.advance(60_000);
    expect(t.pointedBack).toEqual([URL_HERE]);
    const warning = t.lines.find((l) => l.msg === "webhook pointed elsewhere: pointing it back");
    expect(warning?.fields).toEqual({
      webhook_id: 7,
      found: "https://old-tunnel.example/",
      url: URL_HERE,
    });
    await t.scheduler.advance(60_000);
    expect(t.pointedBack).toHaveLength(1);
    expect(t.changes).toEqual([]);
    t.watcher.stop();
  });

  it("adds back a wanted type the webhook lost, keeping the ones it has, each once by slug", async () => {
    const t = setUp(
      {},
      { wantedTypes: () => ["client:low_credit", "outbid", "client:instance_stopped"] },
    );
    t.watcher.start();
    if (t.fake.webhook) t.fake.webhook.event_types = ["low_credit", "client:machine_offline"];
    await t.scheduler.advance(60_000);
    expect(t.fake.calls).toContain(
      `PUT 7 ${JSON.stringify({ event_types: ["low_credit", "client:machine_offline", "outbid", "client:instance_stopped"] })}`,
    );
    expect(t.messages()).toContain("webhook types restored");
    t.watcher.stop();
  });

  it("with --no-update-webhook: differences are told once each, never written", async () => {
    const t = setUp({}, { mayUpdate: false });
    t.watcher.start();
    if (t.fake.webhook) {
      t.fake.webhook.webhook_url = "https://elsewhere.example/";
      t.fake.webhook.event_types = ["client:low_credit"];
    }
    await t.scheduler.advance(3 * 60_000);
    expect(t.fake.calls.filter((call) => call.startsWith("PUT"))).toEqual([]);
    expect(t.pointedBack).toEqual([]);
    expect(t.messages().filter((m) => m.startsWith("webhook points elsewhere"))).toHaveLength(1);
    expect(t.messages().filter((m) => m.startsWith("webhook lacks types"))).toHaveLength(1);
    t.watcher.stop();
  });

  it("Vast.ai's API not answering is a warning, not a problem: the chain may be fine", async () => {
    const t = setUp();
    t.watcher.start();
    t.fake.findError = new VastApiError(
      "rate_limited",
      "The Vast.ai API is not answering right now (429).",
    );
    await t.scheduler.advance(2 * 60_000);
    expect(t.messages().filter((m) => m === "webhook check failed")).toHaveLength(2);
    expect(t.changes).toEqual([]);
    t.watcher.stop();
  });

  it("a check that takes longer than the period is not overlapped by the next", async () => {
    const t = setUp();
    let answer = () => {};
    const slow = t.fake.client.findWebhook;
    t.fake.client.findWebhook = async (id) => {
      await new Promise<void>((resolve) => (answer = resolve));
      return slow(id);
    };
    t.watcher.start();
    await t.scheduler.advance(10 * 60_000);
    expect(t.fake.calls).toEqual([]);
    answer();
    await t.scheduler.advance(0);
    expect(t.fake.calls).toEqual(["GET 7"]);
    t.watcher.stop();
  });
});

describe("the self-test", () => {
  function selfTesting(waitMs = 60_000) {
    return setUp({ checkEveryMs: 0, selfTestEveryMs: 60 * 60_000, selfTestWaitMs: waitMs });
  }

  it("its event comes back: ok, nothing opened, and the gate held it back", async () => {
    const t = selfTesting();
    t.fake.onTest = () => {
      expect(
        t.gate.claim({ eventId: "e1", notifType: "webhook_test", payload: "{}", receivedAt: 0 }),
      ).toBe(true);
    };
    t.watcher.start();
    await t.scheduler.advance(60 * 60_000);
    expect(t.fake.calls).toEqual(["TEST 7"]);
    expect(t.messages()).toContain("self-test ok");
    expect(t.changes).toEqual([]);
    expect(t.released).toEqual([]);
    t.watcher.stop();
  });

  it("Vast.ai answers 502: a problem, retried sooner, resolved by the next that passes", async () => {
    const t = selfTesting();
    t.fake.testAnswer = async () => {
      throw new VastApiError(
        "adapter_unreachable",
        "Vast.ai could not reach the adapter with its test event (502).",
        { status: 502 },
      );
    };
    t.watcher.start();
    await t.scheduler.advance(60 * 60_000);
    expect(t.opened()).toEqual(["self_test_failed"]);
    expect(t.problems.list()[0]?.title).toBe("Vast.ai cannot reach the adapter");
    // While it fails, every 5 min rather than every hour; still one problem.
    await t.scheduler.advance(15 * 60_000);
    expect(t.fake.calls.filter((c) => c === "TEST 7")).toHaveLength(4);
    expect(t.opened()).toEqual(["self_test_failed"]);
    t.fake.testAnswer = async () => ({ webhookId: 7, eventId: "e2" });
    t.fake.onTest = () => {
      t.gate.claim({ eventId: "e2", notifType: "webhook_test", payload: "{}", receivedAt: 0 });
    };
    await t.scheduler.advance(5 * 60_000);
    expect(t.resolved()).toEqual(["self_test_failed"]);
    // Back to the period.
    await t.scheduler.advance(30 * 60_000);
    expect(t.fake.calls.filter((c) => c === "TEST 7")).toHaveLength(5);
    t.watcher.stop();
  });

  it("the adapter refused it (400): a problem that says the secret most likely differs", async () => {
    const t = selfTesting();
    t.fake.testAnswer = async () => {
      throw new VastApiError("adapter_refused", "The adapter refused Vast.ai's test event (400).", {
        status: 400,
      });
    };
    t.watcher.start();
    await t.scheduler.advance(60 * 60_000);
    expect(t.problems.list()[0]).toMatchObject({
      kind: "self_test_failed",
      title: "The adapter refuses Vast.ai's events",
    });
    expect(t.problems.list()[0]?.summary).toContain("signing secret");
    t.watcher.stop();
  });

  it("its event never arrives: a problem once the wait from the call is over", async () => {
    const t = selfTesting(60_000);
    t.watcher.start();
    await t.scheduler.advance(60 * 60_000 + 59_999);
    expect(t.changes).toEqual([]);
    await t.scheduler.advance(1);
    expect(t.opened()).toEqual(["self_test_failed"]);
    expect(t.problems.list()[0]?.summary).toContain("(event e1)");
    t.watcher.stop();
  });

  it("the test call answers 404: the webhook is gone", async () => {
    const t = selfTesting();
    t.fake.testAnswer = async () => {
      throw new VastApiError("not_found", "The webhook 7 no longer exists on Vast.ai.", {
        status: 404,
      });
    };
    t.watcher.start();
    await t.scheduler.advance(60 * 60_000);
    expect(t.opened()).toEqual(["webhook_missing"]);
    t.watcher.stop();
  });

  it("no public URL yet: no test call", async () => {
    const t = setUp({ checkEveryMs: 0, selfTestEveryMs: 60_000 }, { expectedUrl: () => undefined });
    t.watcher.start();
    await t.scheduler.advance(5 * 60_000);
    expect(t.fake.calls).toEqual([]);
    t.watcher.stop();
  });
});

describe("thresholds", () => {
  it("the tunnel failing for over 2 min: a problem that began at the first failure, resolved by a good probe", async () => {
    const t = setUp({ checkEveryMs: 0 });
    t.watcher.start();
    const failedAt = t.scheduler.now();
    t.watcher.tunnel.failed("the tunnel answered 530 without reaching this adapter");
    await t.scheduler.advance(119_000);
    t.watcher.tunnel.failed("could not reach the tunnel (ECONNREFUSED)");
    expect(t.changes).toEqual([]);
    await t.scheduler.advance(13_000);
    expect(t.opened()).toEqual(["tunnel_unreachable"]);
    expect(t.problems.list()[0]?.since).toBe(failedAt);
    expect(t.problems.list()[0]?.summary).toContain("ECONNREFUSED");
    t.watcher.tunnel.ok();
    await t.scheduler.advance(13_000);
    expect(t.resolved()).toEqual(["tunnel_unreachable"]);
    t.watcher.stop();
  });

  it("a tunnel lost and back within the threshold is no problem", async () => {
    const t = setUp({ checkEveryMs: 0 });
    t.watcher.start();
    t.watcher.tunnel.failed("the tunnel process exited");
    await t.scheduler.advance(30_000);
    t.watcher.tunnel.ok();
    await t.scheduler.advance(10 * 60_000);
    expect(t.changes).toEqual([]);
    t.watcher.stop();
  });

  it("Chat failing every post for over 10 min, read from the worker's health", async () => {
    const t = setUp({ checkEveryMs: 0 });
    t.watcher.start();
    t.setChat({ since: t.scheduler.now(), reason: "Chat answered 503" });
    await t.scheduler.advance(9 * 60_000);
    expect(t.changes).toEqual([]);
    await t.scheduler.advance(61_000);
    expect(t.opened()).toEqual(["chat_refusing"]);
    t.setChat(null);
    await t.scheduler.advance(30_000);
    expect(t.resolved()).toEqual(["chat_refusing"]);
    t.watcher.stop();
  });
});

it("stop() cancels every timer, and a wait under way", async () => {
  const t = setUp({ checkEveryMs: 60_000, selfTestEveryMs: 60_000, selfTestWaitMs: 60_000 });
  t.fake.testAnswer = async () => ({ webhookId: 7, eventId: "never" });
  t.watcher.start();
  await t.scheduler.advance(61_000);
  expect(t.scheduler.pending).toBeGreaterThan(0);
  t.watcher.stop();
  expect(t.scheduler.pending).toBe(0);
  await t.scheduler.advance(60 * 60_000);
  expect(t.changes).toEqual([]);
});
