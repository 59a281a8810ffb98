import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeChat } from "../test/support/fake-chat.js";
import { type BurstResult, makeBurst, runBurst } from "./burst.js";
import { type BenchConfig, readConfig, USAGE } from "./config.js";
import { checkAcknowledged } from "./durability.js";
import { acceptedPerS, closedLoop, type LoadTarget, openLoop, type RunStats } from "./load.js";
import {
  type AdapterResult,
  type BurstReport,
  correct,
  type LoadReport,
  type MachineInfo,
  type OursResult,
  renderReport,
  verdicts,
} from "./report.js";
import {
  killAllChildren,
  peakRssMiB,
  pythonVersion,
  REPO_ROOT,
  startBareServer,
  startOurs,
  startTutorial,
  stopTarget,
  type Target,
  tailOf,
  tutorialUnavailable,
} from "./targets.js";

/**
 * `npm run bench`: the same signed load against vast-gchat, the tutorial's Python adapter and a
 * bare node:http server, then a burst of events into one rate-limited Chat space for both
 * adapters; prints one markdown table and writes it to bench/results.md. `--only load|burst` runs
 * one part. Progress goes to stderr so stdout is only the report.
 */
const progress = (message: string) => console.error(`[bench] ${message}`);

/** The bench runs the built CLI; a stale dist/ would measure old code. */
function checkBuild(): void {
  const built = join(REPO_ROOT, "dist/cli/main.js");
  if (!existsSync(built)) {
    throw new Error("dist/ is missing: run `npm run build` before `npm run bench`.");
  }
  const builtAt = statSync(built).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((latest, entry) => {
      const path = join(dir, entry.name);
      const time = entry.isDirectory() ? newest(path) : statSync(path).mtimeMs;
      return Math.max(latest, time);
    }, 0);
  if (newest(join(REPO_ROOT, "src")) > builtAt) {
    progress("warning: src/ changed after the last build; run `npm run build` to bench it.");
  }
}

function machineInfo(): MachineInfo {
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 5000,
  });
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    python: pythonVersion(),
    loadAverage: loadavg()
      .map((n) => n.toFixed(2))
      .join(" "),
    commit: commit.status === 0 ? commit.stdout.trim() : undefined,
    date: new Date().toISOString(),
  };
}

const loadTarget = (target: Target, secret: string): LoadTarget => ({
  origin: target.origin,
  path: target.path,
  secret,
});

function summary(label: string, stats: RunStats): void {
  const bad = stats.sent - stats.ok;
  progress(
    `${label}: ${stats.ok} acknowledged of ${stats.sent} in ${stats.elapsedS.toFixed(1)} s` +
      ` (${(stats.windowS ? acceptedPerS(stats) : stats.ok / stats.elapsedS).toFixed(0)}/s)` +
      (bad ? `, ${bad} not 2xx` : ""),
  );
}

/** Warm-up, fixed rate, saturation: the runs both adapters get. */
async function measure(
  name: string,
  target: LoadTarget,
  config: BenchConfig,
): Promise<{ runs: RunStats[]; fixed: RunStats; saturation: RunStats }> {
  const timeoutMs = config.requestTimeoutMs;
  progress(`${name}: warm-up ${config.warmupSeconds} s`);
  const warmup = await closedLoop(target, {
    concurrency: config.concurrency,
    durationS: config.warmupSeconds,
    timeoutMs,
  });
  summary(`${name} warm-up`, warmup);
  await sleep(500);

  progress(`${name}: fixed rate ${config.rate}/s for ${config.rateSeconds} s`);
  const fixed = await openLoop(target, {
    rate: config.rate,
    durationS: config.rateSeconds,
    connections: config.openConnections,
    maxInFlight: config.maxInFlight,
    timeoutMs,
  });
  summary(`${name} fixed rate`, fixed);
  await sleep(500);

  progress(`${name}: saturation, ${config.concurrency} in flight, ${config.saturationSeconds} s`);
  const saturation = await closedLoop(target, {
    concurrency: config.concurrency,
    durationS: config.saturationSeconds,
    timeoutMs,
  });
  summary(`${name} saturation`, saturation);
  return { runs: [warmup, fixed, saturation], fixed, saturation };
}

async function benchCeiling(config: BenchConfig, workdir: string): Promise<RunStats> {
  const target = await startBareServer(workdir);
  try {
    const load = loadTarget(target, "unused");
    const options = { concurrency: config.concurrency, timeoutMs: config.requestTimeoutMs };
    progress(`ceiling: bare node:http, ${config.saturationSeconds} s`);
    await closedLoop(load, { ...options, durationS: config.warmupSeconds });
    const ceiling = await closedLoop(load, { ...options, durationS: config.saturationSeconds });
    summary("ceiling", ceiling);
    return ceiling;
  } finally {
    await stopTarget(target);
  }
}

async function benchOurs(config: BenchConfig, workdir: string): Promise<OursResult> {
  const secret = `bench-${randomBytes(12).toString("hex")}`;
  const chat = await FakeChat.start();
  chat.behaviour = { kind: "ok", delayMs: config.chatDelayMs };
  const target = await startOurs({ workdir, chatUrl: chat.webhookUrl(), secret });
  try {
    const load = loadTarget(target, secret);
    const { runs, fixed, saturation } = await measure("vast-gchat", load, config);
    const chatPosts = chat.messages.length;
    await sleep(500);

    // The kill -9 check: a saturated run that the adapter does not survive.
    progress(`vast-gchat: kill -9 after ${config.killAfterSeconds} s of saturated load`);
    const stop = { requested: false };
    const killRun = closedLoop(load, {
      concurrency: config.concurrency,
      durationS: config.killAfterSeconds + 10,
      timeoutMs: config.requestTimeoutMs,
      stop,
    });
    await sleep(config.killAfterSeconds * 1000);
    const peak = peakRssMiB(target.pid);
    target.child.kill("SIGKILL");
    stop.requested = true;
    await target.exited;
    const killStats = await killRun;
    summary("vast-gchat kill run", killStats);

    const acked = [...runs, killStats].flatMap((run) => run.ackedIds);
    const durability = checkAcknowledged(target.storePath, acked);
    progress(
      `vast-gchat after kill -9: acknowledged ${durability.acknowledged}, missing ${durability.missing}` +
        ` (${durability.rows} rows in the store)`,
    );
    return { fixed, saturation, peakRssMiB: peak, chatPosts, killRun: killStats, durability };
  } catch (error) {
    progress(`vast-gchat log tail:\n${tailOf(target)}`);
    throw error;
  } finally {
    await stopTarget(target);
    await chat.close();
  }
}

async function benchTutorial(
  config: BenchConfig,
  workdir: string,
): Promise<AdapterResult | { skipped: string }> {
  const reason = config.skipPython ? "--skip-python" : tutorialUnavailable();
  if (reason) {
    progress(`tutorial adapter skipped: ${reason}`);
    return { skipped: reason };
  }
  const secret = `bench-${randomBytes(12).toString("hex")}`;
  const chat = await FakeChat.start();
  chat.behaviour = { kind: "ok", delayMs: config.chatDelayMs };
  const target = await startTutorial({ workdir, chatUrl: chat.webhookUrl(), secret });
  try {
    const { fixed, saturation } = await measure("tutorial", loadTarget(target, secret), config);
    return {
      fixed,
      saturation,
      peakRssMiB: peakRssMiB(target.pid),
      chatPosts: chat.messages.length,
    };
  } finally {
    await stopTarget(target);
    await chat.close();
  }
}

/** The same seed for both adapters: their senders draw the same jitter sequence. */
const BURST_SEED = 0x5eed_b0b5;

/** One side of the burst: a fresh fake Chat limited to burstChatRate, a fresh adapter. */
async function burstOne(
  name: string,
  config: BenchConfig,
  workdir: string,
  start: (options: { workdir: string; chatUrl: string; secret: string }) => Promise<Target>,
  deliversAfterAck: boolean,
  capS: number,
): Promise<BurstResult> {
  const dir = join(workdir, `burst-${name}`);
  mkdirSync(dir, { recursive: true });
  const secret = `bench-${randomBytes(12).toString("hex")}`;
  const chat = await FakeChat.start();
  let target: Target | undefined;
  try {
    chat.behaviour = { kind: "ok", delayMs: config.chatDelayMs };
    chat.ratePerSecond = config.burstChatRate;
    target = await start({ workdir: dir, chatUrl: chat.webhookUrl(), secret });
    // Chat's limit starts fresh: nothing was posted before the burst.
    const events = makeBurst(config.burstEvents);
    progress(
      `${name}: burst of ${events.length} events, ${config.burstConcurrency} in flight, Chat at ${config.burstChatRate}/s, cap ${capS} s`,
    );
    const result = await runBurst({
      chat,
      target: loadTarget(target, secret),
      events,
      concurrency: config.burstConcurrency,
      policy: {
        initialDelayMs: config.burstInitialDelayMs,
        maxDelayMs: config.burstMaxDelayMs,
        maxAttempts: config.burstMaxAttempts,
        timeoutMs: config.requestTimeoutMs,
      },
      seed: BURST_SEED,
      capS,
      deliversAfterAck,
      progress,
    });
    progress(
      `${name} burst: ${result.visible} of ${result.events} visible` +
        (result.allVisibleS === undefined
          ? ` when the run ended after ${result.endedS.toFixed(1)} s`
          : ` after ${result.allVisibleS.toFixed(1)} s`) +
        `; ${result.posts} posts, ${result.throttled} 429s, ${result.accepted} messages;` +
        ` sender: ${result.sender.attempts} deliveries, ${result.sender.gaveUp} given up`,
    );
    return result;
  } catch (error) {
    if (target) progress(`${name} log tail:\n${tailOf(target)}`);
    throw error;
  } finally {
    if (target) await stopTarget(target);
    await chat.close();
  }
}

async function benchBurst(config: BenchConfig, workdir: string): Promise<BurstReport> {
  const ours = await burstOne(
    "vast-gchat",
    config,
    workdir,
    startOurs,
    true,
    config.burstOursCapSeconds,
  );
  const reason = config.skipPython ? "--skip-python" : tutorialUnavailable();
  if (reason) {
    progress(`tutorial adapter skipped: ${reason}`);
    return { ours, tutorial: { skipped: reason } };
  }
  const tutorial = await burstOne(
    "tutorial",
    config,
    workdir,
    startTutorial,
    false,
    config.burstTutorialCapSeconds,
  );
  return { ours, tutorial };
}

async function benchLoad(config: BenchConfig, workdir: string): Promise<LoadReport> {
  const ceiling = await benchCeiling(config, workdir);
  const ours = await benchOurs(config, workdir);
  const tutorial = await benchTutorial(config, workdir);
  return { ceiling, ours, tutorial };
}

async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild();
  const machine = machineInfo();
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-bench-"));
  // Whatever happens (error, Ctrl+C), no adapter is left running and no temp dir is left behind.
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
    const load = config.only === "burst" ? undefined : await benchLoad(config, workdir);
    const burst = config.only === "load" ? undefined : await benchBurst(config, workdir);
    const input = { config, machine, load, burst };
    const report = renderReport(input);
    console.log(report);
    if (config.out === undefined) {
      progress(`--only ${config.only}: report not written (give --out FILE to write it)`);
    } else {
      const out = resolve(REPO_ROOT, config.out);
      writeFileSync(out, report);
      progress(`written to ${out}`);
    }
    // Losing an event is a correctness failure; the other targets are reported.
    return correct(verdicts(input)) ? 0 : 1;
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
