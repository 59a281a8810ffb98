import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventStore } from "../../../src/delivery/event-store.js";
import { openEventStore } from "../../../src/delivery/open-store.js";
import { freeLoopbackPort } from "../../../src/tunnel/free-port.js";
import { cleanEnv, runCli, spawnCli } from "../../support/cli-process.js";
import { SKIP_POSTGRES } from "../../support/postgres-cluster.js";
import { runInProcess } from "../../support/run-program.js";
import { API_KEY, initWaitingArgs, startWorld } from "../../support/world.js";
import { usePostgresCluster } from "./backend.js";

/**
 * The commands on a PostgreSQL store: `--store URL` (or VAST_GCHAT_STORE) on events and status,
 * the password never in their output or errors, and serve's start: no tunnel unless asked, and a
 * store it cannot reach one clear sentence.
 */
describe.skipIf(SKIP_POSTGRES)("the commands on a PostgreSQL store", () => {
  const cluster = usePostgresCluster();
  let url: string;
  let dir: string;
  let store: EventStore;

  beforeEach(async () => {
    url = await cluster().createDatabase();
    dir = mkdtempSync(join(tmpdir(), "vast-gchat-pg-commands-"));
    store = await openEventStore(url);
    for (const [id, at] of [
      ["pg-one", 1000],
      ["pg-two", 2000],
    ] as const) {
      await store.accept({
        eventId: id,
        notifType: "client:outbid",
        payload: JSON.stringify({ event_id: id, notif_type: "client:outbid", subject: id }),
        receivedAt: at,
        routes: [],
      });
    }
    const seq = (await store.get("pg-one"))?.seq as number;
    await store.recordOutcome("default", {
      post: { at: 3000, status: 400, carried: 1 },
      dead: { seqs: [seq], error: "Chat answered 400" },
      clearPosting: true,
    });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) =>
    cleanEnv({ VAST_GCHAT_CONFIG_DIR: dir, ...extra });
  const noPassword = (text: string) => expect(text).not.toContain(cluster().password);

  it("lists, shows, replays and retries on the database named by --store or VAST_GCHAT_STORE", async () => {
    const list = await runInProcess(["events", "list", "--json", "--store", url], env());
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as {
      events: Array<{ event_id: string; state: string }>;
    };
    expect(listed.events.map((event) => [event.event_id, event.state])).toEqual([
      ["pg-two", "pending"],
      ["pg-one", "dead"],
    ]);
    const show = await runInProcess(["events", "show", "pg-one"], env({ VAST_GCHAT_STORE: url }));
    expect(show.code).toBe(0);
    expect(show.stdout).toContain("Chat answered 400");
    const retry = await runInProcess(["events", "retry-dead", "--store", url, "--json"], env());
    expect(JSON.parse(retry.stdout)).toEqual({ requeued: 1 });
    const replay = await runInProcess(
      ["events", "replay", "pg-two"],
      env({ VAST_GCHAT_STORE: url }),
    );
    expect(replay.code).toBe(0);
    for (const run of [list, show, retry, replay]) noPassword(run.stdout + run.stderr);
    // A password on the command line is in `ps` and the shell's history: said, with where else.
    const warning = "--store puts the database password in the process list";
    for (const run of [list, retry]) expect(run.stderr).toContain(warning);
    for (const run of [show, replay]) expect(run.stderr).not.toContain(warning);
  });

  it("status names the store without its password, and says when it cannot be reached", async () => {
    const status = await runInProcess(["status", "--json", "--store", url], env());
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as {
      store: { kind: string; driver: string; path: string };
      warnings: string[];
    };
    expect(report.store).toMatchObject({
      kind: "postgresql",
      driver: "pg",
      path: `postgresql://${cluster().user}:***@127.0.0.1:${cluster().port}/${url.split("/").pop()}`,
    });
    expect(report.warnings).toEqual([]);
    // Each route's queue, read from the shared store.
    expect(
      (report as unknown as { routes: Array<{ name: string; queue: object }> }).routes,
    ).toEqual([
      expect.objectContaining({
        name: "default",
        queue: expect.objectContaining({ pending: 1, dead: 1 }),
      }),
    ]);
    noPassword(status.stdout + status.stderr);

    const closed = `postgresql://${cluster().user}:${cluster().password}@127.0.0.1:${await freeLoopbackPort()}/none`;
    const down = await runInProcess(["status"], env({ VAST_GCHAT_STORE: closed }));
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(
      /Store {13}postgresql \(pg\) postgresql:\/\/.*:\*\*\*@127\.0\.0\.1/,
    );
    expect(down.stderr).toMatch(/Event store: cannot reach .*ECONNREFUSED/);
    noPassword(down.stdout + down.stderr);

    const events = await runInProcess(["events", "--store", closed], env());
    expect(events.code).toBe(1);
    expect(events.stderr).toMatch(
      /^Error: Could not read the event store postgresql:\/\/.*:\*\*\*@/m,
    );
    noPassword(events.stderr);
  });

  it("route list counts each route's deliveries in the database named by --store", async () => {
    const list = await runInProcess(["route", "list", "--json", "--store", url], env());
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({
      routes: [{ name: "default", counts: { pending: 1, delivered: 0, dead: 1 } }],
    });
    noPassword(list.stdout + list.stderr);
  });

  it("refuses a store URL that is not a URL with exit 2, without quoting it", async () => {
    const run = await runInProcess(
      ["events", "--store", "postgresql://u:hunter2@[broken/db"],
      env(),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("The store URL is not a valid postgresql:// URL.");
    expect(run.stderr).not.toContain("hunter2");
  });

  it("serve says in one sentence that it cannot reach the store, without the password", async () => {
    const closed = `postgresql://${cluster().user}:${cluster().password}@127.0.0.1:${await freeLoopbackPort()}/none`;
    const result = await runCli(
      ["serve", "--port", "0", "--store", closed],
      env({
        VAST_WEBHOOK_SECRET: "whsec-pg-start-1234",
        GOOGLE_CHAT_URL: "http://127.0.0.1:9/v1/spaces/A/messages?key=k&token=t",
      }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^Error: Cannot open the event store postgresql:\/\/.*:\*\*\*@127\.0\.0\.1:\d+\/none: event store unavailable \(connect ECONNREFUSED/,
    );
    expect(result.stderr).toContain("Check that PostgreSQL is running and reachable");
    noPassword(result.stdout + result.stderr);
  });

  it("serve refuses a database whose schema is newer than it knows, saying so", async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query("UPDATE vast_gchat.schema_version SET version = version + 1");
    } finally {
      await client.end();
    }
    const result = await runCli(
      ["serve", "--port", "0"],
      env({
        VAST_GCHAT_STORE: url,
        VAST_WEBHOOK_SECRET: "whsec-pg-start-1234",
        GOOGLE_CHAT_URL: "http://127.0.0.1:9/v1/spaces/A/messages?key=k&token=t",
      }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /was written by a newer vast-gchat \(schema 2, this one knows 1\); upgrade vast-gchat on this replica/,
    );
    noPassword(result.stdout + result.stderr);
  });

  it("serve opens no tunnel on a shared store unless asked, whatever init chose", async () => {
    const world = await startWorld();
    try {
      // init chose a tunnel (cloudflared): alone on SQLite, serve would open it.
      expect((await world.run(initWaitingArgs(world), {}, API_KEY)).code).toBe(0);
      const serve = spawnCli(["serve", "--port", "0"], world.env({ VAST_GCHAT_STORE: url }));
      try {
        const ready = await serve.waitForLog((r) => r.msg === "ready", 30_000);
        expect(ready.public_url).toBeNull();
        expect(ready.leader).toBe(true);
        expect(serve.stdout()).not.toContain("tunnel open");
        expect(serve.stdout()).toContain("no tunnel and no public URL");
      } finally {
        serve.child.kill("SIGTERM");
        expect((await serve.exited).code).toBe(0);
      }
    } finally {
      await world.close();
    }
  });
});
