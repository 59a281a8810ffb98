import type { BurstResult } from "./burst.js";
import {
  count,
  int,
  median,
  mib,
  ms,
  percent,
  ratio,
  spread,
  sum,
  times,
  verdict,
} from "./format.js";
import {
  type BurstReport,
  isSkipped,
  type LoadReport,
  type ReportInput,
  type StartupReport,
} from "./report-input.js";
import type { RunSummary } from "./run-summary.js";
import type { SessionResult } from "./sessions.js";
import { byKey, helpRatio, TARGETS, type Verdict } from "./verdicts.js";

/**
 * The rows of the report's one table: a metric per row, ours and the tutorial's side by side with
 * their ratio, the baseline measured in the same run (bare `node -e 0`, bare node:http), and the
 * target with its verdict. Each figure is the median of the repeats with their range.
 */
export const HEADER = [
  "metric",
  "vast-gchat",
  "tutorial adapter",
  "vast-gchat ÷ tutorial",
  "baseline (same run)",
  "target",
];

export type Row = string[];

class Rows {
  readonly rows: Row[] = [];

  add(metric: string, ours: string, tutorial: string, r = "–", baseline = "–", target = "–") {
    this.rows.push([metric, ours, tutorial, r, baseline, target]);
  }
}

function target(verdicts: readonly Verdict[], key: string, text: string): string {
  const found = byKey(verdicts, key);
  return found ? `${text} ${verdict(found.pass)}` : text;
}

export function startupRows(
  startup: StartupReport,
  input: ReportInput,
  verdicts: Verdict[],
): Row[] {
  const rows = new Rows();
  const { cli, serve } = startup;
  const help = helpRatio(input);
  rows.add(
    `start-up: \`vast-gchat --help\` (ms; ${cli.helpMs.length} runs, ${cli.tool === "hyperfine" ? "timed by hyperfine, as" : "interleaved with"} \`node -e 0\`)`,
    spread(cli.helpMs, ms),
    "no `--help` (n/a)",
    "–",
    `bare \`node -e 0\`: ${spread(cli.bareNodeMs, ms)} ms; \`--help\` ÷ it = ${help === undefined ? "–" : times(help)}`,
    target(verdicts, "help", `≤ ${TARGETS.helpVsBareNode}× \`node -e 0\``),
  );
  const tutorial = serve.tutorialMs;
  rows.add(
    `start-up: from spawn until the adapter answers /health (ms; ${serve.oursMs.length} starts each)`,
    spread(serve.oursMs, ms),
    tutorial ? spread(tutorial, ms) : "skipped",
    tutorial ? ratio(median(serve.oursMs), median(tutorial)) : "–",
  );
  return rows.rows;
}

type Pick = (session: SessionResult) => number | undefined;

/** Ours and the tutorial's sessions for one Chat latency. */
interface Variant {
  delay: number;
  ours: SessionResult[];
  tutorial: SessionResult[] | undefined;
}

interface PairOptions {
  baseline?: string;
  target?: string;
  /** Off for the generator's own figures, where ours ÷ tutorial means nothing. */
  ratio?: boolean;
}

function pair(
  rows: Rows,
  variant: Variant,
  metric: string,
  pick: Pick,
  format: (value: number | undefined) => string,
  options: PairOptions = {},
) {
  const ours = variant.ours.map(pick);
  const tutorial = variant.tutorial?.map(pick);
  rows.add(
    metric,
    spread(ours, format),
    tutorial ? spread(tutorial, format) : "skipped",
    tutorial && options.ratio !== false ? ratio(median(ours), median(tutorial)) : "–",
    options.baseline ?? "–",
    options.target ?? "–",
  );
}

/** "2xx / non-2xx / no answer", summed over the repeats. */
function answers(runs: readonly (RunSummary | undefined)[]): string {
  const present = runs.filter((r): r is RunSummary => r !== undefined);
  if (present.length === 0) return "–";
  const skipped = sum(present.map((r) => r.skipped));
  return (
    `${int(sum(present.map((r) => r.ok)))} / ${int(sum(present.map((r) => r.non2xx)))} / ` +
    `${int(sum(present.map((r) => r.noAnswer)))}${skipped ? ` (+${int(skipped)} not sent)` : ""}`
  );
}

function answersRow(
  rows: Rows,
  variant: Variant,
  metric: string,
  pick: (s: SessionResult) => RunSummary | undefined,
) {
  rows.add(
    `${metric}: answers 2xx / non-2xx / none (all runs)`,
    answers(variant.ours.map(pick)),
    variant.tutorial ? answers(variant.tutorial.map(pick)) : "skipped",
  );
}

function generatorRows(load: LoadReport, variants: Variant[], rows: Rows): void {
  if (load.ceilings.length === 0) return;
  const ceilingRuns = load.ceilings.map((c) => c.saturation);
  const cpuPerRequest = median(ceilingRuns.map((r) => r.generatorCpuPerRequestUs));
  rows.add(
    "load generator alone: CPU per signed request, and the most it could send on one core",
    "–",
    "–",
    "–",
    cpuPerRequest === undefined
      ? "–"
      : `${cpuPerRequest.toFixed(0)} µs → ${int(1e6 / cpuPerRequest)} requests/s`,
  );
  rows.add(
    "bare node:http server (the ceiling for any Node receiver): accepted events/s at saturation",
    "–",
    "–",
    "–",
    `${spread(
      ceilingRuns.map((r) => r.acceptedPerS),
      count,
    )}/s; generator at ${percent(median(ceilingRuns.map((r) => r.generatorCpuShare)))} of a core, server at ${percent(
      median(load.ceilings.map((c) => c.serverCpuShare)),
    )}`,
  );
  const ceiling = median(ceilingRuns.map((r) => r.acceptedPerS));
  for (const variant of variants) {
    const ours = median(variant.ours.map((s) => s.saturation.acceptedPerS));
    rows.add(
      `Chat ${variant.delay} ms · the ceiling ÷ our saturated rate (how far the generator can go beyond ours)`,
      ours === undefined || ceiling === undefined || ours === 0 ? "–" : times(ceiling / ours),
      "–",
    );
  }
}

function loadVariantRows(
  config: ReportInput["config"],
  load: LoadReport,
  variant: Variant,
  verdicts: Verdict[],
  rows: Rows,
): void {
  const { delay } = variant;
  if (load.plan.fixedRate) {
    const fixed = `Chat ${delay} ms · fixed ${int(config.rate)}/s × ${config.rateSeconds} s`;
    pair(rows, variant, `${fixed}: ack latency p50 (ms)`, (s) => s.fixed?.p50Ms, ms);
    pair(rows, variant, `${fixed}: **ack latency p99 (ms)**`, (s) => s.fixed?.p99Ms, ms, {
      target: target(verdicts, `ackP99:${delay}`, `< ${TARGETS.ackP99Ms} ms`),
    });
    pair(
      rows,
      variant,
      `${fixed}: ack latency p99 from the scheduled send (ms)`,
      (s) => s.fixed?.fromScheduleP99Ms,
      ms,
    );
    pair(
      rows,
      variant,
      `${fixed}: rate the generator achieved (events/s)`,
      (s) => s.fixed?.achievedRate,
      (v) => (v === undefined ? "–" : v.toFixed(1)),
      { ratio: false },
    );
    pair(rows, variant, `${fixed}: generator send lag p99 (ms)`, (s) => s.fixed?.sendLagP99Ms, ms, {
      ratio: false,
    });
    answersRow(rows, variant, fixed, (s) => s.fixed);
  }

  const sat = `Chat ${delay} ms · saturation, ${config.concurrency} in flight × ${config.saturationSeconds} s`;
  const ceilings = load.ceilings.map((c) => c.saturation.acceptedPerS);
  const ceiling = median(ceilings);
  pair(rows, variant, `${sat}: **accepted events/s**`, (s) => s.saturation.acceptedPerS, count, {
    baseline: ceilings.length ? `bare node:http: ${spread(ceilings, count)}` : "–",
    target: target(verdicts, `accepted:${delay}`, `≥ ${int(TARGETS.acceptedPerS)}/s`),
  });
  if (ceiling !== undefined && ceiling > 0) {
    pair(
      rows,
      variant,
      `${sat}: share of the bare node:http ceiling`,
      (s) => s.saturation.acceptedPerS / ceiling,
      percent,
      { baseline: "100 %" },
    );
  }
  pair(rows, variant, `${sat}: ack latency p50 (ms)`, (s) => s.saturation.p50Ms, ms);
  pair(rows, variant, `${sat}: ack latency p99 (ms)`, (s) => s.saturation.p99Ms, ms);
  answersRow(rows, variant, sat, (s) => s.saturation);
  pair(
    rows,
    variant,
    `${sat}: adapter CPU (share of one core)`,
    (s) => s.adapterCpuShare,
    percent,
    {
      baseline: load.ceilings.length
        ? `bare node:http: ${percent(median(load.ceilings.map((c) => c.serverCpuShare)))}`
        : "–",
    },
  );
  pair(
    rows,
    variant,
    `${sat}: load generator CPU (share of one core)`,
    (s) => s.saturation.generatorCpuShare,
    percent,
    {
      ratio: false,
      baseline: load.ceilings.length
        ? `driving bare node:http: ${percent(median(load.ceilings.map((c) => c.saturation.generatorCpuShare)))}`
        : "–",
    },
  );

  const rss = `Chat ${delay} ms · peak RSS (VmHWM, MiB)`;
  pair(rows, variant, `${rss}: idle, after start`, (s) => s.idleRssMiB, mib);
  pair(rows, variant, `${rss}: **after the load runs**`, (s) => s.loadRssMiB, mib);
  pair(
    rows,
    variant,
    `Chat ${delay} ms · posts the fake Chat received during the session`,
    (s) => s.chatPosts,
    count,
  );
}

export function loadRows(input: ReportInput, load: LoadReport, verdicts: Verdict[]): Row[] {
  const rows = new Rows();
  const tutorial = isSkipped(load.tutorial) ? undefined : load.tutorial;
  const variants: Variant[] = input.config.chatDelaysMs.map((delay) => ({
    delay,
    ours: load.ours.filter((s) => s.chatDelayMs === delay),
    tutorial: tutorial?.filter((s) => s.chatDelayMs === delay),
  }));
  generatorRows(load, variants, rows);
  for (const variant of variants) loadVariantRows(input.config, load, variant, verdicts, rows);

  const kills = load.ours.flatMap((s) => (s.kill ? [s.kill.durability] : []));
  if (kills.length > 0) {
    rows.add(
      `kill -9 under saturated load after ${input.config.killAfterSeconds} s, once per session (${kills.length} kills)`,
      `acknowledged ${int(sum(kills.map((k) => k.acknowledged)))}, missing ${int(sum(kills.map((k) => k.missing)))}`,
      "keeps nothing (n/a)",
      "–",
      "–",
      target(verdicts, "durable", "0 missing"),
    );
  }
  return rows.rows;
}

/** "12.3", or "not all visible after 300 s (287 of 500)". */
function visibleAfter(result: BurstResult): string {
  if (result.allVisibleS !== undefined) return result.allVisibleS.toFixed(1);
  return `not all visible after ${int(result.endedS)} s (${int(result.visible)} of ${int(result.events)})`;
}

function visibleTimes(results: readonly BurstResult[]): string {
  if (results.every((r) => r.allVisibleS !== undefined)) {
    return spread(
      results.map((r) => r.allVisibleS),
      (v) => (v === undefined ? "–" : v.toFixed(1)),
    );
  }
  return results.map(visibleAfter).join("; ");
}

function senderOutcome(results: readonly BurstResult[]): string {
  return results
    .map(
      ({ sender }) =>
        `${int(sender.acked)} / ${int(sender.refused)} / ${int(sender.gaveUp)} / ${int(sender.cutOff)}`,
    )
    .join("; ");
}

export function burstRows(input: ReportInput, burst: BurstReport, verdicts: Verdict[]): Row[] {
  const { config } = input;
  const rows = new Rows();
  const ours = burst.ours;
  const tutorial = isSkipped(burst.tutorial) ? undefined : burst.tutorial;
  const b = `burst of ${int(config.burstEvents)} → 1 space at ${config.burstChatRate} msg/s (runs: ${ours.length} / ${tutorial?.length ?? 0})`;
  const both = (
    metric: string,
    pick: (result: BurstResult) => number | undefined,
    targetText = "–",
  ) => {
    const a = ours.map(pick);
    const t = tutorial?.map(pick);
    rows.add(
      metric,
      spread(a, count),
      t ? spread(t, count) : "skipped",
      t ? ratio(median(a), median(t)) : "–",
      "–",
      targetText,
    );
  };

  // A tutorial run that did not show everything ran longer than this, so ours ÷ it is below it.
  let timeRatio = "–";
  const oursTime = median(ours.map((r) => r.allVisibleS));
  if (tutorial && ours.every((r) => r.allVisibleS !== undefined) && oursTime !== undefined) {
    const complete = tutorial.every((r) => r.allVisibleS !== undefined);
    const theirs = median(tutorial.map((r) => (complete ? r.allVisibleS : r.endedS)));
    timeRatio = complete ? ratio(oursTime, theirs) : `< ${ratio(oursTime, theirs)}`;
  }
  rows.add(
    `${b}: **time until every event is visible in Chat (s)**`,
    visibleTimes(ours),
    tutorial ? visibleTimes(tutorial) : "skipped",
    timeRatio,
  );
  both(
    `${b}: **events lost** (not visible in Chat when the run ended)`,
    (r) => r.lost,
    target(verdicts, "burst", `${TARGETS.burstLost} in every run`),
  );
  both(`${b}: **posts to Chat** (429s included)`, (r) => r.posts);
  both(`${b}: **429s met**`, (r) => r.throttled);
  both(`${b}: messages Chat accepted`, (r) => r.accepted);
  both(`${b}: most events in one message`, (r) => r.maxPerMessage);
  both(`${b}: events shown twice or more (duplicates)`, (r) => r.duplicates);
  both(
    `${b}: deliveries the Vast.ai-like sender made (retries included)`,
    (r) => r.sender.attempts,
  );
  rows.add(
    `${b}: sender's events: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end (per run)`,
    senderOutcome(ours),
    tutorial ? senderOutcome(tutorial) : "skipped",
  );
  const acksIn = (r: BurstResult) =>
    r.sender.acked === r.events ? (r.sender.lastAckMs ?? 0) / 1000 : Number.POSITIVE_INFINITY;
  rows.add(
    `${b}: time until the sender had a 2xx for every event (s)`,
    spread(ours.map(acksIn), secondsOrNotAll),
    tutorial ? spread(tutorial.map(acksIn), secondsOrNotAll) : "skipped",
  );
  return rows.rows;
}

function secondsOrNotAll(value: number | undefined): string {
  if (value === undefined) return "–";
  if (!Number.isFinite(value)) return "not all";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}
