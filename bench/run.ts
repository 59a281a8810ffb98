import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBuild } from "./build-check.js";
import type { BurstResult } from "./burst.js";
import { burstSession } from "./burst-session.js";
import { type BenchConfig, readConfig, runs, USAGE } from "./config.js";
import { loadAverage, machineInfo } from "./machine.js";
import { RESULTS_FILE, renderDocument, saveResults } from "./report.js";
import type {
  BurstReport,
  LoadReport,
  ReportInput,
  Skipped,
  StartupReport,
} from "./report-input.js";
import {
  adapterSession,
  type CeilingResult,
  ceilingSession,
  type Progress,
  type SessionPlan,
  type SessionResult,
} from "./sessions.js";
import { HYPERFINE_MISSING, hasHyperfine, measureServeStarts, measureStartup } from "./startup.js";
import { killAllChildren, startOurs, startTutorial, tutorialUnavailable } from "./targets.js";

/**
 * `npm run bench`: start-up time, the same signed load against vast-gchat, the tutorial's Python
 * adapter and a bare node:http server under each fake Chat latency, and a burst of events into
 * one rate-limited Chat space; prints one table and, for a full run, writes it into the bench
 * section of BENCHMARKS.md. Progress goes to stderr so stdout is only the report.
 */
const progress: Progress = (message) => console.error(`[bench] ${message}`);

/** Why the tutorial's adapter does not run in this invocation, or undefined when it does. */
function tutorialSkipReason(config: BenchConfig): string | undefined {
  return config.skipPython ? "--skip-python" : tutorialUnavailable();
}

async function benchStartup(
  config: BenchConfig,
  workdir: string,
  tutorialSkip: string | undefined,
): Promise<StartupReport> {
  progress(
    `start-up: ${config.startupWarmupRuns} warm-up + ${config.startupRuns} timed runs each of --help and node -e 0`,
  );
  if (!hasHyperfine()) progress(HYPERFINE_MISSING);
  const configDir = join(workdir, "startup-config");
  const cli = measureStartup({
    runs: config.startupRuns,
    warmupRuns: config.startupWarmupRuns,
    configDir,
  });
  progress(`start-up: ${config.serveStarts} starts of each adapter, timed until /health answers`);
  const serve = await measureServeStarts({
    starts: config.serveStarts,
    workdir: join(workdir, "serve-starts"),
    withTutorial: tutorialSkip === undefined,
  });
  return { cli, serve };
}

/**
 * Repeat r: the ceiling, then for each Chat latency ours and the tutorial's. Interleaving the
 * repeats spreads the shared machine's slow moments over every figure instead of one.
 */
async function benchLoad(
  config: BenchConfig,
  workdir: string,
  tutorialSkip: string | undefined,
): Promise<LoadReport> {
  const rssOnly = config.only === "rss";
  const plan: SessionPlan = { fixedRate: !rssOnly, kill: !rssOnly };
  const ceilings: CeilingResult[] = [];
  const ours: SessionResult[] = [];
  const tutorial: SessionResult[] = [];
  for (let repeat = 1; repeat <= config.repeats; repeat++) {
    const dir = (name: string) => join(workdir, `load-${repeat}`, name);
    progress(`load, repeat ${repeat} of ${config.repeats}`);
    if (!rssOnly) ceilings.push(await ceilingSession(config, dir("bare"), progress));
    for (const [index, chatDelayMs] of config.chatDelaysMs.entries()) {
      const variant = `${index + 1}-chat-${chatDelayMs}ms`;
      ours.push(
        await adapterSession(
          config,
          { kind: "ours", chatDelayMs, plan, workdir: dir(`ours-${variant}`) },
          progress,
        ),
      );
      if (tutorialSkip === undefined) {
        tutorial.push(
          await adapterSession(
            config,
            { kind: "tutorial", chatDelayMs, plan, workdir: dir(`tutorial-${variant}`) },
            progress,
          ),
        );
      }
    }
  }
  const skipped: Skipped | undefined = tutorialSkip ? { skipped: tutorialSkip } : undefined;
  return { plan, ceilings, ours, tutorial: skipped ?? tutorial };
}

async function benchBurst(
  config: BenchConfig,
  workdir: string,
  tutorialSkip: string | undefined,
): Promise<BurstReport> {
  const ours: BurstResult[] = [];
  for (let repeat = 1; repeat <= config.burstRepeats; repeat++) {
    const label = `vast-gchat burst ${repeat} of ${config.burstRepeats}`;
    ours.push(
      await burstSession(
        config,
        {
          label,
          workdir: join(workdir, `burst-ours-${repeat}`),
          start: startOurs,
          deliversAfterAck: true,
          capS: config.burstOursCapSeconds,
        },
        progress,
      ),
    );
  }
  if (tutorialSkip) return { ours, tutorial: { skipped: tutorialSkip } };
  const tutorial: BurstResult[] = [];
  for (let repeat = 1; repeat <= config.tutorialBurstRepeats; repeat++) {
    const label = `tutorial burst ${repeat} of ${config.tutorialBurstRepeats}`;
    tutorial.push(
      await burstSession(
        config,
        {
          label,
          workdir: join(workdir, `burst-tutorial-${repeat}`),
          start: startTutorial,
          deliversAfterAck: false,
          capS: config.burstTutorialCapSeconds,
        },
        progress,
      ),
    );
  }
  return { ours, tutorial };
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
  // Whatever happens (error, Ctrl+C), no process is left running and no temp dir is left behind.
  const cleanup = () => {
    killAllChildren();
    rmSync(workdir, { recursive: true, force: true });
  };
  process.once("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(130);
    });
  }

  try {
    const tutorialSkip = tutorialSkipReason(config);
    if (tutorialSkip) progress(`tutorial adapter skipped: ${tutorialSkip}`);
    progress(`load average at the start: ${loadAverageAtStart}`);
    const startup = runs(config, "startup")
      ? await benchStartup(config, workdir, tutorialSkip)
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
