import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { execa } from "execa";
import { SERVE_ENVIRONMENT, SERVE_NODE_OPTIONS } from "../src/cli/commands/service.js";
import { startPostgresCluster } from "../test/support/postgres-cluster.js";
import { checkBuild, loadAverage } from "./machine.js";
import type { ReplicaRun } from "./replica-load.js";
import {
  count,
  loadResults,
  type Maybe,
  median,
  type ReportInput,
  table,
  writeSection,
} from "./report.js";
import { REPO_ROOT } from "./targets.js";

/**
 * `npm run bench:stores`: the load part of the bench (`bench/run.ts --only load`, Chat at 5 ms) once
 * per store, each in its own run saved to its own document, then one table side by side: ack
 * latency at 500/s, saturation and its share of a bare node:http server measured in the same run,
 * and peak RSS. The stores: SQLite on node:sqlite (the default on Node 22.13+, run on the newest
 * line), SQLite on better-sqlite3 (the default on Node 20, run on this machine's Node) and
 * PostgreSQL (a throwaway local server with fsync on, run on the newest line). The newest line is
 * Node's build from the npm registry that `.ci/run` installs (`npm ci --prefix .ci/node-lines`).
 * Then PostgreSQL with one and with two replicas behind a round-robin proxy (bench/replica-load.ts,
 * the same sessions and flags, each row a fresh database), whose store is checked afterwards.
 * With `--write` (or a full run) the table replaces the stores section of BENCHMARKS.md.
 */
const progress = (message: string) => console.error(`[stores] ${message}`);
const NEWEST = join(REPO_ROOT, ".ci", "node-lines", "node_modules", "node26", "bin", "node");
/** How `vast-gchat service`, deploy/'s unit and the Dockerfile start serve (docs/platforms.md). */
const AS_A_SERVICE = { ...SERVE_ENVIRONMENT, NODE_OPTIONS: SERVE_NODE_OPTIONS.join(" ") };

/** `script`: bench/run.ts (the load part) unless given (bench/replica-load.ts). */
type StoreRun = { label: string; node: string; env: Record<string, string>; script?: string };

async function runLoad(run: StoreRun, quick: boolean, file: string): Promise<ReportInput> {
  const script = run.script ?? "bench/run.ts";
  progress(`${run.label}: tsx ${script} --only load`);
  // The Node under test first on PATH: tsx, and serve (started with the bench's own execPath).
  const PATH = `${dirname(run.node)}:${process.env.PATH ?? ""}`;
  const args = ["tsx", script, "--only", "load", "--chat-delays-ms", "5", "--no-write"];
  await execa("npx", [...args, "--skip-python", ...(quick ? ["--quick"] : [])], {
    cwd: REPO_ROOT,
    env: { ...run.env, PATH, BENCH_RESULTS_FILE: file },
    stdout: "ignore",
    stderr: "inherit",
  });
  return loadResults(file);
}

const fixed = (n: Maybe, digits = 1) => (n === undefined ? "–" : n.toFixed(digits));

/** One row: the medians over the repeats of the run. */
function row(label: string, { load, machine }: ReportInput): string[] {
  const ours = load?.ours ?? [];
  const saturation = median(ours.map((s) => s.saturation.acceptedPerS));
  const ceiling = median(load?.ceilings.map((c) => c.saturation.acceptedPerS) ?? []);
  const pick = (f: (s: (typeof ours)[number]) => Maybe, digits = 1) =>
    fixed(median(ours.map(f)), digits);
  return [
    ...[label, machine.node, machine.store],
    ...[pick((s) => s.fixed?.p50Ms, 2), pick((s) => s.fixed?.p99Ms, 2)],
    ...[count(saturation), count(ceiling)],
    fixed(saturation !== undefined && ceiling ? saturation / ceiling : undefined, 2),
    ...[pick((s) => s.idleRssMiB), pick((s) => s.loadRssMiB)],
  ];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, write: { type: "boolean" } },
  });
  const quick = values.quick === true;
  checkBuild("bench:stores", progress);
  if (!existsSync(NEWEST)) {
    console.error(`${NEWEST} is missing: run \`npm ci --prefix .ci/node-lines\` first.`);
    return 2;
  }
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const work = mkdtempSync(join(tmpdir(), "vast-gchat-stores-"));
  // Durable as in production: the test cluster's fsync=off would flatter PostgreSQL.
  const cluster = await startPostgresCluster({ settings: { fsync: "on", full_page_writes: "on" } });
  try {
    const settings = Object.entries(AS_A_SERVICE).map(([name, value]) => `${name}=${value}`);
    const database = await cluster.createDatabase("bench");
    const runs: StoreRun[] = [
      { label: "SQLite, node:sqlite", node: NEWEST, env: {} },
      {
        label: `SQLite, node:sqlite, started as a service (${settings.join(", ")})`,
        node: NEWEST,
        env: { BENCH_SERVE_ENV: JSON.stringify(AS_A_SERVICE) },
      },
      { label: "SQLite, better-sqlite3", node: process.execPath, env: {} },
      { label: "PostgreSQL, one replica", node: NEWEST, env: { VAST_GCHAT_STORE: database } },
    ];
    for (const replicas of [1, 2]) {
      runs.push({
        label: `PostgreSQL, ${replicas === 1 ? "one replica" : "two replicas"} behind the proxy`,
        node: NEWEST,
        env: { VAST_GCHAT_STORE: await cluster.createDatabase(), BENCH_REPLICAS: String(replicas) },
        script: "bench/replica-load.ts",
      });
    }
    const rows: string[][] = [];
    const checks: string[] = [];
    let wrong = 0;
    for (const [index, run] of runs.entries()) {
      const result = await runLoad(run, quick, join(work, `run-${index}.json`));
      rows.push(row(run.label, result));
      const check = (result as Partial<ReplicaRun>).stored;
      if (check) {
        wrong += check.missing + check.repeated;
        checks.push(
          `${run.label}: ${count(check.acknowledged)} acknowledged, ${count(check.missing)} missing, ${count(check.repeated)} stored more than once (${count(check.rows)} rows)`,
        );
      }
    }
    const text = [
      `- Command: \`npm run build && npm run bench:stores${quick ? " -- --quick" : ""}\``,
      `- Run: ${startedAt.toISOString()}, took ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min; load average ${loadAtStart} at the start, ${loadAverage()} at the end`,
      "- Each store in its own `npm run bench -- --only load --chat-delays-ms 5` (method in the bench section above); figures are the medians of its repeats. PostgreSQL: a local server on loopback with fsync on and `synchronous_commit` on (the default), the pool of 4 connections serve opens.",
      `- Behind the proxy: \`bench/replica-load.ts\`, the same sessions against one or two \`serve\` replicas (each its own config dir) sharing one database, behind the round-robin proxy of the replica tests (test/support/round-robin-proxy.ts) in a process of its own; the bare node:http server is measured behind the same proxy, and the RSS is the larger replica's. The generator, the proxy, PostgreSQL and the replicas share this machine's ${availableParallelism()} cores, so two replicas cannot show a speed-up here: what their row shows is the cost of coordinating them.`,
      `- Store check, behind the proxy (each acknowledged event id looked up in PostgreSQL after the runs; it must be there exactly once): ${checks.join("; ")}.`,
      "",
      table(
        [
          ...["store", "node", "driver", "ack p50 at 500/s (ms)", "ack p99 at 500/s (ms)"],
          ...["saturation (accepted/s)", "bare node:http, same run (/s)", "share of bare"],
          ...["peak RSS idle (MiB)", "peak RSS after load (MiB)"],
        ],
        rows,
      ),
    ].join("\n");
    console.log(text);
    if (values.write || !quick) writeSection(text, "stores");
    // An acknowledged event missing from the store is a correctness failure, not a figure.
    return wrong === 0 ? 0 : 1;
  } finally {
    await cluster.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
