import { acceptedPerS, achievedRate, noAnswer, non2xx, percentile, type RunStats } from "./load.js";

/**
 * The figures the report needs from one load run, computed as soon as the run ends so the raw
 * latencies and acknowledged ids (tens of thousands per run) need not be kept for every repeat.
 */
export interface RunSummary {
  sent: number;
  ok: number;
  non2xx: number;
  noAnswer: number;
  /** Open loop: sends skipped because too many were in flight. */
  skipped: number;
  /** Ack latency percentiles, ms; Infinity when the rank falls on a request with no answer. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Open loop: p99 measured from each request's scheduled send time. */
  fromScheduleP99Ms: number | undefined;
  /** Open loop: how late the generator sent, p99. */
  sendLagP99Ms: number | undefined;
  /** Open loop: the rate the generator really sent at. */
  achievedRate: number | undefined;
  /** Closed loop: 2xx answers per second of the measured window. */
  acceptedPerS: number;
  /** Closed loop: the measured window, s. */
  windowS: number;
  /** The bench process's CPU per request sent, µs (the generator's cost, see RunStats). */
  generatorCpuPerRequestUs: number | undefined;
  /** Share of one core the bench process used over the run, 0..1 (can exceed 1 briefly). */
  generatorCpuShare: number | undefined;
  /** Non-2xx answers and errors by label ("HTTP 502", "ECONNRESET"). */
  problems: Map<string, number>;
}

export function summarize(stats: RunStats): RunSummary {
  const problems = new Map<string, number>();
  for (const [status, n] of stats.statuses) problems.set(`HTTP ${status}`, n);
  for (const [code, n] of stats.errors) problems.set(code, (problems.get(code) ?? 0) + n);
  return {
    sent: stats.sent,
    ok: stats.ok,
    non2xx: non2xx(stats),
    noAnswer: noAnswer(stats),
    skipped: stats.skipped,
    p50Ms: percentile(stats.latenciesMs, 50),
    p99Ms: percentile(stats.latenciesMs, 99),
    maxMs: percentile(stats.latenciesMs, 100),
    fromScheduleP99Ms: percentile(stats.fromScheduleMs, 99),
    sendLagP99Ms: percentile(stats.sendLagMs, 99),
    achievedRate: achievedRate(stats),
    acceptedPerS: acceptedPerS(stats),
    windowS: stats.windowS,
    generatorCpuPerRequestUs: stats.sent > 0 ? (stats.generatorCpuS / stats.sent) * 1e6 : undefined,
    generatorCpuShare: stats.elapsedS > 0 ? stats.generatorCpuS / stats.elapsedS : undefined,
    problems,
  };
}

/** One line for the progress log. */
export function describeRun(label: string, run: RunSummary): string {
  const rate = run.windowS > 0 ? run.acceptedPerS : (run.achievedRate ?? 0);
  const bad = run.sent - run.ok;
  return (
    `${label}: ${run.ok} acknowledged of ${run.sent} (${rate.toFixed(0)}/s` +
    `, p50 ${run.p50Ms?.toFixed(2) ?? "–"} ms, p99 ${run.p99Ms?.toFixed(2) ?? "–"} ms)` +
    (bad ? `, ${bad} not 2xx` : "")
  );
}
