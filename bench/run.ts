import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBuild } from "./build-check.js";
import type { BurstResult } from "./burst.js";
import { type BenchConfig, readConfig, runs, USAGE } from "./config.js";
import { loadAverage, machineInfo } from "./machine.js";
import {
  type BurstReport,
  type LoadReport,
  RESULTS_FILE,
  type ReportInput,
  renderDocument,
  saveResults,
} from "./report.js";
import { adapterSession, burstSession, ceilingSession, type Progress } from "./sessions.js";
import { HYPERFINE_MISSING, hasHyperfine, measureServeStarts, measureStartup } from "./startup.js";
import { type StartTarget, startOurs, startTutorial, tutorialUnavailable } from "./targets.js";

/**
 * `npm run bench`: start-up time, the same signed load against vast-gchat, the tutorial's Python
 * adapter and a bare node:http server under each fake Chat latency, and a burst of events into
 * one rate-limited Chat space; prints one table and, for a full run, writes it into the bench
 * section of BENCHMARKS.md. Progress goes to stderr so stdout is only the report.
 */
const progress: Progress = (message) => console.error(`[bench] ${message}`);

async function benchStartup(config: BenchConfig, workdir: string, withTutorial: boolean) {
  progress(
    `start-up: ${config.startupWarmupRuns} warm-up + ${config.startupRuns} timed runs each of --help and node -e 0`,
  );
  if (!hasHyperfine()) progress(HYPERFINE_MISSING);
  const configDir = join(workdir, "startup-config");
  const cli = measureStartup(config.startupRuns, config.startupWarmupRuns, configDir);
  progress(`start-up: ${config.serveStarts} starts of each adapter, timed until /health answers`);
  const serve = await measureServeStarts(
    config.serveStarts,
    join(workdir, "serve-starts"),
    withTutorial,
  );
  return { cli, serve };
}

/**
 * Repeat r: the ceiling, then for each Chat latency ours and the tutorial's. Interleaving the
 * repeats spreads the shared machine's slow moments over every figure instead of one.
 */
async function benchLoad(config: BenchConfig, workdir: string, tutorialSkip: string | undefined) {
  const rssOnly = config.only === "rss";
  const load: LoadReport = {
    plan: { fixedRate: !rssOnly, kill: !rssOnly },
    ceilings: [],
    ours: [],
    tutorial: tutorialSkip ? { skipped: tutorialSkip } : [],
  };
  for (let repeat = 1; repeat <= config.repeats; repeat++) {
    const dir = (name: string) => join(workdir, `load-${repeat}`, name);
    progress(`load, repeat ${repeat} of ${config.repeats}`);
    if (!rssOnly) load.ceilings.push(await ceilingSession(config, dir("bare"), progress));
    for (const [index, chatDelayMs] of config.chatDelaysMs.entries()) {
      const variant = `${index + 1}-chat-${chatDelayMs}ms`;
      for (const [kind, results] of [
        ["ours", load.ours],
        ["tutorial", load.tutorial],
      ] as const) {
        if (!Array.isArray(results)) continue;
        const workdir = dir(`${kind}-${variant}`);
        results.push(
          await adapterSession(config, { kind, chatDelayMs, plan: load.plan, workdir }, progress),
        );
      }
    }
  }
  return load;
}

async function benchBurst(config: BenchConfig, workdir: string, tutorialSkip: string | undefined) {
  const runsOf = async (
    name: "ours" | "tutorial",
    start: StartTarget,
    repeats: number,
    capS: number,
  ) => {
    const results: BurstResult[] = [];
    for (let repeat = 1; repeat <= repeats; repeat++) {
      const options = {
        label: `${name === "ours" ? "vast-gchat" : name} burst ${repeat} of ${repeats}`,
        workdir: join(workdir, `burst-${name}-${repeat}`),
        start,
        deliversAfterAck: name === "ours",
        capS,
      };
      results.push(await burstSession(config, options, progress));
    }
    return results;
  };
  const burst: BurstReport = {
    ours: await runsOf("ours", startOurs, config.burstRepeats, config.burstOursCapSeconds),
    tutorial: tutorialSkip
      ? { skipped: tutorialSkip }
      : await runsOf(
          "tutorial",
          startTutorial,
          config.tutorialBurstRepeats,
          config.burstTutorialCapSeconds,
        ),
  };
  return burst;
}

async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench", progress);
  const startedAt = new Date();
  const startedMs = performance.now();
  const loadAverageAtStart = loadAverage();
  const machine = machineInfo();
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-bench-"));
  // Whatever happens (error, Ctrl+C), no temp dir is left behind; execa kills the children.
  const cleanup = () => rmSync(workdir, { recursive: true, force: true });
  process.once("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => process.exit(130));
  }

  try {
    const tutorialSkip = config.skipPython ? "--skip-python" : tutorialUnavailable();
    if (tutorialSkip) progress(`tutorial adapter skipped: ${tutorialSkip}`);
    progress(`load average at the start: ${loadAverageAtStart}`);
    const startup = runs(config, "startup")
      ? await benchStartup(config, workdir, tutorialSkip === undefined)
      : undefined;
    const load =
      runs(config, "load") || config.only === "rss"
        ? await benchLoad(config, workdir, tutorialSkip)
        : undefined;
    const burst = runs(config, "burst")
      ? await benchBurst(config, workdir, tutorialSkip)
      : undefined;
    const input: ReportInput = {
      config,
      machine,
      startedAt,
      durationS: (performance.now() - startedMs) / 1000,
      loadAverageAtStart,
      loadAverageAtEnd: loadAverage(),
      startup,
      load,
      burst,
    };
    saveResults(input);
    progress(`results saved to ${RESULTS_FILE} (re-render with tsx bench/render.ts)`);
    // The report, BENCHMARKS.md's section and the exit code come from the saved document, as
    // bench/render.ts renders it. Losing an event is a correctness failure; the rest is reported.
    const ok = renderDocument(RESULTS_FILE, config.write);
    progress(
      config.write
        ? "written to the bench section of BENCHMARKS.md"
        : "BENCHMARKS.md left alone (a full run writes it; --write to force)",
    );
    return ok ? 0 : 1;
  } finally {
    cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[bench] failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
