import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BurstResult } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { RunSummary } from "./load.js";
import type { MachineInfo } from "./machine.js";
import { type RoutesInput, renderRoutes } from "./routes-report.js";
import type { CeilingResult, SessionPlan, SessionResult } from "./sessions.js";
import type { ServeStartsResult, StartupResult } from "./startup.js";
import { REPO_ROOT } from "./targets.js";

/**
 * The bench's one renderer. A run saves what it measured to one JSON document; the report, the
 * verdicts, the exit code and BENCHMARKS.md's section all come from reading it back (`tsx
 * bench/render.ts [FILE] [--write]` does the same for a saved run).
 */
export interface ReportInput {
  config: BenchConfig;
  machine: MachineInfo;
  startedAt: Date;
  /** Wall time of the whole run, s. */
  durationS: number;
  loadAverageAtStart: string;
  loadAverageAtEnd: string;
  /** Each part is absent when `--only` left it out. */
  startup?: { cli: StartupResult; serve: ServeStartsResult } | undefined;
  load?: LoadReport | undefined;
  burst?: BurstReport | undefined;
}

type Skipped = { skipped: string };
const isSkipped = <T>(value: T | Skipped): value is Skipped =>
  typeof value === "object" && value !== null && "skipped" in value;

/** The load sessions: every Chat latency, every repeat; the ceiling once per repeat. */
export interface LoadReport {
  plan: SessionPlan;
  /** Empty for `--only rss`, which does not measure the ceiling. */
  ceilings: CeilingResult[];
  ours: SessionResult[];
  tutorial: SessionResult[] | Skipped;
}

export interface BurstReport {
  ours: BurstResult[];
  tutorial: BurstResult[] | Skipped;
}

// ---- The document: maps, infinite latencies ("no answer") and the start date survive the round trip.

/** BENCH_RESULTS_FILE: another document, so runs compared side by side (compare-stores.ts) keep theirs. */
export const RESULTS_FILE = process.env.BENCH_RESULTS_FILE ?? join(REPO_ROOT, "bench-results.json");
/** The routed burst's document (bench/routes-burst.ts), BENCH_RESULTS_FILE too when set. */
export const ROUTES_RESULTS_FILE =
  process.env.BENCH_RESULTS_FILE ?? join(REPO_ROOT, "bench-routes-results.json");

export function saveResults(input: ReportInput | RoutesInput, file = RESULTS_FILE): void {
  const replacer = (_key: string, value: unknown): unknown => {
    if (value instanceof Map) return { $map: [...value] };
    if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
    return value;
  };
  writeFileSync(file, `${JSON.stringify(input, replacer, 1)}\n`);
}

export function loadResults(file: string): ReportInput {
  const input = JSON.parse(readFileSync(file, "utf8"), (_key, value: unknown) => {
    if (typeof value === "object" && value !== null) {
      if ("$map" in value) return new Map(value.$map as [unknown, unknown][]);
      if ("$number" in value) return Number(value.$number);
    }
    return value;
  }) as ReportInput & { startedAt: string };
  return { ...input, startedAt: new Date(input.startedAt) };
}

// ---- BENCHMARKS.md: each script (the bench, the soak) replaces only the text between its own markers.

/**
 * Replaces the part between `begin` and `end` (read, replace and rename back to back: a reader
 * never sees a half-written file); throws if the markers are not there once each, in order.
 */
export function writeSection(
  path: string,
  content: string,
  begin = "<!-- bench:begin -->",
  end = "<!-- bench:end -->",
): void {
  const text = readFileSync(path, "utf8");
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from === -1 || to === -1 || to < from) {
    throw new Error(`the markers ${begin} … ${end} are missing or out of order`);
  }
  if (text.indexOf(begin, from + 1) !== -1 || text.indexOf(end, to + 1) !== -1) {
    throw new Error(`the markers ${begin} … ${end} appear more than once`);
  }
  const temporary = `${path}.section-${process.pid}.tmp`;
  writeFileSync(
    temporary,
    `${text.slice(0, from + begin.length)}\n${content.trim()}\n${text.slice(to)}`,
  );
  renameSync(temporary, path);
}

// ---- Numbers as the report shows them; "–" for a missing one.

export type Maybe = number | undefined;
type Format = (value: Maybe) => string;
const orDash =
  (format: (value: number) => string): Format =>
  (value) =>
    value === undefined ? "–" : format(value);

/** Median of the defined values; Infinity (a request with no answer) sorts last. */
export function median(values: readonly Maybe[]): Maybe {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] as number) + upper) / 2;
}

const sum = (values: readonly number[]) => values.reduce((total, v) => total + v, 0);
export const int = (value: number) => Math.round(value).toLocaleString("en-US");
const count = orDash(int);
const oneDecimal = orDash((v) => v.toFixed(1));
/** Milliseconds with sensible precision; "no answer" for a percentile that fell on one. */
const ms = orDash((v) =>
  !Number.isFinite(v) ? "no answer" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : int(v),
);
/** Seconds for the burst; "not all" when the sender never had every 2xx. */
const seconds = orDash((v) => (!Number.isFinite(v) ? "not all" : v.toFixed(v < 10 ? 2 : 1)));
/** 0.163 → "16.3 %". */
const percent = orDash((v) =>
  Number.isFinite(v) ? `${(v * 100).toFixed(v < 0.1 ? 2 : 1)} %` : "–",
);
const times = (r: number) =>
  r === 0 ? "0×" : `${r < 0.1 ? r.toPrecision(2) : r < 10 ? r.toFixed(2) : int(r)}×`;

/** A ratio as "4.16×"; "–" when either side is missing, infinite or zero below. */
function ratio(a: Maybe, b: Maybe): string {
  const finite = a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b);
  return finite && b !== 0 ? times(a / b) : "–";
}

/** The median of the repeats, then their range when there is one: "0.44 (0.40–0.61)". */
export function spread(values: readonly Maybe[], format: Format): string {
  const defined = values.filter((v): v is number => v !== undefined);
  if (defined.length === 0) return "–";
  const middle = format(median(defined));
  const [low, high] = [format(Math.min(...defined)), format(Math.max(...defined))];
  return defined.length === 1 || low === high ? middle : `${middle} (${low}–${high})`;
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [head, head.map(() => "---"), ...rows]
    .map((line) => `| ${line.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`)
    .join("\n");
}

/**
 * Targets: a latency or rate target is judged on the median of the repeats; a correctness target
 * (nothing acknowledged lost, no event lost) must hold in every run and sets the exit code. Each
 * is judged while its row is built: `judge` keeps the verdict and returns the row's cell.
 */
export function verdicts() {
  const list: { name: string; pass: boolean; correctness: boolean }[] = [];
  const failed = () => list.filter((v) => !v.pass);
  return {
    any: () => list.length > 0,
    judge: (name: string, pass: boolean, cell: string, correctness = false) => {
      list.push({ name, pass, correctness });
      return `${cell} ${pass ? "**PASS**" : "**FAIL**"}`;
    },
    summary: () =>
      `Targets met: ${list.length - failed().length} of ${list.length}.` +
      (failed().length
        ? ` Not met: ${failed()
            .map((v) => v.name)
            .join("; ")}.`
        : ""),
    correct: () => list.every((v) => v.pass || !v.correctness),
  };
}
type Judge = ReturnType<typeof verdicts>["judge"];

/** How a run was made: the command, when, on what machine and under what load, its repeats. */
export function header(
  command: string,
  run: { machine: MachineInfo; startedAt: Date; durationS: number },
  [loadAtStart, loadAtEnd]: [string, string],
  python: string,
  sharing: string,
  repeats: string,
): string[] {
  const { machine: m } = run;
  return [
    `- Command: ${command}`,
    `- Run: ${run.startedAt.toISOString()}, took ${(run.durationS / 60).toFixed(1)} min; commit ${m.commit ?? "unknown"}${m.dirty ? " with uncommitted changes" : ""}`,
    `- Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB.toFixed(1)} GiB RAM, node ${m.node}, store ${m.store}${python}; shared with other work, and ${sharing} share its cores`,
    `- Load average (1, 5, 15 min): ${loadAtStart} at the start, ${loadAtEnd} at the end`,
    `- Repeats: ${repeats}`,
  ];
}

const TARGETS = {
  /** `vast-gchat --help` at most this many times a bare `node -e 0`. */
  helpVsBareNode: 2.5,
  /** Ack latency p99 at the fixed rate, and accepted events/s at saturation, per Chat latency. */
  ackP99Ms: 10,
  acceptedPerS: 2000,
  missingAfterKill: 0,
  burstLost: 0,
};

// ---- The table: a metric per row, ours and the tutorial's side by side.

const COLUMNS = {
  metric: "metric",
  ours: "vast-gchat",
  tutorial: "tutorial adapter",
  ratio: "vast-gchat ÷ tutorial",
  baseline: "baseline (same run)",
  target: "target",
};
/** One row; a cell left out shows "–". */
type Row = Partial<Record<keyof typeof COLUMNS, string>> & { metric: string };
type Cells = { baseline?: string; target?: string; noRatio?: boolean };

/** Ours and the tutorial's figures (undefined: it was skipped), with the ratio of their medians. */
function sides(
  metric: string,
  ours: readonly Maybe[],
  tutorial: readonly Maybe[] | undefined,
  format: Format,
  { noRatio = false, ...cells }: Cells = {},
): Row {
  return {
    metric,
    ours: spread(ours, format),
    tutorial: tutorial ? spread(tutorial, format) : "skipped",
    ratio: tutorial && !noRatio ? ratio(median(ours), median(tutorial)) : "–",
    ...cells,
  };
}

function startupRows({ startup }: ReportInput, judge: Judge): Row[] {
  if (!startup) return [];
  const { cli, serve } = startup;
  const [help, bare] = [median(cli.helpMs), median(cli.bareNodeMs)];
  const helpRatio = help === undefined || !bare ? undefined : help / bare;
  const cell = `≤ ${TARGETS.helpVsBareNode}× \`node -e 0\``;
  const timedBy = cli.tool === "hyperfine" ? "timed by hyperfine, as" : "interleaved with";
  return [
    {
      metric: `start-up: \`vast-gchat --help\` (ms; ${cli.helpMs.length} runs, ${timedBy} \`node -e 0\`)`,
      ours: spread(cli.helpMs, ms),
      tutorial: "no `--help` (n/a)",
      baseline: `bare \`node -e 0\`: ${spread(cli.bareNodeMs, ms)} ms; \`--help\` ÷ it = ${helpRatio === undefined ? "–" : times(helpRatio)}`,
      target:
        helpRatio === undefined
          ? cell
          : judge(`\`--help\` ${cell}`, helpRatio <= TARGETS.helpVsBareNode, cell),
    },
    sides(
      `start-up: from spawn until the adapter answers /health (ms; ${serve.oursMs.length} starts each)`,
      serve.oursMs,
      serve.tutorialMs,
      ms,
    ),
  ];
}

/** "2xx / non-2xx / no answer", summed over the repeats. */
function answers(runs: readonly (RunSummary | undefined)[] | undefined): string {
  if (!runs) return "skipped";
  const present = runs.filter((r): r is RunSummary => r !== undefined);
  if (present.length === 0) return "–";
  const total = (pick: (r: RunSummary) => number) => int(sum(present.map(pick)));
  const skipped = sum(present.map((r) => r.skipped));
  return (
    `${total((r) => r.ok)} / ${total((r) => r.non2xx)} / ${total((r) => r.noAnswer)}` +
    (skipped ? ` (+${int(skipped)} not sent)` : "")
  );
}

function loadRows({ config, load }: ReportInput, judge: Judge): Row[] {
  if (!load) return [];
  const rows: Row[] = [];
  const ceilingRuns = load.ceilings.map((c) => c.saturation);
  const ceilings = ceilingRuns.map((r) => r.acceptedPerS);
  const ceiling = median(ceilings);
  const hasCeiling = ceilings.length > 0;
  const serverCpu = percent(median(load.ceilings.map((c) => c.serverCpuShare)));
  const generatorCpu = percent(median(ceilingRuns.map((r) => r.generatorCpuShare)));
  const at = (delay: number) => (s: SessionResult) => s.chatDelayMs === delay;
  if (hasCeiling) {
    const cpuPerRequest = median(ceilingRuns.map((r) => r.generatorCpuPerRequestUs));
    rows.push(
      {
        metric:
          "load generator alone: CPU per signed request, and the most it could send on one core",
        baseline:
          cpuPerRequest === undefined
            ? "–"
            : `${cpuPerRequest.toFixed(0)} µs → ${int(1e6 / cpuPerRequest)} requests/s`,
      },
      {
        metric:
          "bare node:http server (the ceiling for any Node receiver): accepted events/s at saturation",
        baseline: `${spread(ceilings, count)}/s; generator at ${generatorCpu} of a core, server at ${serverCpu}`,
      },
      ...config.chatDelaysMs.map((delay) => ({
        metric: `Chat ${delay} ms · the ceiling ÷ our saturated rate (how far the generator can go beyond ours)`,
        ours: ratio(
          ceiling,
          median(load.ours.filter(at(delay)).map((s) => s.saturation.acceptedPerS)),
        ),
      })),
    );
  }
  for (const delay of config.chatDelaysMs) {
    const ours = load.ours.filter(at(delay));
    const tutorial = isSkipped(load.tutorial) ? undefined : load.tutorial.filter(at(delay));
    type Pick = (s: SessionResult) => Maybe;
    const pair = (metric: string, pick: Pick, format: Format, cells?: Cells) =>
      rows.push(sides(metric, ours.map(pick), tutorial?.map(pick), format, cells));
    const answersRow = (metric: string, pick: (s: SessionResult) => RunSummary | undefined) =>
      rows.push({
        metric: `${metric}: answers 2xx / non-2xx / none (all runs)`,
        ours: answers(ours.map(pick)),
        tutorial: answers(tutorial?.map(pick)),
      });
    const noRatio = { noRatio: true };
    if (load.plan.fixedRate) {
      const fixed = `Chat ${delay} ms · fixed ${int(config.rate)}/s × ${config.rateSeconds} s`;
      const p99 = median(ours.map((s) => s.fixed?.p99Ms));
      const name = `ack p99 < ${TARGETS.ackP99Ms} ms at ${config.rate}/s, Chat ${delay} ms`;
      const met = p99 !== undefined && p99 < TARGETS.ackP99Ms;
      pair(`${fixed}: ack latency p50 (ms)`, (s) => s.fixed?.p50Ms, ms);
      pair(`${fixed}: **ack latency p99 (ms)**`, (s) => s.fixed?.p99Ms, ms, {
        target: judge(name, met, `< ${TARGETS.ackP99Ms} ms`),
      });
      const fromSchedule: Pick = (s) => s.fixed?.fromScheduleP99Ms;
      pair(`${fixed}: ack latency p99 from the scheduled send (ms)`, fromSchedule, ms);
      const achieved: Pick = (s) => s.fixed?.achievedRate;
      pair(`${fixed}: rate the generator achieved (events/s)`, achieved, oneDecimal, noRatio);
      pair(`${fixed}: generator send lag p99 (ms)`, (s) => s.fixed?.sendLagP99Ms, ms, noRatio);
      answersRow(fixed, (s) => s.fixed);
    }
    const sat = `Chat ${delay} ms · saturation, ${config.concurrency} in flight × ${config.saturationSeconds} s`;
    const accepted = median(ours.map((s) => s.saturation.acceptedPerS));
    const name = `≥ ${TARGETS.acceptedPerS} accepted events/s, Chat ${delay} ms`;
    const met = accepted !== undefined && accepted >= TARGETS.acceptedPerS;
    const bare = (text: string) => (hasCeiling ? text : "–");
    pair(`${sat}: **accepted events/s**`, (s) => s.saturation.acceptedPerS, count, {
      baseline: bare(`bare node:http: ${spread(ceilings, count)}`),
      target: judge(name, met, `≥ ${int(TARGETS.acceptedPerS)}/s`),
    });
    if (ceiling !== undefined && ceiling > 0) {
      const share = (s: SessionResult) => s.saturation.acceptedPerS / ceiling;
      pair(`${sat}: share of the bare node:http ceiling`, share, percent, { baseline: "100 %" });
    }
    pair(`${sat}: ack latency p50 (ms)`, (s) => s.saturation.p50Ms, ms);
    pair(`${sat}: ack latency p99 (ms)`, (s) => s.saturation.p99Ms, ms);
    answersRow(sat, (s) => s.saturation);
    pair(`${sat}: adapter CPU (share of one core)`, (s) => s.adapterCpuShare, percent, {
      baseline: bare(`bare node:http: ${serverCpu}`),
    });
    const generator: Pick = (s) => s.saturation.generatorCpuShare;
    pair(`${sat}: load generator CPU (share of one core)`, generator, percent, {
      noRatio: true,
      baseline: bare(`driving bare node:http: ${generatorCpu}`),
    });
    const rss = `Chat ${delay} ms · peak RSS (VmHWM, MiB)`;
    pair(`${rss}: idle, after start`, (s) => s.idleRssMiB, oneDecimal);
    pair(`${rss}: **after the load runs**`, (s) => s.loadRssMiB, oneDecimal);
    const posts = `Chat ${delay} ms · posts the fake Chat received during the session`;
    pair(posts, (s) => s.chatPosts, count);
  }
  const kills = load.ours.flatMap((s) => (s.kill ? [s.kill.durability] : []));
  if (kills.length > 0) {
    const durable = kills.every(
      (k) => k.missing === TARGETS.missingAfterKill && k.acknowledged > 0,
    );
    rows.push({
      metric: `kill -9 under saturated load after ${config.killAfterSeconds} s, once per session (${kills.length} kills)`,
      ours: `acknowledged ${int(sum(kills.map((k) => k.acknowledged)))}, missing ${int(sum(kills.map((k) => k.missing)))}`,
      tutorial: "keeps nothing (n/a)",
      target: judge("nothing acknowledged lost to kill -9", durable, "0 missing", true),
    });
  }
  return rows;
}

/** "12.3", or "not all visible after 300 s (287 of 500)" per run. */
function visibleTimes(results: readonly BurstResult[] | undefined): string {
  if (!results) return "skipped";
  if (results.every((r) => r.allVisibleS !== undefined)) {
    return spread(
      results.map((r) => r.allVisibleS),
      oneDecimal,
    );
  }
  return results
    .map((r) =>
      r.allVisibleS !== undefined
        ? r.allVisibleS.toFixed(1)
        : `not all visible after ${int(r.endedS)} s (${int(r.visible)} of ${int(r.events)})`,
    )
    .join("; ");
}

const senderOutcome = (results: readonly BurstResult[] | undefined) =>
  results
    ?.map(
      ({ sender: s }) =>
        `${int(s.acked)} / ${int(s.refused)} / ${int(s.gaveUp)} / ${int(s.cutOff)}`,
    )
    .join("; ") ?? "skipped";

function burstRows({ config, burst }: ReportInput, judge: Judge): Row[] {
  if (!burst) return [];
  const ours = burst.ours;
  const tutorial = isSkipped(burst.tutorial) ? undefined : burst.tutorial;
  const b = `burst of ${int(config.burstEvents)} → 1 space at ${config.burstChatRate} msg/s (runs: ${ours.length} / ${tutorial?.length ?? 0})`;
  const both = (metric: string, pick: (result: BurstResult) => Maybe, target = "–") =>
    sides(`${b}: ${metric}`, ours.map(pick), tutorial?.map(pick), count, { target });
  // A tutorial run that did not show everything ran longer than this, so ours ÷ it is below it.
  let timeRatio = "–";
  const oursTime = median(ours.map((r) => r.allVisibleS));
  if (tutorial && ours.every((r) => r.allVisibleS !== undefined) && oursTime !== undefined) {
    const complete = tutorial.every((r) => r.allVisibleS !== undefined);
    const theirs = median(tutorial.map((r) => (complete ? r.allVisibleS : r.endedS)));
    timeRatio = complete ? ratio(oursTime, theirs) : `< ${ratio(oursTime, theirs)}`;
  }
  const acksIn = (r: BurstResult) =>
    r.sender.acked === r.events ? (r.sender.lastAckMs ?? 0) / 1000 : Number.POSITIVE_INFINITY;
  const noneLost = ours.every((r) => r.lost === TARGETS.burstLost && r.allVisibleS !== undefined);
  return [
    {
      metric: `${b}: **time until every event is visible in Chat (s)**`,
      ours: visibleTimes(ours),
      tutorial: visibleTimes(tutorial),
      ratio: timeRatio,
    },
    both(
      "**events lost** (not visible in Chat when the run ended)",
      (r) => r.lost,
      judge("no burst event lost", noneLost, `${TARGETS.burstLost} in every run`, true),
    ),
    both("**posts to Chat** (429s included)", (r) => r.posts),
    both("**429s met**", (r) => r.throttled),
    both("messages Chat accepted", (r) => r.accepted),
    both("most events in one message", (r) => r.maxPerMessage),
    both("events shown twice or more (duplicates)", (r) => r.duplicates),
    both("deliveries the Vast.ai-like sender made (retries included)", (r) => r.sender.attempts),
    {
      metric: `${b}: sender's events: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end (per run)`,
      ours: senderOutcome(ours),
      tutorial: senderOutcome(tutorial),
    },
    sides(
      `${b}: time until the sender had a 2xx for every event (s)`,
      ours.map(acksIn),
      tutorial?.map(acksIn),
      seconds,
      { noRatio: true },
    ),
  ];
}

/** Each adapter's results, the tutorial's unless it was skipped. */
const bothSides = <T>(part: { ours: T[]; tutorial: T[] | Skipped }): [string, T[]][] => [
  ["vast-gchat", part.ours],
  ...(isSkipped(part.tutorial) ? [] : [["tutorial", part.tutorial] as [string, T[]]]),
];

/** Non-2xx answers and requests without one, summed over the repeats, per adapter and run. */
function problems({ config, load, burst }: ReportInput): string[] {
  const lines: string[] = [];
  type Counts = Iterable<[string, number]> | undefined;
  const note = <T>(label: string, items: T[], pick: (item: T) => Counts, expected = "") => {
    const totals = new Map<string, number>();
    for (const [what, n] of items.flatMap((item) => [...(pick(item) ?? [])])) {
      totals.set(what, (totals.get(what) ?? 0) + n);
    }
    const list = [...totals].map(([what, n]) => `${what} ×${int(n)}`).join(", ");
    if (totals.size > 0) lines.push(`- ${label}: ${list}${expected}`);
  };
  if (load) {
    note("bare node:http", load.ceilings, (c) => c.saturation.problems);
    for (const [name, sessions] of bothSides(load)) {
      for (const delay of config.chatDelaysMs) {
        const mine = sessions.filter((s) => s.chatDelayMs === delay);
        const label = `${name}, Chat ${delay} ms`;
        const cut = " (expected: the connections the kill cut)";
        note(`${label}, fixed rate`, mine, (s) => s.fixed?.problems);
        note(`${label}, saturation`, mine, (s) => s.saturation.problems);
        note(`${label}, kill run`, mine, (s) => s.kill?.run.problems, cut);
      }
    }
  }
  for (const [name, results] of burst ? bothSides(burst) : []) {
    note(`${name}, burst (each retried or final, see the method)`, results, ({ sender }) => [
      ...[...sender.statuses].map(([status, n]): [string, number] => [`HTTP ${status}`, n]),
      ...sender.errors,
    ]);
  }
  return lines.length
    ? ["", "Answers other than 2xx, and requests without an answer (all runs):", "", ...lines]
    : [];
}

/** The report, and whether every correctness target held (the exit code). */
export function renderReport(input: ReportInput): { text: string; correct: boolean } {
  const { machine, config, burst } = input;
  const { judge, any, summary, correct } = verdicts();
  const rows = [
    ...startupRows(input, judge),
    ...loadRows(input, judge),
    ...burstRows(input, judge),
  ];
  const keys = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[];
  const reasons = new Set<string>();
  if (input.load && isSkipped(input.load.tutorial)) reasons.add(input.load.tutorial.skipped);
  if (input.burst && isSkipped(input.burst.tutorial)) reasons.add(input.burst.tutorial.skipped);
  if (input.startup && input.startup.serve.tutorialMs === undefined) reasons.add("not available");
  // The command as typed, so anyone can run the same thing.
  const env = config.envSettings.length ? `${config.envSettings.join(" ")} ` : "";
  const args = config.argv.length ? ` -- ${config.argv.join(" ")}` : "";
  const only = config.only === "all" ? "" : ` (only the ${config.only} part)`;
  const quick = config.quick ? " (`--quick`: short runs, not for comparison)" : "";
  const repeats = [
    input.load &&
      `every load figure ${config.repeats} time(s) per Chat latency (the median, with the range across runs in brackets)`,
    input.startup &&
      `start-up ${config.startupRuns} timed runs each after ${config.startupWarmupRuns} warm-up, ${config.serveStarts} starts of each adapter`,
    burst &&
      `burst ${burst.ours.length} run(s) of vast-gchat, ${isSkipped(burst.tutorial) ? 0 : burst.tutorial.length} of the tutorial's`,
  ];
  const text = [
    ...header(
      `\`npm run build && ${env}npm run bench${args}\`${only}${quick}`,
      input,
      [input.loadAverageAtStart, input.loadAverageAtEnd],
      machine.python ? `, ${machine.python}` : "",
      "the generator, the fake Chat and the adapter under test",
      repeats.filter(Boolean).join("; "),
    ),
    "",
    table(
      Object.values(COLUMNS),
      rows.map((row) => keys.map((key) => row[key] ?? "–")),
    ),
    "",
    ...(any() ? [summary()] : []),
    ...(reasons.size ? ["", `Tutorial adapter skipped: ${[...reasons].join("; ")}.`] : []),
    ...problems(input),
    "",
    "Method:",
    "",
    ...method(input),
    "",
  ].join("\n");
  return { text, correct: correct() };
}

/**
 * The one report path: reads a document (the bench's or the routed burst's), prints its report,
 * writes it into its section of BENCHMARKS.md when `write` is set; true when every correctness
 * target held.
 */
export function renderDocument(file = RESULTS_FILE, write = false): boolean {
  const input = loadResults(file) as ReportInput | RoutesInput;
  const { text, correct } = "kind" in input ? renderRoutes(input) : renderReport(input);
  console.log(text);
  const markers =
    "kind" in input ? (["<!-- routes:begin -->", "<!-- routes:end -->"] as const) : [];
  if (write) writeSection(join(REPO_ROOT, "BENCHMARKS.md"), text, ...markers);
  return correct;
}

// ---- How each figure was taken: a number without its method cannot be checked.

function method({ config, startup, load, burst }: ReportInput): string[] {
  const lines: string[] = [];
  if (startup) {
    lines.push(
      `- Start-up: \`node bin/vast-gchat.js --help\` and a bare \`node -e 0\` (the floor for any Node CLI), with the same environment and output to /dev/null, wall time from spawn to exit; ${startup.cli.tool === "bench loop" ? `timed by the bench's own loop (hyperfine was not installed): ${config.startupWarmupRuns} untimed run(s) of each first, then ${config.startupRuns} timed runs of each taking turns, the order swapped every round` : `timed by hyperfine (\`--shell=none\`, ${config.startupWarmupRuns} warm-up run(s), then ${config.startupRuns} timed runs of each)`}. The ratio is median ÷ median. The adapters' own start-up: \`vast-gchat serve\` and \`python3 vast_google_chat_adapter.py\`, from spawn until GET /health answers 200, polled every 5 ms.`,
    );
  }
  if (load) {
    lines.push(
      `- Load: each request is a signed delivery as Vast.ai sends it (a fresh X-Vast-Timestamp and signature, a unique event_id from sampleEvent, five event types in turn), POSTed over keep-alive connections, one request per connection at a time, to 127.0.0.1 (the fixed-rate run through an undici Pool, the saturation runs through autocannon). The generator signs each body before its clock starts.`,
      `- Sessions: for each fake Chat latency (${config.chatDelaysMs.map((d) => `${d} ms`).join(", ")}), each adapter gets a fresh process, store and fake Chat that answers every post after that delay. A session: start, 1 s idle (peak RSS "idle"), a ${config.warmupSeconds} s unmeasured saturated warm-up, ${load.plan.fixedRate === false ? "" : "the fixed-rate run, "}the saturation run (peak RSS "after the load runs" is read right after it; before each run the bench waits, up to 30 s, until the adapter has stopped posting to Chat, so the tutorial's backlog from one run is not measured in the next)${load.plan.kill === false ? "" : `, and for vast-gchat a kill -9 after ${config.killAfterSeconds} s of a further saturated run`}. Repeat r runs the ceiling, then every latency's sessions, ours before the tutorial's, so slow moments of the shared machine fall on all of them; the table shows the median of the ${config.repeats} repeat(s) with the range in brackets, and ratios of medians.`,
      `- Fixed rate: open loop, request i leaves at start + i/${config.rate} s whatever the earlier ones are doing (up to ${int(config.openConnections)} connections and ${int(config.maxInFlight)} requests in flight, beyond which a send is skipped and counted as not sent). Ack latency runs from handing the request to the connection pool to the end of the answer; the "from the scheduled send" row adds the generator's own lateness (free of coordinated omission). A request with no answer within ${config.requestTimeoutMs / 1000} s counts as infinite latency ("no answer").`,
      `- Saturation: closed loop driven by autocannon (its setupRequest signs each delivery), ${config.concurrency} requests always in flight for ${config.saturationSeconds} s; accepted events/s counts 2xx answers within that window; answers still in flight when it closes are dropped. The tutorial's server speaks HTTP/1.0 (a new connection for every request) and listens with Python's default backlog of 5, which probably explains the requests it never answers at 64 in flight; that is how the tutorial's adapter behaves, and the same generator drives the bare server far faster. The ceiling is the same warm-up and run against a bare node:http server that reads the body and answers 200 {"ok":true} (bench/bare-server.ts), measured once per repeat.`,
      "- Generator headroom: the bench process's CPU time (process.cpuUsage) per request sent while driving the bare server gives the most it could send on one core; its CPU share in each run shows whether it was near that limit. The fake Chat lives in the bench process too, so while the tutorial's adapter posts for every request its share includes the fake Chat's work. Adapter and bare server CPU come from /proc/<pid>/stat (all threads).",
      "- Peak RSS is VmHWM from /proc/<pid>/status (the highest resident set since the process started, all threads).",
      `- Delivery to Chat is not what the load runs measure (the burst does): vast-gchat acknowledges once the event is committed to SQLite and posts at most one message a second per space, oldest first, keeping the rest queued; the tutorial posts inside each request, so its ack latency includes Chat's.`,
      "- kill -9: SIGKILL to vast-gchat in the middle of a saturated run, then its SQLite file is opened read-only and every event id that got a 2xx during the session (warm-up, fixed, saturation, kill run) must be in `events`. The connection resets the kill causes are expected.",
    );
  }
  if (burst) {
    lines.push(
      `- Burst: ${int(config.burstEvents)} signed deliveries with unique subjects (\`burst 0001\`…, five event types in turn), all queued at once and sent with at most ${config.burstConcurrency} requests in flight, into one Chat space whose fake allows ${config.burstChatRate} message(s) a second: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.burstChatDelayMs} ms. A fresh adapter and a fresh fake Chat for every run; vast-gchat runs \`serve\` with its defaults (1 message/s per space, digests on). Runs: ${config.burstRepeats} of vast-gchat, ${config.tutorialBurstRepeats} of the tutorial's (each of its runs takes up to ${config.burstTutorialCapSeconds} s, because Chat lets through about one of its messages a second).`,
      `- Vast.ai's retries, emulated the same way for both adapters (Vast.ai does not publish its schedule, so this is an assumption): an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s, or failing to connect, is sent again (the same body, a fresh X-Vast-Timestamp and signature, X-Vast-Delivery-Attempt + 1) after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter from a seeded generator, up to ${config.burstMaxAttempts} attempts per event; then the sender gives up on it. A 2xx or any other 4xx ends an event's deliveries.`,
      `- Visible: a subject counts once it appears in a message the fake Chat accepted: in \`fallbackText\` for vast-gchat (a digest lists every event), in \`text\` for the tutorial. The time runs from the first send to the last subject's appearance. Lost: not visible when the run ended. vast-gchat's runs are capped at ${config.burstOursCapSeconds} s; the tutorial's at ${config.burstTutorialCapSeconds} s, or earlier once its sender has nothing left to send (it posts inside the request, so nothing can reach Chat after that).`,
      "- Posts are every request the fake Chat received, 429s included. The tutorial answers 502 on each 429 and relies on the retries above.",
    );
  }
  return lines;
}
