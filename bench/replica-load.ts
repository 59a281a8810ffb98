import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { isPostgresUrl } from "../src/delivery/store-location.js";
import { cleanEnv, spawnProcess } from "../test/support/cli-process.js";
import { startRoundRobinProxy } from "../test/support/round-robin-proxy.js";
import { type BenchConfig, readConfig } from "./config.js";
import { loadAverage, machineInfo } from "./machine.js";
import { type LoadReport, type ReportInput, saveResults } from "./report.js";
import { adapterSession, ceilingSession } from "./sessions.js";
import {
  REPO_ROOT,
  rssMiB,
  type StartTarget,
  startBareServer,
  startOurs,
  type Target,
} from "./targets.js";

/**
 * `BENCH_REPLICAS=N VAST_GCHAT_STORE=postgresql://… tsx bench/replica-load.ts [bench flags]`, run
 * by compare-stores.ts: the load part's sessions (sessions.ts) against N `vast-gchat serve`
 * replicas sharing one PostgreSQL database behind the round-robin proxy of the replica tests, the
 * ceiling being a bare node:http server behind the same proxy. The proxy runs in a process of its
 * own, as a load balancer does, so it does not share the generator's event loop. Saved like a
 * `bench/run.ts --only load` run (BENCH_RESULTS_FILE), plus the store check: every acknowledged
 * event in the database exactly once.
 */
const progress = (message: string) => console.error(`[replicas] ${message}`);
const PROXY = "--proxy";
const PLAN = { fixedRate: true, kill: false };

/** Each acknowledged id looked up in `events`: missing, or stored more than once (the UNIQUE
 * index should make that 0); rows exceed the acknowledged, as answers in flight at a stop are kept. */
export type StoreCheck = { acknowledged: number; missing: number; repeated: number; rows: number };
export type ReplicaRun = ReportInput & { stored: StoreCheck };

/**
 * `count` copies of a target behind the proxy, each with its own workdir (so its own config dir)
 * and the same secret and Chat; the Target is the proxy's, and stopping it stops them all. (Copies
 * started before one that fails are left to execa's clean-up at exit: the bench has failed.)
 */
function behindProxy(count: number, start: StartTarget, copies: Target[]): StartTarget {
  return async (options) => {
    for (let i = 1; i <= count; i++) {
      const workdir = join(options.workdir, `replica-${i}`);
      mkdirSync(workdir);
      copies.push(await start({ ...options, workdir }));
    }
    // This file again, as the proxy, under the same Node and tsx (execArgv).
    const args = [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      PROXY,
      ...copies.map((c) => c.origin),
    ];
    const logFile = join(options.workdir, "proxy.log");
    const proc = spawnProcess(process.execPath, args, cleanEnv({}), {
      logFile,
      cwd: REPO_ROOT,
      forceKillAfterMs: 5000,
    });
    const ready = await proc.waitForLog((r) => r.msg === "ready");
    const stop = async () => {
      const exit = await proc.stop();
      await Promise.all(copies.map((c) => c.proc.stop()));
      return exit;
    };
    const { name, path, secret } = copies[0] as Target;
    const origin = String(ready.url);
    const pid = proc.child.pid ?? 0;
    return {
      name: `${name} behind the proxy`,
      pid,
      origin,
      path,
      secret,
      startedInMs: 0,
      proc: { ...proc, stop },
    };
  };
}

/** The sessions of sessions.ts behind the proxy, without the kill; RSS is the larger replica's. */
function replicaSession(
  config: BenchConfig,
  count: number,
  delay: number,
  dir: string,
  acked: string[],
) {
  const label = `  ${count} × vast-gchat behind the proxy, Chat ${delay} ms`;
  const copies: Target[] = [];
  const rss = () => {
    const values = copies.map((c) => rssMiB(c.pid));
    progress(`${label}: peak RSS per replica ${values.map((v) => v?.toFixed(1)).join(", ")} MiB`);
    return values.includes(undefined) ? undefined : Math.max(...(values as number[]));
  };
  const start = behindProxy(count, startOurs, copies);
  const spec = { label, start, rss, pause: "sleep", cpu: false, acked } as const;
  return adapterSession(config, spec, delay, PLAN, dir, progress);
}

async function checkStore(url: string, acked: string[]): Promise<StoreCheck> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<Omit<StoreCheck, "acknowledged">>(
      `SELECT count(*) FILTER (WHERE n = 0)::int AS missing, count(*) FILTER (WHERE n > 1)::int AS repeated,
         (SELECT count(*) FROM vast_gchat.events)::int AS rows
       FROM (SELECT (SELECT count(*) FROM vast_gchat.events WHERE event_id = id) AS n
             FROM unnest($1::text[]) AS acked (id)) AS looked_up`,
      [acked],
    );
    return { acknowledged: acked.length, ...(rows[0] as Omit<StoreCheck, "acknowledged">) };
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const config = readConfig(process.argv.slice(2), process.env);
  const count = Number(process.env.BENCH_REPLICAS ?? "2");
  const storeUrl = process.env.VAST_GCHAT_STORE ?? "";
  if (!isPostgresUrl(storeUrl)) throw new Error("VAST_GCHAT_STORE must be a PostgreSQL URL");
  const [startedAt, loadAtStart, machine] = [new Date(), loadAverage(), await machineInfo()];
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-replicas-"));
  const tutorial = { skipped: "not run by bench/replica-load.ts" };
  const load: LoadReport = { plan: PLAN, ceilings: [], ours: [], tutorial };
  const acked: string[] = [];
  try {
    for (let repeat = 1; repeat <= config.repeats; repeat++) {
      const dir = (name: string) => join(workdir, `load-${repeat}`, name);
      progress(`${count} replica(s), repeat ${repeat} of ${config.repeats}`);
      const bare = behindProxy(1, (options) => startBareServer(options.workdir), []);
      const ceiling = { start: bare, label: "bare node:http behind the proxy,", cpu: false };
      load.ceilings.push(await ceilingSession(config, dir("bare"), progress, ceiling));
      for (const delay of config.chatDelaysMs) {
        load.ours.push(
          await replicaSession(config, count, delay, dir(`ours-chat-${delay}ms`), acked),
        );
      }
    }
    const stored = await checkStore(storeUrl, acked);
    progress(
      `store check: ${stored.missing} of ${stored.acknowledged} acknowledged missing, ${stored.repeated} stored more than once`,
    );
    const durationS = (Date.now() - startedAt.getTime()) / 1000;
    const timing = { startedAt, durationS, loadAtStart, loadAtEnd: loadAverage() };
    const run: ReplicaRun = { config, machine, ...timing, load, stored };
    saveResults(run);
    return 0;
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

if (process.argv[2] === PROXY) {
  // The proxy's own process: it lives until stopped.
  const proxy = await startRoundRobinProxy(process.argv.slice(3));
  console.log(JSON.stringify({ msg: "ready", url: proxy.url }));
} else {
  process.exitCode = await main();
}
