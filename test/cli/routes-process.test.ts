import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SqliteDriverName } from "../../src/delivery/sqlite/sqlite-driver.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { SQLITE_DRIVERS_HERE } from "../delivery/sqlite/drivers.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import type { ReceivedMessage } from "../support/fake-chat.js";
import { postSigned } from "../support/sign.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * Routes as a user drives them (issue 16), with real processes and a config directory: `init`,
 * `route add`, then `serve` as a child process delivering to the fake Chat's spaces, and the
 * commands that look at it and act on it (`route list`, `events`, `status`) as processes too. Then
 * `serve` killed with SIGKILL in the middle of a burst that goes to three spaces.
 */
const DEFAULT_SPACE = "AAAAfakeSpace";
const BILLING_SPACE = "BBBBbilling";
const OPS_SPACE = "CCCCops";

let world: World;
const running: CliProcess[] = [];

beforeEach(async () => {
  world = await startWorld();
});

afterEach(async () => {
  for (const cli of running.splice(0)) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
    await cli.exited;
  }
  await world.close();
});

function messagesTo(space: string): ReceivedMessage[] {
  return world.chat.messages.filter((message) => message.space === space);
}

function textOf(message: ReceivedMessage): string {
  return String(message.body.fallbackText ?? message.body.text);
}

/** init (its webhook pointing at a loopback port serve will take) and routes, all as processes. */
async function setUp(routes: Array<{ name: string; types: string; space: string }>) {
  const port = await freeLoopbackPort();
  const init = await world.runProcess(
    initArgs(world, "--public-url", `http://127.0.0.1:${port}`, "--port", String(port)),
    {},
    API_KEY,
  );
  expect(init.code, init.stderr).toBe(0);
  for (const route of routes) {
    const added = await world.runProcess(
      ["route", "add", route.name, "--types", route.types, "--chat-url-stdin"],
      {},
      `${world.chat.webhookUrl(route.space)}\n`,
    );
    expect(added.code, added.stderr).toBe(0);
  }
  // The check messages init and route add posted are not what the tests count.
  world.chat.messages.splice(0);
  const secret = world.vast.secretOf(world.vast.webhooks()[0]?.id ?? -1) ?? "";
  return { url: `http://127.0.0.1:${port}/`, secret };
}

async function startServe(extra: Record<string, string> = {}): Promise<CliProcess> {
  const serve = spawnCli(["serve"], world.env(extra));
  running.push(serve);
  await serve.waitForLog((record) => record.msg === "ready");
  return serve;
}

function json<T>(result: { code: number | null; stdout: string; stderr: string }): T {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe("routes through a serve process", () => {
  it("delivers each event to its routes' spaces; a 404 space dead-letters only its own; events, route list, status and retry-dead --route show and mend it", async () => {
    const { url, secret } = await setUp([{ name: "ops", types: "instance", space: OPS_SPACE }]);
    // The ops space's webhook was deleted.
    world.chat.spaceBehaviour.set(OPS_SPACE, { kind: "status", status: 404 });
    const serve = await startServe();

    const stopped = Array.from({ length: 3 }, (_, i) =>
      sampleEvent("instance_stopped", { subject: `stopped ${i}` }),
    );
    const credit = sampleEvent("low_credit", { subject: "credit low" });
    for (const event of [...stopped, credit]) {
      expect((await postSigned(url, secret, event)).status).toBe(200);
    }
    for (const event of stopped) {
      await serve.waitForLog(
        (r) => r.msg === "dead" && r.route === "ops" && r.event_id === event.event_id,
      );
    }
    for (const event of [...stopped, credit]) {
      await serve.waitForLog(
        (r) => r.msg === "delivered" && r.route === "default" && r.event_id === event.event_id,
      );
    }
    const defaultText = messagesTo(DEFAULT_SPACE).map(textOf).join("\n");
    for (const event of [...stopped, credit]) expect(defaultText).toContain(event.subject);
    expect(messagesTo(OPS_SPACE)).toEqual([]);

    // route list: each route's own counts.
    const routes = json<{ routes: Array<{ name: string; counts: unknown }> }>(
      await world.runProcess(["route", "list", "--json"]),
    ).routes;
    expect(Object.fromEntries(routes.map((route) => [route.name, route.counts]))).toEqual({
      default: { pending: 0, delivered: 4, dead: 0 },
      ops: { pending: 0, delivered: 0, dead: 3 },
    });

    // events: a line per delivery; --state and --route pick them; show has every route's state.
    const dead = json<{ events: Array<{ event_id: string; route: string; state: string }> }>(
      await world.runProcess(["events", "list", "--state", "dead", "--json"]),
    ).events;
    expect(dead.map((row) => [row.route, row.state])).toEqual([
      ["ops", "dead"],
      ["ops", "dead"],
      ["ops", "dead"],
    ]);
    const table = await world.runProcess(["events", "--route", "ops"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^\S+\s+.*stopped 0\s+ops\s+dead\s+1\s+-\s+Chat answered 404/m);
    expect(table.stdout).toContain("For the route ops: 0 pending, 0 delivered, 3 dead.");
    expect(table.stdout).toContain("`vast-gchat events retry-dead --route ops`");
    const shown = json<{ event: { state: string; deliveries: unknown[] } }>(
      await world.runProcess(["events", "show", stopped[0]?.event_id ?? "", "--json"]),
    ).event;
    expect(shown.state).toBe("dead");
    expect(shown.deliveries).toMatchObject([
      { route: "default", state: "delivered", attempts: 1 },
      { route: "ops", state: "dead", attempts: 1, last_error: expect.stringContaining("404") },
    ]);

    // status: each route's queue, from the running adapter.
    const status = json<{ routes: Array<{ name: string; queue: unknown }> }>(
      await world.runProcess(["status", "--json"]),
    );
    expect(Object.fromEntries(status.routes.map((route) => [route.name, route.queue]))).toEqual({
      default: expect.objectContaining({ pending: 0, dead: 0 }),
      ops: expect.objectContaining({ pending: 0, dead: 3 }),
    });

    // A route that is not there: exit 2, and nothing requeued.
    const typo = await world.runProcess(["events", "retry-dead", "--route", "opz"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("There is no route opz.");
    expect(typo.stderr).toContain("The routes here: default, ops");

    // The space is mended: ops's dead letters go again, to ops only.
    world.chat.spaceBehaviour.delete(OPS_SPACE);
    const before = messagesTo(DEFAULT_SPACE).length;
    const retried = json<{ requeued: number; route: string }>(
      await world.runProcess(["events", "retry-dead", "--route", "ops", "--json"]),
    );
    expect(retried).toEqual({ requeued: 3, route: "ops" });
    for (const event of stopped) {
      await serve.waitForLog(
        (r) => r.msg === "delivered" && r.route === "ops" && r.event_id === event.event_id,
      );
    }
    const opsText = messagesTo(OPS_SPACE).map(textOf).join("\n");
    for (const event of stopped) expect(opsText.split(event.subject)).toHaveLength(2);
    expect(messagesTo(DEFAULT_SPACE)).toHaveLength(before);

    // Replay to one route, even one the event never went to.
    const replayed = await world.runProcess(
      ["events", "replay", credit.event_id, "--route", "ops"],
      {},
    );
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toContain(
      `Queued event ${credit.event_id} again for the route ops (it had not gone there).`,
    );
    await serve.waitForLog(
      (r) => r.msg === "delivered" && r.route === "ops" && r.event_id === credit.event_id,
    );
    expect(messagesTo(DEFAULT_SPACE)).toHaveLength(before);

    serve.child.kill("SIGTERM");
    expect((await serve.exited).code).toBe(0);
  });

  it("reads the stored routes with VAST_WEBHOOK_SECRET and GOOGLE_CHAT_URL set: the URL is default's only", async () => {
    const { url, secret } = await setUp([
      { name: "billing", types: "billing", space: BILLING_SPACE },
    ]);
    // On the environment alone serve takes nothing else stored: its port comes from PORT.
    const serve = await startServe({
      VAST_WEBHOOK_SECRET: secret,
      GOOGLE_CHAT_URL: world.chat.webhookUrl("DDDDfromEnv"),
      PORT: new URL(url).port,
    });
    const ready = await serve.waitForLog((record) => record.msg === "ready");
    expect(ready.routes).toEqual({
      default: expect.stringContaining("spaces/DDDDfromEnv"),
      billing: expect.stringContaining("spaces/BBBBbilling"),
    });
    const credit = sampleEvent("low_credit", { subject: "credit low" });
    await postSigned(url, secret, credit);
    for (const route of ["default", "billing"]) {
      await serve.waitForLog(
        (r) => r.msg === "delivered" && r.route === route && r.event_id === credit.event_id,
      );
    }
    expect(messagesTo("DDDDfromEnv")).toHaveLength(1);
    expect(messagesTo(BILLING_SPACE)).toHaveLength(1);
    expect(messagesTo(DEFAULT_SPACE)).toEqual([]);
  });
});

/**
 * kill -9 in the middle of a burst routed to three spaces, once on each SQLite driver this Node
 * has: every acknowledged event reaches every space it is routed to; a space sees at most the one
 * post that was under way at the kill again, under the very requestId it first had.
 */
describe.each(SQLITE_DRIVERS_HERE)(
  "serve killed during a routed burst, its store on %s",
  (driver) => {
    it("loses nothing and repeats at most one post per space, under the same requestId", async () => {
      const { url, secret } = await setUp([
        { name: "billing", types: "billing", space: BILLING_SPACE },
        { name: "ops", types: "outbid,instance_stopped", space: OPS_SPACE },
      ]);
      const env = { VAST_GCHAT_SQLITE_DRIVER: driver satisfies SqliteDriverName };
      // Chat takes a while to answer, and a message a second per space: posts are under way.
      world.chat.ratePerSecond = 1;
      world.chat.behaviour = { kind: "ok", delayMs: 300 };
      const first = await startServe(env);

      const kinds = [
        ["low_credit", [DEFAULT_SPACE, BILLING_SPACE]],
        ["outbid", [DEFAULT_SPACE, OPS_SPACE]],
        ["instance_created", [DEFAULT_SPACE]],
      ] as const;
      const burst = Array.from({ length: 60 }, (_, i) => {
        const [type, spaces] = kinds[i % 3] as (typeof kinds)[number];
        return {
          spaces,
          event: sampleEvent(type, { subject: `routed ${String(i).padStart(3, "0")}` }),
        };
      });
      const answers = await Promise.all(burst.map(({ event }) => postSigned(url, secret, event)));
      expect(answers.every((answer) => answer.status === 200)).toBe(true);
      // Some spaces have their first post, others have one under way: now.
      await world.chat.waitFor((chat) => chat.requests >= 3);
      first.child.kill("SIGKILL");
      expect((await first.exited).signal).toBe("SIGKILL");

      world.chat.behaviour = { kind: "ok" };
      const second = await startServe(env);
      const arrived = () =>
        burst.every(({ event, spaces }) =>
          spaces.every((space) => messagesTo(space).some((m) => textOf(m).includes(event.subject))),
        );
      await world.chat.waitFor(arrived, 60_000);

      for (const space of [DEFAULT_SPACE, BILLING_SPACE, OPS_SPACE]) {
        const messages = messagesTo(space);
        // Every event of this space is in messages of one requestId only: a repeat is the same post.
        for (const { event, spaces } of burst) {
          const ids = new Set(
            messages
              .filter((m) => textOf(m).includes(event.subject))
              .map((m) => m.query.get("requestId")),
          );
          expect(ids.size, `${event.subject} in ${space}`).toBe(
            (spaces as readonly string[]).includes(space) ? 1 : 0,
          );
        }
        // At most one post went twice here (the one under way at the kill).
        const requestIds = messages.map((m) => m.query.get("requestId"));
        expect(requestIds.length - new Set(requestIds).size, space).toBeLessThanOrEqual(1);
      }
      second.child.kill("SIGTERM");
      expect((await second.exited).code).toBe(0);
    });
  },
);
