import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeChat } from "../test/support/fake-chat.js";
import { type BurstResult, runBurst } from "./burst.js";
import type { BenchConfig, Progress } from "./config.js";
import { checkAcknowledged, type DurabilityResult } from "./durability.js";
import {
  closedLoop,
  describeRun,
  openLoop,
  type RunStats,
  type RunSummary,
  summarize,
} from "./load.js";
import type { BurstReport, LoadReport } from "./report.js";
import {
  cpuSeconds,
  newSecret,
  rssMiB,
  type StartTarget,
  startBareServer,
  startOurs,
  startTutorial,
  type Target,
  tailOf,
} from "./targets.js";

/**
 * The sessions the bench repeats and reports medians of, each a fresh adapter (or the bare server)
 * against a fresh fake Chat; what a session does is in BENCHMARKS.md's method. `--only rss` leaves
 * out the fixed-rate run and the kill.
 */
export type SessionPlan = { fixedRate: boolean; kill: boolean };
export interface SessionResult {
  chatDelayMs: number;
  /** VmHWM once idle for IDLE_SETTLE_MS, and after the warm-up, fixed-rate and saturation runs. */
  idleRssMiB: number | undefined;
  loadRssMiB: number | undefined;
  fixed: RunSummary | undefined;
  saturation: RunSummary;
  /** CPU time over the saturation run, as a share of one core (of the bare server's, below). */
  adapterCpuShare: number | undefined;
  /** Posts the fake Chat received during the session (before any kill). */
  chatPosts: number;
  kill: { run: RunSummary; durability: DurabilityResult } | undefined;
}
export type CeilingResult = { saturation: RunSummary; serverCpuShare: number | undefined };

/** Long enough for start-up work that finishes after the first /health (timers, threads). */
const IDLE_SETTLE_MS = 1000;
/** A breather between runs, so one run's stragglers do not land in the next. */
const BETWEEN_RUNS_MS = 500;

/**
 * Waits until the adapter's posts to Chat die down (at most one in 500 ms, 30 s at most): one that
 * posts inside the request (the tutorial's) may still work off requests the generator gave up on,
 * which the next run would measure. Returns the ms waited.
 */
async function settle(chat: FakeChat): Promise<number> {
  const start = performance.now();
  for (let before = -2; chat.requests - before > 1 && performance.now() - start < 30_000; ) {
    before = chat.requests;
    await sleep(BETWEEN_RUNS_MS);
  }
  return performance.now() - start;
}

/**
 * A fresh fake Chat answering after `delayMs` (taking `ratePerSecond` posts a second per space,
 * when given) and a fresh target posting to it, for `body`; the target's log tail on a failure.
 */
export async function withTarget<T>(
  start: StartTarget,
  workdir: string,
  chatSetup: { delayMs: number; ratePerSecond?: number },
  progress: Progress,
  body: (target: Target, chat: FakeChat) => Promise<T>,
): Promise<T> {
  mkdirSync(workdir, { recursive: true });
  const chat = await FakeChat.start();
  chat.behaviour = { kind: "ok", delayMs: chatSetup.delayMs };
  chat.ratePerSecond = chatSetup.ratePerSecond;
  let target: Target | undefined;
  try {
    target = await start({ workdir, chatUrl: chat.webhookUrl(), secret: newSecret() });
    return await body(target, chat);
  } catch (error) {
    if (target) progress(`${target.name} log tail:\n${tailOf(target.proc)}`);
    throw error;
  } finally {
    await target?.proc.stop();
    await chat.close();
  }
}

/** A closed-loop run with the target's CPU time measured around it, as a share of one core. */
async function saturate(target: Target, config: BenchConfig) {
  const cpuBefore = cpuSeconds(target.pid);
  const stats = await closedLoop(target, config, config.saturationSeconds);
  const cpuAfter = cpuSeconds(target.pid);
  const known = cpuBefore !== undefined && cpuAfter !== undefined && stats.elapsedS > 0;
  return { stats, cpuShare: known ? (cpuAfter - cpuBefore) / stats.elapsedS : undefined };
}

/**
 * The ceiling: the same warm-up and saturation run against a bare node:http server (replica-load.ts
 * puts it behind its proxy, whose CPU is not the server's: `cpu` false).
 */
export function ceilingSession(
  config: BenchConfig,
  workdir: string,
  progress: Progress,
  {
    start = (() => startBareServer(workdir)) as StartTarget,
    label = "bare node:http",
    cpu = true,
  } = {},
): Promise<CeilingResult> {
  return withTarget(start, workdir, { delayMs: 0 }, progress, async (target) => {
    await closedLoop(target, config, config.warmupSeconds);
    await sleep(BETWEEN_RUNS_MS);
    const { stats, cpuShare } = await saturate(target, config);
    const saturation = summarize(stats);
    progress(describeRun(`  ${label} saturation`, saturation));
    return { saturation, serverCpuShare: cpu ? cpuShare : undefined };
  });
}

/**
 * One adapter's session. replica-load.ts runs it against replicas behind a proxy: its own RSS
 * reading (the larger replica's), a plain pause between runs instead of waiting for Chat to calm
 * down (replicas together may post more than once in a window), no CPU figure (the proxy's),
 * and every acknowledged id kept in `acked` for its store check.
 */
export interface AdapterSpec {
  label: string;
  start: StartTarget;
  rss?: (target: Target) => number | undefined;
  pause?: "settle" | "sleep";
  cpu?: boolean;
  acked?: string[];
}

export async function adapterSession(
  config: BenchConfig,
  spec: AdapterSpec,
  chatDelayMs: number,
  plan: SessionPlan,
  workdir: string,
  progress: Progress,
): Promise<SessionResult> {
  const { label, start, rss = (target) => rssMiB(target.pid), acked = [] } = spec;
  return withTarget(start, workdir, { delayMs: chatDelayMs }, progress, async (target, chat) => {
    const pause = async () => {
      if (spec.pause === "sleep") return sleep(BETWEEN_RUNS_MS);
      const waitedS = (await settle(chat)) / 1000;
      if (waitedS > 1) progress(`${label}: waited ${waitedS.toFixed(1)} s for Chat to calm down`);
    };
    await sleep(IDLE_SETTLE_MS);
    const idleRssMiB = rss(target);
    const keep = (stats: RunStats) => {
      // One by one: a saturated run acknowledges more ids than a call may take as arguments.
      for (const id of stats.ackedIds) acked.push(id);
      return summarize(stats);
    };
    keep(await closedLoop(target, config, config.warmupSeconds));
    await pause();
    let fixed: RunSummary | undefined;
    if (plan.fixedRate) {
      const { rate, rateSeconds: durationS, openConnections: connections } = config;
      const options = { rate, durationS, connections, maxInFlight: config.maxInFlight };
      fixed = keep(await openLoop(target, { ...options, timeoutMs: config.requestTimeoutMs }));
      progress(describeRun(`${label}, fixed ${rate}/s`, fixed));
      await pause();
    }
    const { stats, cpuShare } = await saturate(target, config);
    const saturation = keep(stats);
    progress(describeRun(`${label}, saturation`, saturation));
    const [loadRssMiB, chatPosts] = [rss(target), chat.requests];
    let kill: SessionResult["kill"];
    // Only ours has a store to check: a saturated run it does not survive, then every event id
    // acknowledged during the whole session must be in its store.
    if (plan.kill && target.storePath !== undefined) {
      await sleep(BETWEEN_RUNS_MS);
      const stop = new AbortController();
      // Bounded even if the kill went wrong; the stop ends it right after the kill.
      const running = closedLoop(target, config, config.killAfterSeconds + 10, stop.signal);
      await sleep(config.killAfterSeconds * 1000);
      target.proc.child.kill("SIGKILL");
      stop.abort();
      await target.proc.exited;
      const run = keep(await running);
      const durability = await checkAcknowledged(target.storePath, acked);
      kill = { run, durability };
      const { acknowledged, missing, rows } = durability;
      progress(
        `${label}, kill -9: acknowledged ${acknowledged}, missing ${missing} (${rows} rows)`,
      );
    }
    const adapterCpuShare = spec.cpu === false ? undefined : cpuShare;
    return {
      chatDelayMs,
      idleRssMiB,
      loadRssMiB,
      fixed,
      saturation,
      adapterCpuShare,
      chatPosts,
      kill,
    };
  });
}

/** The load part. Repeat r: the ceiling, then for each Chat latency ours and the tutorial's. */
export async function benchLoad(
  config: BenchConfig,
  workdir: string,
  tutorialSkip: string | undefined,
  progress: Progress,
): Promise<LoadReport> {
  const rssOnly = config.only === "rss";
  const plan = { fixedRate: !rssOnly, kill: !rssOnly };
  const load: LoadReport = { plan, ceilings: [], ours: [], tutorial: [] };
  if (tutorialSkip) load.tutorial = { skipped: tutorialSkip };
  for (let repeat = 1; repeat <= config.repeats; repeat++) {
    const dir = (name: string) => join(workdir, `load-${repeat}`, name);
    progress(`load, repeat ${repeat} of ${config.repeats}`);
    if (!rssOnly) load.ceilings.push(await ceilingSession(config, dir("bare"), progress));
    for (const [index, delay] of config.chatDelaysMs.entries()) {
      for (const [kind, start, results] of [
        ["vast-gchat", startOurs, load.ours],
        ["tutorial", startTutorial, load.tutorial],
      ] as const) {
        if (!Array.isArray(results)) continue;
        const spec = { label: `  ${kind}, Chat ${delay} ms`, start };
        const name = `${kind === "tutorial" ? kind : "ours"}-${index + 1}-chat-${delay}ms`;
        results.push(await adapterSession(config, spec, delay, plan, dir(name), progress));
      }
    }
  }
  return load;
}

/** The burst part: each adapter's runs, ours first, each into a fresh Chat space (burst.ts). */
export async function benchBurst(
  config: BenchConfig,
  workdir: string,
  tutorialSkip: string | undefined,
  progress: Progress,
): Promise<BurstReport> {
  const chatSetup = { delayMs: config.burstChatDelayMs, ratePerSecond: config.burstChatRate };
  const runsOf = async (kind: "ours" | "tutorial", repeats: number, capS: number) => {
    const results: BurstResult[] = [];
    for (let repeat = 1; repeat <= repeats; repeat++) {
      const label = `${kind === "ours" ? "vast-gchat" : kind} burst ${repeat} of ${repeats}`;
      const options = { label, capS, deliversAfterAck: kind === "ours" };
      const start = kind === "ours" ? startOurs : startTutorial;
      const run = (target: Target, chat: FakeChat) =>
        runBurst(config, chat, target, options, progress);
      results.push(
        await withTarget(start, join(workdir, `burst-${kind}-${repeat}`), chatSetup, progress, run),
      );
    }
    return results;
  };
  const ours = await runsOf("ours", config.burstRepeats, config.burstOursCapSeconds);
  const tutorial = tutorialSkip
    ? { skipped: tutorialSkip }
    : await runsOf("tutorial", config.tutorialBurstRepeats, config.burstTutorialCapSeconds);
  return { ours, tutorial };
}
