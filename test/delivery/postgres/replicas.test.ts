import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../../src/tunnel/free-port.js";
import { sampleEvent } from "../../../src/vast/sample-events.js";
import { type CliProcess, cleanEnv, spawnCli } from "../../support/cli-process.js";
import { FakeChat } from "../../support/fake-chat.js";
import { SKIP_POSTGRES } from "../../support/postgres-cluster.js";
import { type RoundRobinProxy, startRoundRobinProxy } from "../../support/round-robin-proxy.js";
import { postSigned } from "../../support/sign.js";
import { API_KEY, startWorld, type World } from "../../support/world.js";
import { usePostgresCluster } from "./backend.js";

/**
 * Replicas of `serve` as users run them: real processes on one PostgreSQL database, behind a
 * round-robin proxy (the user's own URL). Whatever the number of replicas, nothing acknowledged is
 * lost or doubled: a repeat reaching the other replica is a duplicate, a replica killed mid-burst
 * costs at most the one post it had in flight, the space never gets over one message a second,
 * PostgreSQL going away is 503 (retried) and recovered from, and only the leader keeps the webhook
 * pointed, another taking over when it dies.
 */
const SECRET = "whsec-replicas-1a2b3c4d5e";
/** Short, so a killed replica's route is taken over within the test's patience. */
const CLAIM_TTL_MS = 3000;

type OutbidEvent = ReturnType<typeof sampleEvent> & { subject: string; event_id: string };

describe.skipIf(SKIP_POSTGRES)("replicas of serve on one PostgreSQL store", () => {
  const cluster = usePostgresCluster();
  let storeUrl: string;
  let chat: FakeChat;
  let dir: string;
  const running: CliProcess[] = [];

  beforeEach(async () => {
    if (!cluster().running) await cluster().start();
    storeUrl = await cluster().createDatabase();
    chat = await FakeChat.start();
    // Chat's own limit: a post within a second of the last one is refused with 429.
    chat.ratePerSecond = 1;
    dir = mkdtempSync(join(tmpdir(), "vast-gchat-replicas-"));
  });

  afterEach(async () => {
    for (const cli of running.splice(0)) {
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
      await cli.exited;
    }
    await chat.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function replicaEnv(name: string, extra: Record<string, string> = {}) {
    return cleanEnv({
      VAST_WEBHOOK_SECRET: SECRET,
      GOOGLE_CHAT_URL: chat.webhookUrl(),
      VAST_GCHAT_CONFIG_DIR: join(dir, name),
      VAST_GCHAT_STORE: storeUrl,
      VAST_GCHAT_CLAIM_TTL_MS: String(CLAIM_TTL_MS),
      VAST_GCHAT_LEADER_POLL_MS: "300",
      ...extra,
    });
  }

  async function startReplica(name: string, port: number, publicUrl: string) {
    const cli = spawnCli(
      ["serve", "--port", String(port), "--public-url", publicUrl],
      replicaEnv(name),
    );
    running.push(cli);
    await cli.waitForLog((r) => r.msg === "ready", 30_000);
    return cli;
  }

  /** As Vast.ai delivers: retried on 5xx and on a connection refused, until acknowledged. */
  async function deliver(url: string, event: OutbidEvent, deadline = Date.now() + 30_000) {
    const statuses: number[] = [];
    for (;;) {
      try {
        const answer = await postSigned(url, SECRET, event);
        statuses.push(answer.status);
        if (answer.status === 200) return { body: answer.body, statuses };
      } catch {
        statuses.push(0);
      }
      if (Date.now() > deadline) throw new Error(`not acknowledged: ${statuses.join(",")}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  const texts = () => chat.messages.map((m) => String(m.body.fallbackText ?? m.body.text));
  const inChat = (events: OutbidEvent[]) => {
    const all = texts().join("\n");
    return events.every((event) => all.includes(event.subject));
  };
  /** Posts Chat received twice: the same requestId, the same events (a crash between post and record). */
  const repeatedPosts = () => {
    const seen = new Set<string>();
    let repeats = 0;
    for (const message of chat.messages) {
      const id = message.query.get("requestId") ?? "";
      if (seen.has(id)) repeats++;
      seen.add(id);
    }
    return repeats;
  };
  /** The pid of the replica that holds the route `default` (claims read host:pid:random). */
  const claimantPid = async () => {
    const client = new pg.Client({ connectionString: storeUrl });
    await client.connect();
    try {
      const row = await client.query<{ claimed_by: string }>(
        "SELECT claimed_by FROM vast_gchat.routes WHERE route = 'default'",
      );
      return Number(row.rows[0]?.claimed_by.split(":")[1]);
    } finally {
      await client.end();
    }
  };
  const burst = (prefix: string, n: number): OutbidEvent[] =>
    Array.from(
      { length: n },
      (_, i) =>
        sampleEvent("outbid", {
          subject: `${prefix} ${String(i).padStart(3, "0")}.`,
        }) as OutbidEvent,
    );

  it("takes a burst through both, answers repeats to the other replica as duplicates, survives one killed mid-burst: every acknowledged event in Chat, at most one repeat, never over 1 message/s", {
    timeout: 120_000,
  }, async () => {
    const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
    const backends = ports.map((port) => `http://127.0.0.1:${port}`);
    const proxy: RoundRobinProxy = await startRoundRobinProxy(backends);
    try {
      const replicas = [
        await startReplica("a", ports[0] as number, proxy.url),
        await startReplica("b", ports[1] as number, proxy.url),
      ];
      // Chat takes a moment to answer, so a replica can die with a post under way.
      chat.behaviour = { kind: "ok", delayMs: 300 };
      const events = burst("replica burst", 80);
      const acked: OutbidEvent[] = [];
      const send = async (batch: OutbidEvent[]) => {
        await Promise.all(
          batch.map(async (event) => {
            const { body } = await deliver(`${proxy.url}/`, event);
            expect(body.duplicate).toBe(false);
            acked.push(event);
          }),
        );
      };
      await send(events.slice(0, 40));
      // Vast.ai repeats some: whichever replica gets the repeat knows the id.
      for (const event of events.slice(0, 10)) {
        for (const backend of backends) {
          const repeat = await postSigned(`${backend}/`, SECRET, event);
          expect(repeat).toMatchObject({ status: 200, body: { duplicate: true } });
        }
      }
      // The replica draining the space is killed in the middle of the burst, with a post in
      // flight (Chat has the request and has not answered yet).
      await chat.waitFor((c) => c.requests > c.messages.length + c.throttled, 20_000);
      const claimant = await claimantPid();
      const victim = replicas.findIndex((cli) => cli.child.pid === claimant);
      expect(victim).toBeGreaterThanOrEqual(0);
      const killed = replicas[victim] as CliProcess;
      killed.child.kill("SIGKILL");
      await killed.exited;
      await send(events.slice(40, 70));
      replicas[victim] = await startReplica(
        victim === 0 ? "a" : "b",
        ports[victim] as number,
        proxy.url,
      );
      await send(events.slice(70));
      expect(acked).toHaveLength(80);

      await chat.waitFor(() => inChat(acked), 60_000);
      // Each event in one message, but for the one post in flight when the replica died.
      expect(repeatedPosts()).toBeLessThanOrEqual(1);
      const all = texts();
      const doubled = acked.filter(
        (event) => all.filter((text) => text.includes(event.subject)).length > 1,
      );
      if (repeatedPosts() === 0) expect(doubled).toEqual([]);
      // One message a second, both replicas together: Chat never had to refuse one.
      expect(chat.throttled).toBe(0);
      // Digests, not one message per event (nor one digest per replica).
      expect(chat.messages.length).toBeLessThan(acked.length / 2);
      expect(proxy.answered.every((n) => n > 0)).toBe(true);

      for (const cli of replicas) {
        cli.child.kill("SIGTERM");
        expect((await cli.exited).code).toBe(0);
        const output = cli.stdout() + cli.stderr();
        expect(output).not.toContain(cluster().password);
        expect(output).not.toContain(SECRET);
        expect(output).toContain('"store_kind":"postgresql (pg)"');
        expect(output).toContain(`"store":"postgresql://${cluster().user}:***@127.0.0.1:`);
      }
    } finally {
      await proxy.close();
    }
  });

  it("answers 503 while PostgreSQL is down, keeps running, and recovers by itself: nothing acknowledged is lost", {
    timeout: 120_000,
  }, async () => {
    const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
    const proxy = await startRoundRobinProxy(ports.map((port) => `http://127.0.0.1:${port}`));
    try {
      const replicas = [
        await startReplica("a", ports[0] as number, proxy.url),
        await startReplica("b", ports[1] as number, proxy.url),
      ];
      const events = burst("outage", 40);
      const statuses: number[] = [];
      const refused: OutbidEvent[] = [];
      // Load beside it: deliveries in parallel, each retried as Vast.ai would until kept.
      const background = burst("background", 30);
      let loading: Promise<unknown> = Promise.resolve();
      for (const [i, event] of events.entries()) {
        if (i === 8) {
          loading = Promise.all(
            background.map((other) => deliver(`${proxy.url}/`, other, Date.now() + 60_000)),
          );
        }
        if (i === 10) await cluster().stop("fast");
        if (i === 25) await cluster().start();
        if (i >= 10 && i < 25) {
          // While it is down: refused with 503 (Vast.ai retries), quickly, never acknowledged.
          const started = Date.now();
          const answer = await postSigned(`${proxy.url}/`, SECRET, event);
          statuses.push(answer.status);
          expect(answer.status).toBe(503);
          expect(answer.body).toEqual({ ok: false, error: "unavailable" });
          expect(Date.now() - started).toBeLessThan(5000);
          refused.push(event);
        } else {
          // Vast.ai's retries of what was refused, and the events that follow, until kept.
          for (const retried of refused.splice(0)) await deliver(`${proxy.url}/`, retried);
          statuses.push(...(await deliver(`${proxy.url}/`, event)).statuses);
        }
      }
      expect(statuses.filter((status) => status === 503)).toHaveLength(15);
      await loading;
      await chat.waitFor(() => inChat([...events, ...background]), 60_000);
      // Metrics and the detailed health read the shared store, recovered: an empty queue.
      for (const cli of replicas) {
        const admin = String((await cli.waitForLog((r) => r.msg === "ready")).admin_url);
        const metrics = () => fetch(`${admin}/metrics`).then((answer) => answer.text());
        // The last outcome is recorded a moment after Chat has the message.
        await expect
          .poll(metrics, { timeout: 10_000 })
          .toMatch(/^vast_gchat_queue_depth(\{[^}]*\})? 0$/m);
        expect(await metrics()).toMatch(/^vast_gchat_events_received_total [1-9]/m);
        expect((await fetch(`${admin}/health`)).status).toBe(200);
      }
      for (const cli of replicas) {
        expect(cli.child.exitCode).toBeNull();
        cli.child.kill("SIGTERM");
        expect((await cli.exited).code).toBe(0);
        expect(cli.stdout() + cli.stderr()).not.toContain(cluster().password);
      }
      expect(repeatedPosts()).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  describe("the leader", () => {
    let world: World;

    beforeAll(async () => {
      world = await startWorld();
      const init = await world.run(
        [
          "init",
          "--api-key-stdin",
          "--chat-url",
          world.chat.webhookUrl(),
          "--tunnel",
          "none",
          "--public-url",
          "https://adapter.example.org",
          "--yes",
          "--no-chat-check",
        ],
        {},
        API_KEY,
      );
      expect(init.code).toBe(0);
    });

    afterAll(async () => {
      await world.close();
    });

    it("alone keeps the webhook pointed; when it dies, another replica takes over and points it at itself", async () => {
      // Each replica with its own copy of the configuration (the webhook's id, the secrets), and
      // its own public URL here, to see which one the webhook points at.
      const configs = ["a", "b"].map((name) => {
        const copy = join(dir, `config-${name}`);
        cpSync(world.configDir, copy, { recursive: true });
        return copy;
      });
      const urls = [
        `http://127.0.0.1:${await freeLoopbackPort()}`,
        `http://127.0.0.1:${await freeLoopbackPort()}`,
      ];
      const start = (i: number) => {
        const cli = spawnCli(
          ["serve", "--port", "0", "--public-url", urls[i] as string],
          world.env({
            VAST_GCHAT_CONFIG_DIR: configs[i] as string,
            VAST_GCHAT_STORE: storeUrl,
            VAST_GCHAT_LEADER_POLL_MS: "300",
          }),
        );
        running.push(cli);
        return cli;
      };
      const leader = start(0);
      await leader.waitForLog((r) => r.msg === "ready", 30_000);
      // The chain watch runs, but no self-test unless asked for: Vast.ai's test event would reach
      // whichever replica the load balancer picks.
      const watching = await leader.waitForLog((r) => r.msg === "watching the chain");
      expect(watching).toMatchObject({ check_every: "5m", self_test_every: "0" });
      expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${urls[0]}/`);
      const puts = () => world.vast.requests.filter((r) => r.method === "PUT").length;
      const putsBefore = puts();

      const follower = start(1);
      const ready = await follower.waitForLog((r) => r.msg === "ready", 30_000);
      expect(ready.leader).toBe(false);
      expect(follower.stdout()).toContain("another replica leads");
      // The follower left the webhook alone.
      expect(puts()).toBe(putsBefore);
      expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${urls[0]}/`);

      leader.child.kill("SIGKILL");
      await leader.exited;
      await follower.waitForLog((r) => r.msg === "took over as leader: pointing the webhook here");
      await follower.waitForLog((r) => r.msg === "webhook pointed" && r.url === `${urls[1]}/`);
      expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${urls[1]}/`);
      follower.child.kill("SIGTERM");
      expect((await follower.exited).code).toBe(0);
    });
  });
});
