import { mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeChat } from "../test/support/fake-chat.js";
import type { BenchConfig } from "./config.js";
import { checkAcknowledged, type DurabilityResult } from "./durability.js";
import { closedLoop, type LoadTarget, openLoop, type RunStats } from "./load.js";
import { cpuSeconds, peakRssMiB } from "./proc.js";
import { describeRun, type RunSummary, summarize } from "./run-summary.js";
import {
  newSecret,
  type OursOptions,
  startBareServer,
  startOurs,
  startTutorial,
  stopTarget,
  type Target,
  tailOf,
} from "./targets.js";

/**
 * One load session: a fresh adapter (or the bare server) against a fresh fake Chat, measured
 * idle, then under a warm-up, a fixed-rate run and a saturation run, and for ours killed with
 * SIGKILL under load at the end. The bench repeats sessions and reports medians.
 */
export type Progress = (message: string) => void;

export interface SessionPlan {
  /** The open-loop fixed-rate run (left out by `--only rss`). */
  fixedRate: boolean;
  /** Our adapter is killed under load at the end and its store checked (left out by `--only rss`). */
  kill: boolean;
}

export interface KillResult {
  run: RunSummary;
  durability: DurabilityResult;
}

export interface SessionResult {
  chatDelayMs: number;
  /** VmHWM once started and idle for IDLE_SETTLE_MS, before any request. */
  idleRssMiB: number | undefined;
  /** VmHWM after the warm-up, fixed-rate and saturation runs. */
  loadRssMiB: number | undefined;
  fixed: RunSummary | undefined;
  saturation: RunSummary;
  /** The adapter's CPU time over the saturation run, as a share of one core. */
  adapterCpuShare: number | undefined;
  /** Posts the fake Chat received during the session (before any kill). */
  chatPosts: number;
  kill: KillResult | undefined;
}

export interface CeilingResult {
  saturation: RunSummary;
  /** The bare server's CPU over the saturation run, as a share of one core. */
  serverCpuShare: number | undefined;
}

/** Long enough for start-up work that finishes after the first /health (timers, threads). */
const IDLE_SETTLE_MS = 1000;
/** A breather between runs, so one run's stragglers do not land in the next. */
const BETWEEN_RUNS_MS = 500;
/**
 * After a run, an adapter that posts inside the request (the tutorial's) may still be working
 * off requests the generator has given up on; the next run would measure that backlog, not the
 * adapter. It counts as settled once the fake Chat gets at most QUIET_MAX_POSTS in a window
 * (ours posts at most one message a second, so it settles in the first window).
 */
const QUIET_WINDOW_MS = 500;
const QUIET_MAX_POSTS = 1;
const MAX_SETTLE_MS = 30_000;

/** Waits until the adapter's posts to Chat die down; returns the ms waited (bounded). */
async function settle(chat: FakeChat): Promise<number> {
  const start = performance.now();
  let before = chat.requests;
  while (performance.now() - start < MAX_SETTLE_MS) {
    await sleep(QUIET_WINDOW_MS);
    if (chat.requests - before <= QUIET_MAX_POSTS) break;
    before = chat.requests;
  }
  return performance.now() - start;
}

const loadTarget = (target: Target, secret: string): LoadTarget => ({
  origin: target.origin,
  path: target.path,
  secret,
});

/** A closed-loop run with the target's CPU time measured around it. */
async function saturate(
  target: Target,
  load: LoadTarget,
  config: BenchConfig,
): Promise<{ stats: RunStats; cpuShare: number | undefined }> {
  const cpuBefore = cpuSeconds(target.pid);
  const stats = await closedLoop(load, {
    concurrency: config.concurrency,
    durationS: config.saturationSeconds,
    timeoutMs: config.requestTimeoutMs,
  });
  const cpuAfter = cpuSeconds(target.pid);
  const cpuShare =
    cpuBefore === undefined || cpuAfter === undefined || stats.elapsedS <= 0
      ? undefined
      : (cpuAfter - cpuBefore) / stats.elapsedS;
  return { stats, cpuShare };
}

/** The ceiling: the same warm-up and saturation run against a bare node:http server. */
export async function ceilingSession(
  config: BenchConfig,
  workdir: string,
  progress: Progress,
): Promise<CeilingResult> {
  mkdirSync(workdir, { recursive: true });
  const target = await startBareServer(workdir);
  try {
    const load = loadTarget(target, "unused");
    await closedLoop(load, {
      concurrency: config.concurrency,
      durationS: config.warmupSeconds,
      timeoutMs: config.requestTimeoutMs,
    });
    await sleep(BETWEEN_RUNS_MS);
    const { stats, cpuShare } = await saturate(target, load, config);
    const saturation = summarize(stats);
    progress(describeRun("  bare node:http saturation", saturation));
    return { saturation, serverCpuShare: cpuShare };
  } finally {
    await stopTarget(target);
  }
}

export type AdapterKind = "ours" | "tutorial";

export interface SessionOptions {
  kind: AdapterKind;
  chatDelayMs: number;
  plan: SessionPlan;
  workdir: string;
}

export async function adapterSession(
  config: BenchConfig,
  options: SessionOptions,
  progress: Progress,
): Promise<SessionResult> {
  const { kind, chatDelayMs, plan, workdir } = options;
  const label = `  ${kind === "ours" ? "vast-gchat" : "tutorial"}, Chat ${chatDelayMs} ms`;
  mkdirSync(workdir, { recursive: true });
  const secret = newSecret();
  const chat = await FakeChat.start();
  chat.behaviour = { kind: "ok", delayMs: chatDelayMs };
  const startOptions: OursOptions = { workdir, chatUrl: chat.webhookUrl(), secret };
  const settleAndSay = async () => {
    const waitedMs = await settle(chat);
    if (waitedMs > 2 * QUIET_WINDOW_MS) {
      progress(
        `${label}: waited ${(waitedMs / 1000).toFixed(1)} s for its posts to Chat to die down`,
      );
    }
  };
  let target: Target | undefined;
  // Only ours has a store to check after the kill.
  let storePath: string | undefined;
  try {
    let started: Target;
    if (kind === "ours") {
      const ours = await startOurs(startOptions);
      storePath = ours.storePath;
      started = ours;
    } else {
      started = await startTutorial(startOptions);
    }
    target = started;
    await sleep(IDLE_SETTLE_MS);
    const idleRssMiB = peakRssMiB(started.pid);
    const load = loadTarget(started, secret);
    const acked: string[] = [];

    const warmup = await closedLoop(load, {
      concurrency: config.concurrency,
      durationS: config.warmupSeconds,
      timeoutMs: config.requestTimeoutMs,
    });
    acked.push(...warmup.ackedIds);
    await settleAndSay();

    let fixed: RunSummary | undefined;
    if (plan.fixedRate) {
      const stats = await openLoop(load, {
        rate: config.rate,
        durationS: config.rateSeconds,
        connections: config.openConnections,
        maxInFlight: config.maxInFlight,
        timeoutMs: config.requestTimeoutMs,
      });
      acked.push(...stats.ackedIds);
      fixed = summarize(stats);
      progress(describeRun(`${label}, fixed ${config.rate}/s`, fixed));
      await settleAndSay();
    }

    const { stats, cpuShare } = await saturate(started, load, config);
    acked.push(...stats.ackedIds);
    const saturation = summarize(stats);
    progress(describeRun(`${label}, saturation`, saturation));
    const loadRssMiB = peakRssMiB(started.pid);
    const chatPosts = chat.requests;

    let kill: KillResult | undefined;
    if (plan.kill && storePath !== undefined) {
      await sleep(BETWEEN_RUNS_MS);
      kill = await killUnderLoad(started, storePath, load, acked, config);
      progress(
        `${label}, kill -9: acknowledged ${kill.durability.acknowledged}, missing ${kill.durability.missing}` +
          ` (${kill.durability.rows} rows in the store)`,
      );
    }
    return {
      chatDelayMs,
      idleRssMiB,
      loadRssMiB,
      fixed,
      saturation,
      adapterCpuShare: cpuShare,
      chatPosts,
      kill,
    };
  } catch (error) {
    if (target) progress(`${label} log tail:\n${tailOf(target)}`);
    throw error;
  } finally {
    if (target) await stopTarget(target);
    await chat.close();
  }
}

/**
 * The kill -9 check: a saturated run that the adapter does not survive, then every event id
 * acknowledged during the whole session must be in its store.
 */
async function killUnderLoad(
  target: Target,
  storePath: string,
  load: LoadTarget,
  ackedBefore: readonly string[],
  config: BenchConfig,
): Promise<KillResult> {
  const stop = new AbortController();
  const running = closedLoop(load, {
    concurrency: config.concurrency,
    // Bounded even if the kill went wrong; the stop ends it right after the kill.
    durationS: config.killAfterSeconds + 10,
    timeoutMs: config.requestTimeoutMs,
    signal: stop.signal,
  });
  await sleep(config.killAfterSeconds * 1000);
  target.child.kill("SIGKILL");
  stop.abort();
  await target.exited;
  const stats = await running;
  const durability = checkAcknowledged(storePath, [...ackedBefore, ...stats.ackedIds]);
  return { run: summarize(stats), durability };
}
