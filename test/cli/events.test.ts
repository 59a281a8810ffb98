import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventStore } from "../../src/delivery/event-store.js";
import { openEventStore } from "../../src/delivery/open-store.js";
import {
  type AdapterFixture,
  SECRET,
  startAdapterFixture,
  waitForAdapterEvent,
} from "../support/adapter-fixture.js";
import { cleanEnv, runCli } from "../support/cli-process.js";
import { runInProcess } from "../support/run-program.js";
import { postSigned } from "../support/sign.js";

/**
 * `events` against a real SQLite file: a store filled directly (every state, attempts, digests),
 * and an adapter whose worker delivers what the CLI queues again on its own connection to the
 * store (once from another process, as `events replay` beside a running serve is).
 */

const envFor = (dir: string) => cleanEnv({ VAST_GCHAT_CONFIG_DIR: dir });

interface ListedEvent {
  event_id: string;
  type: string | null;
  subject: string;
  state: string;
  attempts: number;
  received_at: string;
  next_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
}

function payload(id: string, type: string, subject: string, extra: object = {}): string {
  return JSON.stringify({
    event_id: id,
    user_id: 7,
    notif_type: type,
    subject,
    message: `Message of ${id}`,
    timestamp: 1_700_000_000,
    ...extra,
  });
}

describe("events against a store on disk", () => {
  let dir: string;
  let store: EventStore;
  const t0 = Date.parse("2025-03-01T10:00:00Z");
  const longSubject = `Instance 4242 stopped: ${"x".repeat(120)}`;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "vast-gchat-events-"));
    store = await openEventStore(join(dir, "events.db"));
    const accept = (id: string, type: string, subject: string, at: number) =>
      store.accept({
        eventId: id,
        notifType: type,
        payload: payload(id, type, subject),
        receivedAt: at,
        routes: ["default"],
      });
    await accept("ev-delivered", "client:low_credit", "Credit Balance Is Getting Low", t0);
    await accept("ev-dead", "client:instance_stopped", longSubject, t0 + 1000);
    await accept("ev-pending", "client:outbid", "You were outbid", t0 + 2000);
    const seqOf = async (id: string) => (await store.get(id))?.seq as number;
    const [delivered, dead, pending] = [
      await seqOf("ev-delivered"),
      await seqOf("ev-dead"),
      await seqOf("ev-pending"),
    ];
    // ev-delivered: a 429, then delivered in a digest of three.
    await store.recordOutcome("default", {
      post: { at: t0 + 100, status: 429, carried: 1 },
      retry: {
        seqs: [delivered],
        nextAttemptAt: t0 + 600,
        error: "Chat answered 429 RESOURCE_EXHAUSTED",
      },
      clearPosting: true,
    });
    await store.recordOutcome("default", {
      post: { at: t0 + 700, status: 200, carried: 3 },
      delivered: [delivered],
      clearPosting: true,
    });
    await store.recordOutcome("default", {
      post: { at: t0 + 1100, status: 400, carried: 1 },
      dead: { seqs: [dead], error: "Chat refused it: 400 INVALID_ARGUMENT" },
      clearPosting: true,
    });
    // ev-pending: failed once, next attempt far in the future.
    await store.recordOutcome("default", {
      post: { at: t0 + 2100, carried: 1 },
      retry: {
        seqs: [pending],
        nextAttemptAt: Date.now() + 3_600_000,
        error: "could not post: ECONNREFUSED",
      },
      clearPosting: true,
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists events newest first as a table with state, attempts, next attempt and last error", async () => {
    const result = await runInProcess(["events"], envFor(dir));
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^ID\s+RECEIVED\s+TYPE\s+SUBJECT\s+ROUTE\s+STATE\s+ATTEMPTS\s+NEXT\s+LAST ERROR$/,
    );
    expect(lines[1]).toMatch(
      /^ev-pending\s+2025-03-0\d \d\d:\d\d:02\s+client:outbid\s+You were outbid\s+default\s+pending\s+1\s+in (59m|1h 0m)/,
    );
    expect(lines[1]).toContain("could not post: ECONNREFUSED");
    expect(lines[2]).toMatch(
      /^ev-dead\s+.*\s+dead\s+1\s+-\s+Chat refused it: 400 INVALID_ARGUMENT$/,
    );
    expect(lines[3]).toMatch(
      /^ev-delivered\s+.*client:low_credit\s+Credit Balance Is Getting Low\s+default\s+delivered\s+2\s+-\s+-$/,
    );
    // The subject is cut, on one line.
    expect(lines[2]).toContain("Instance 4242 stopped: xxx");
    expect(lines[2]).not.toContain("x".repeat(100));
    // Columns line up: STATE starts at the same place on every row.
    const stateColumn = (lines[0] ?? "").indexOf("STATE");
    expect(lines[1]?.slice(stateColumn, stateColumn + 7)).toBe("pending");
    expect(lines[2]?.slice(stateColumn, stateColumn + 4)).toBe("dead");
    expect(lines[3]?.slice(stateColumn, stateColumn + 9)).toBe("delivered");
    expect(result.stdout).toContain("1 pending, 1 delivered, 1 dead");
  });

  it("--json prints one document with ISO times", async () => {
    const result = await runInProcess(["events", "--json"], envFor(dir));
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { events: ListedEvent[]; counts: object };
    expect(doc.events.map((event) => event.event_id)).toEqual([
      "ev-pending",
      "ev-dead",
      "ev-delivered",
    ]);
    expect(doc.events[2]).toMatchObject({
      type: "client:low_credit",
      subject: "Credit Balance Is Getting Low",
      state: "delivered",
      attempts: 2,
      received_at: "2025-03-01T10:00:00.000Z",
      next_attempt_at: null,
      delivered_at: "2025-03-01T10:00:00.700Z",
      last_error: null,
    });
    expect(doc.events[0]?.next_attempt_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(doc.events[1]?.last_error).toBe("Chat refused it: 400 INVALID_ARGUMENT");
    expect(doc.counts).toEqual({ pending: 1, delivered: 1, dead: 1 });
  });

  it("--state filters, --limit bounds the list", async () => {
    const dead = await runInProcess(["events", "--state", "dead", "--json"], envFor(dir));
    expect(dead.code).toBe(0);
    const doc = JSON.parse(dead.stdout) as { events: ListedEvent[] };
    expect(doc.events.map((event) => [event.event_id, event.state])).toEqual([["ev-dead", "dead"]]);

    const limited = await runInProcess(["events", "list", "--limit", "2"], envFor(dir));
    expect(limited.code).toBe(0);
    expect(limited.stdout).toContain("ev-pending");
    expect(limited.stdout).toContain("ev-dead");
    expect(limited.stdout).not.toContain("ev-delivered");
    expect(limited.stdout).toContain("Newest 2 of 3");
  });

  it("prints nothing from an event that could steer the terminal", async () => {
    // Set the window title, plant an OSC 8 hyperlink, clear the screen, reverse the text.
    const hostile =
      "\u001b]0;pwned\u0007\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\\u001b[2J\u009b31m\u202Eevil";
    await store.accept({
      eventId: `ev-\u001b[2Jhostile`,
      notifType: `type\u001b[31m`,
      payload: payload("ev-hostile", "client:outbid", hostile),
      receivedAt: t0 + 3000,
      routes: ["default"],
    });
    const list = await runInProcess(["events"], envFor(dir));
    const show = await runInProcess(["events", "show", "ev-\u001b[2Jhostile"], envFor(dir));
    expect(show.code).toBe(0);
    for (const output of [list.stdout, show.stdout]) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
      expect(output).not.toMatch(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E]/);
      expect(output).toContain("\\u001b]0;pwned\\u0007");
    }
  });

  it("shows one event with its payload and every attempt", async () => {
    const result = await runInProcess(["events", "show", "ev-delivered"], envFor(dir));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Event\s+ev-delivered$/m);
    expect(result.stdout).toMatch(/^State\s+delivered$/m);
    expect(result.stdout).toMatch(/^Attempts\s+2$/m);
    // The payload, pretty-printed.
    expect(result.stdout).toContain('    "subject": "Credit Balance Is Getting Low",');
    expect(result.stdout).toMatch(/retry\s+429\s+1 event\s+Chat answered 429 RESOURCE_EXHAUSTED/);
    expect(result.stdout).toMatch(/delivered\s+200\s+digest of 3/);

    const json = await runInProcess(["events", "show", "ev-delivered", "--json"], envFor(dir));
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      event: ListedEvent & { payload: Record<string, unknown>; attempts: unknown[] };
    };
    expect(doc.event.payload).toMatchObject({ event_id: "ev-delivered", user_id: 7 });
    expect(doc.event.attempts).toEqual([
      {
        route: "default",
        at: "2025-03-01T10:00:00.100Z",
        outcome: "retry",
        status: 429,
        error: "Chat answered 429 RESOURCE_EXHAUSTED",
        carried: 1,
      },
      {
        route: "default",
        at: "2025-03-01T10:00:00.700Z",
        outcome: "delivered",
        status: 200,
        error: null,
        carried: 3,
      },
    ]);
  });

  it("replays a delivered event: it is pending again", async () => {
    const result = await runInProcess(["events", "replay", "ev-delivered"], envFor(dir));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Queued event ev-delivered again (it was delivered).");
    expect(result.stdout).toContain("`vast-gchat serve` delivers it");
    const event = await store.get("ev-delivered");
    expect(event?.state).toBe("pending");
    expect(event?.deliveredAt).toBeNull();
    expect(event?.nextAttemptAt).toBeLessThanOrEqual(Date.now());
  });

  it("retry-dead queues every dead letter again and says how many; 0 is fine", async () => {
    const first = await runInProcess(["events", "retry-dead", "--json"], envFor(dir));
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ requeued: 1 });
    expect((await store.get("ev-dead"))?.state).toBe("pending");
    expect((await store.stats()).dead).toBe(0);

    const again = await runInProcess(["events", "retry-dead"], envFor(dir));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("No dead letters to retry.");
  });

  it("an unknown id exits 1 with a hint to list the events", async () => {
    for (const action of ["show", "replay"]) {
      const result = await runInProcess(["events", action, "no-such-event"], envFor(dir));
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(
        "Error: No event with id no-such-event.\nRun `vast-gchat events` to see the recent ones.\n",
      );
    }
  });

  it("a bad --state, a missing id, an unknown action or a bad --limit exits 2", async () => {
    const badState = await runInProcess(["events", "--state", "lost"], envFor(dir));
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain("Allowed choices are pending, delivered, dead");

    const noId = await runInProcess(["events", "show"], envFor(dir));
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain("missing required argument 'id'");

    const unknown = await runInProcess(["events", "forget"], envFor(dir));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/too many arguments|unknown command 'forget'/);

    const idForList = await runInProcess(["events", "retry-dead", "ev-dead"], envFor(dir));
    expect(idForList.code).toBe(2);

    const stateForShow = await runInProcess(
      ["events", "show", "ev-dead", "--state", "dead"],
      envFor(dir),
    );
    expect(stateForShow.code).toBe(2);

    for (const limit of ["0", "2.5", "many"]) {
      const badLimit = await runInProcess(["events", "--limit", limit], envFor(dir));
      expect(badLimit.code).toBe(2);
      expect(badLimit.stderr).toContain(
        `option '--limit <n>' argument '${limit}' is invalid. It must be a whole number of at least 1.`,
      );
    }
  });
});

describe("events with an empty config directory", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vast-gchat-events-empty-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists nothing without creating a store; replay and retry-dead exit 1", async () => {
    const list = await runInProcess(["events"], envFor(dir));
    expect(list.code).toBe(0);
    expect(list.stdout).toBe("No events yet.\n");
    const json = await runInProcess(["events", "--json"], envFor(dir));
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ events: [] });
    expect(existsSync(join(dir, "events.db"))).toBe(false);

    const replay = await runInProcess(["events", "replay", "abc"], envFor(dir));
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/^Error: No events yet\.\n/);
    const retry = await runInProcess(["events", "retry-dead"], envFor(dir));
    expect(retry.code).toBe(1);
    expect(retry.stderr).toMatch(/^Error: No events yet\.\n/);
    const show = await runInProcess(["events", "show", "abc"], envFor(dir));
    expect(show.code).toBe(1);
    expect(show.stderr).toMatch(/^Error: No event with id abc\.\n/);
    expect(existsSync(join(dir, "events.db"))).toBe(false);
  });
});

describe("events while the adapter runs on the same store", () => {
  let fx: AdapterFixture;
  beforeEach(async () => {
    fx = await startAdapterFixture();
  });
  afterEach(async () => {
    await fx.close();
  });

  const send = async (id: string, subject: string) => {
    const answer = await postSigned(
      fx.url,
      SECRET,
      JSON.parse(payload(id, "client:low_credit", subject)),
    );
    expect(answer.status).toBe(200);
  };

  it("replays a delivered event: the adapter's worker delivers it again", async () => {
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", "ev-live-1");
    await send("ev-live-1", "First delivery");
    await delivered;
    await fx.chat.waitForMessages(1);

    const listed = await runInProcess(["events", "--json"], envFor(fx.dir));
    expect(listed.code).toBe(0);
    const doc = JSON.parse(listed.stdout) as { events: ListedEvent[] };
    expect(doc.events).toMatchObject([{ event_id: "ev-live-1", state: "delivered", attempts: 1 }]);

    const again = waitForAdapterEvent(fx.adapter, "delivered", "ev-live-1", 20_000);
    // From another process: the worker learns of it only from the store.
    const replay = await runCli(["events", "replay", "ev-live-1"], envFor(fx.dir));
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain("Queued event ev-live-1 again (it was delivered).");
    await fx.chat.waitForMessages(2, 20_000);
    expect(JSON.stringify(fx.chat.messages[1]?.body)).toContain("First delivery");
    await again;
    const shown = await runInProcess(["events", "show", "ev-live-1", "--json"], envFor(fx.dir));
    const record = JSON.parse(shown.stdout) as {
      event: { state: string; attempts: Array<{ outcome: string }> };
    };
    expect(record.event.state).toBe("delivered");
    expect(record.event.attempts.map((attempt) => attempt.outcome)).toEqual([
      "delivered",
      "delivered",
    ]);
  });

  it("a dead letter is retried with retry-dead and delivered once Chat accepts", async () => {
    fx.chat.behaviour = { kind: "status", status: 400 };
    const dead = waitForAdapterEvent(fx.adapter, "dead", "ev-live-dead");
    await send("ev-live-dead", "Refused at first");
    await dead;

    const listed = await runInProcess(["events", "--state", "dead"], envFor(fx.dir));
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ev-live-dead\s+.*\s+dead\s+1\s+-\s+\S.*400/m);
    expect(fx.chat.messages).toHaveLength(0);

    fx.chat.behaviour = { kind: "ok" };
    const delivered = waitForAdapterEvent(fx.adapter, "delivered", "ev-live-dead", 20_000);
    const retry = await runInProcess(["events", "retry-dead"], envFor(fx.dir));
    expect(retry.code).toBe(0);
    expect(retry.stdout).toContain("Queued 1 dead letter again.");
    await fx.chat.waitForMessages(1, 20_000);
    expect(JSON.stringify(fx.chat.messages[0]?.body)).toContain("Refused at first");

    await delivered;

    const show = await runInProcess(["events", "show", "ev-live-dead", "--json"], envFor(fx.dir));
    const doc = JSON.parse(show.stdout) as {
      event: { state: string; attempts: Array<{ outcome: string; status: number | null }> };
    };
    expect(doc.event.state).toBe("delivered");
    expect(doc.event.attempts.map((attempt) => [attempt.outcome, attempt.status])).toEqual([
      ["dead", 400],
      ["delivered", 200],
    ]);
  });
});
