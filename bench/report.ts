import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BurstResult, SenderStats } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { RunSummary } from "./load.js";
import type { MachineInfo } from "./machine.js";
import type { SessionResult as RoutedSession, SpaceResult } from "./routes-burst.js";
import type { CeilingResult, SessionPlan, SessionResult } from "./sessions.js";
import type { ServeStartsResult, StartupResult } from "./startup.js";
import { REPO_ROOT } from "./targets.js";

/**
 * The bench's one renderer. A run saves what it measured to one JSON document; the report, the
 * verdicts, the exit code and BENCHMARKS.md's section all come from reading it back (`tsx
 * bench/render.ts [FILE] [--write]` does the same for a saved run).
 */
export interface ReportInput extends Run {
  config: BenchConfig;
  /** Each part is absent when `--only` left it out. */
  startup?: { cli: StartupResult; serve: ServeStartsResult } | undefined;
  load?: LoadReport | undefined;
  burst?: BurstReport | undefined;
}
type Skipped = { skipped: string };
/** The load sessions; `ceilings` is empty for `--only rss`. */
export interface LoadReport {
  plan: SessionPlan;
  ceilings: CeilingResult[];
  ours: SessionResult[];
  tutorial: SessionResult[] | Skipped;
}
export type BurstReport = { ours: BurstResult[]; tutorial: BurstResult[] | Skipped };
const tutorialOf = <T>(part: { tutorial: T[] | Skipped }) =>
  Array.isArray(part.tutorial) ? part.tutorial : undefined;

/** BENCH_RESULTS_FILE: another document, so runs compared side by side (compare-stores.ts) keep theirs. */
export const RESULTS_FILE = process.env.BENCH_RESULTS_FILE ?? join(REPO_ROOT, "bench-results.json");
export const ROUTES_RESULTS_FILE =
  process.env.BENCH_RESULTS_FILE ?? join(REPO_ROOT, "bench-routes-results.json");

/** Maps and infinite latencies ("no answer") survive the round trip; so does the start date. */
export function saveResults(input: ReportInput | RoutesInput, file = RESULTS_FILE): void {
  const replacer = (_key: string, value: unknown): unknown =>
    value instanceof Map
      ? { $map: [...value] }
      : typeof value === "number" && !Number.isFinite(value)
        ? { $number: String(value) }
        : value;
  writeFileSync(file, `${JSON.stringify(input, replacer, 1)}\n`);
}

export function loadResults<T = ReportInput>(file: string): T {
  const input = JSON.parse(readFileSync(file, "utf8"), (_key, value: unknown) => {
    if (typeof value !== "object" || value === null) return value;
    if ("$map" in value) return new Map(value.$map as [unknown, unknown][]);
    return "$number" in value ? Number(value.$number) : value;
  });
  // Documents of older runs name the load averages loadAverageAtStart and loadAverageAtEnd.
  const { loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd } = input;
  return { loadAtStart, loadAtEnd, ...input, startedAt: new Date(input.startedAt) };
}

/**
 * Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (each script owns one
 * section), by a rename so a reader never sees a half-written file; throws unless each marker is
 * there once, in order.
 */
export function writeSection(content: string, name = "bench"): void {
  const path = join(REPO_ROOT, "BENCHMARKS.md");
  const [begin, end] = [`<!-- ${name}:begin -->`, `<!-- ${name}:end -->`];
  const text = readFileSync(path, "utf8");
  const [from, to] = [text.indexOf(begin), text.indexOf(end)];
  if (from === -1 || to < from || text.split(begin).length > 2 || text.split(end).length > 2) {
    throw new Error(`the markers ${begin} … ${end} are missing, out of order or repeated`);
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
  (v) =>
    v === undefined ? "–" : format(v);
const defined = (values: readonly Maybe[]) => values.filter((v): v is number => v !== undefined);

/** Median of the defined values; Infinity (a request with no answer) sorts last. */
export function median(values: readonly Maybe[]): Maybe {
  const sorted = defined(values).sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1 || sorted.length === 0) return sorted[middle];
  return ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
export const sum = (values: readonly number[]) => values.reduce((total, v) => total + v, 0);
export const int = (value: number) => Math.round(value).toLocaleString("en-US");
export const count = orDash(int);
export const oneDecimal = orDash((v) => v.toFixed(1));
const ms = orDash((v) =>
  !Number.isFinite(v) ? "no answer" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : int(v),
);
/** Seconds; "not all" when the sender never had every 2xx. */
const seconds = orDash((v) => (!Number.isFinite(v) ? "not all" : v.toFixed(v < 10 ? 2 : 1)));
const percent = orDash((v) =>
  Number.isFinite(v) ? `${(v * 100).toFixed(v < 0.1 ? 2 : 1)} %` : "–",
);
const times = (r: number) =>
  r === 0 ? "0×" : `${r < 0.1 ? r.toPrecision(2) : r < 10 ? r.toFixed(2) : int(r)}×`;
/** "4.16×"; "–" when either side is missing, infinite or zero below. */
const ratio = (a: Maybe, b: Maybe) =>
  a !== undefined && b && Number.isFinite(a) && Number.isFinite(b) ? times(a / b) : "–";

/** The median of the repeats, then their range when there is one: "0.44 (0.40–0.61)". */
export function spread(values: readonly Maybe[], format: Format): string {
  const known = defined(values);
  if (known.length === 0) return "–";
  const [low, high] = [format(Math.min(...known)), format(Math.max(...known))];
  const middle = format(median(known));
  return known.length === 1 || low === high ? middle : `${middle} (${low}–${high})`;
}
/** As spread, but "not all (n of m)" when a repeat has no figure (a run that did not finish). */
const spreadAll = (values: readonly Maybe[], format: Format) => {
  const known = defined(values).length;
  if (known === values.length) return spread(values, format);
  return known === 0 ? "not all" : `not all (${known} of ${values.length})`;
};

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [head, head.map(() => "---"), ...rows]
    .map((line) => `| ${line.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`)
    .join("\n");
}

/**
 * Targets: a latency or rate target is judged on the median of the repeats; a correctness target
 * (nothing acknowledged lost, no event lost) must hold in every run and sets the exit code.
 * `judge` keeps the verdict and returns the row's cell.
 */
function verdicts() {
  const list: { name: string; pass: boolean; correctness: boolean }[] = [];
  const failed = () => list.filter((v) => !v.pass).map((v) => v.name);
  return {
    judge: (name: string, pass: boolean, cell: string, correctness = false) => {
      list.push({ name, pass, correctness });
      return `${cell} ${pass ? "**PASS**" : "**FAIL**"}`;
    },
    summary: () =>
      list.length === 0
        ? []
        : [
            `Targets met: ${list.length - failed().length} of ${list.length}.` +
              (failed().length ? ` Not met: ${failed().join("; ")}.` : ""),
          ],
    correct: () => list.every((v) => v.pass || !v.correctness),
  };
}
type Judge = ReturnType<typeof verdicts>["judge"];

/** How a run was made (the bench's, the routed burst's): when, on what machine, under what load. */
export type Run = { machine: MachineInfo; startedAt: Date; durationS: number } & Record<
  `loadAt${"Start" | "End"}`,
  string
>;

/** The header of a report: the command, the run, its repeats. */
function header(run: Run, command: string, sharing: string, repeats: string, python = "") {
  const m = run.machine;
  return [
    `- Command: ${command}`,
    `- Run: ${run.startedAt.toISOString()}, took ${(run.durationS / 60).toFixed(1)} min; commit ${m.commit ?? "unknown"}${m.dirty ? " with uncommitted changes" : ""}`,
    `- Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB.toFixed(1)} GiB RAM, node ${m.node}, store ${m.store}${python}; shared with other work, and ${sharing} share its cores`,
    `- Load average (1, 5, 15 min): ${run.loadAtStart} at the start, ${run.loadAtEnd} at the end`,
    `- Repeats: ${repeats}`,
  ];
}

/** Counts by label ("HTTP 502 ×3, timeout ×5"), summed over `items`; "" when there are none. */
function tally<T>(items: readonly T[], pick: (item: T) => Iterable<[string, number]> | undefined) {
  const totals = new Map<string, number>();
  for (const [what, n] of items.flatMap((item) => [...(pick(item) ?? [])])) {
    totals.set(what, (totals.get(what) ?? 0) + n);
  }
  return [...totals].map(([what, n]) => `${what} ×${int(n)}`).join(", ");
}
const senderProblems = (sender: SenderStats): [string, number][] => [
  ...[...sender.statuses].map(([status, n]): [string, number] => [`HTTP ${status}`, n]),
  ...sender.errors,
];
const senderOutcome = (results: readonly { sender: SenderStats }[] | undefined) =>
  results
    ?.map(({ sender: s }) => [s.acked, s.refused, s.gaveUp, s.cutOff].map(int).join(" / "))
    .join("; ") ?? "skipped";
const acksInS = (r: { sender: SenderStats; events: number }) =>
  r.sender.acked === r.events ? (r.sender.lastAckMs ?? 0) / 1000 : Number.POSITIVE_INFINITY;

// ---- The bench's table: a metric per row, ours and the tutorial's side by side.

const TARGETS = { helpVsBareNode: 2.5, ackP99Ms: 10, acceptedPerS: 2000 };
const COLUMNS = [
  ...["metric", "vast-gchat", "tutorial adapter", "vast-gchat ÷ tutorial"],
  ...["baseline (same run)", "target"],
];
type Row = string[];
/** metric, ours, the tutorial's, ratio, baseline, target: "–" for those left out. */
const row = (...cells: string[]): Row => [...cells, "–", "–", "–", "–", "–"].slice(0, 6);

/** Ours and the tutorial's figures (undefined: skipped), with the ratio of their medians. */
function sides(
  metric: string,
  ours: readonly Maybe[],
  tutorial: readonly Maybe[] | undefined,
  format: Format,
  { noRatio = false, baseline = "–", target = "–" } = {},
): Row {
  const ratioCell = tutorial && !noRatio ? ratio(median(ours), median(tutorial)) : "–";
  const theirs = tutorial ? spread(tutorial, format) : "skipped";
  return row(metric, spread(ours, format), theirs, ratioCell, baseline, target);
}

function startupRows({ startup }: ReportInput, judge: Judge): Row[] {
  if (!startup) return [];
  const { cli, serve } = startup;
  const [help, bare] = [median(cli.helpMs), median(cli.bareNodeMs)];
  const helpRatio = help === undefined || !bare ? undefined : help / bare;
  const cell = `≤ ${TARGETS.helpVsBareNode}× \`node -e 0\``;
  const timedBy = cli.tool === "hyperfine" ? "timed by hyperfine, as" : "interleaved with";
  return [
    row(
      `start-up: \`vast-gchat --help\` (ms; ${cli.helpMs.length} runs, ${timedBy} \`node -e 0\`)`,
      spread(cli.helpMs, ms),
      "no `--help` (n/a)",
      "–",
      `bare \`node -e 0\`: ${spread(cli.bareNodeMs, ms)} ms; \`--help\` ÷ it = ${helpRatio === undefined ? "–" : times(helpRatio)}`,
      helpRatio === undefined
        ? cell
        : judge(`\`--help\` ${cell}`, helpRatio <= TARGETS.helpVsBareNode, cell),
    ),
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
  const bare = (text: string) => (ceilings.length > 0 ? text : "–");
  const serverCpu = percent(median(load.ceilings.map((c) => c.serverCpuShare)));
  const generatorCpu = percent(median(ceilingRuns.map((r) => r.generatorCpuShare)));
  const at = (delay: number) => (s: SessionResult) => s.chatDelayMs === delay;
  const saturated = (delay: number) =>
    median(load.ours.filter(at(delay)).map((s) => s.saturation.acceptedPerS));
  if (ceilings.length > 0) {
    const us = median(ceilingRuns.map((r) => r.generatorCpuPerRequestUs));
    const perRequest = us ? `${us.toFixed(0)} µs → ${int(1e6 / us)} requests/s` : "–";
    rows.push(
      row(
        "load generator alone: CPU per signed request, and the most it could send on one core",
        ...["–", "–", "–", perRequest],
      ),
      row(
        "bare node:http server (the ceiling for any Node receiver): accepted events/s at saturation",
        ...["–", "–", "–"],
        `${spread(ceilings, count)}/s; generator at ${generatorCpu} of a core, server at ${serverCpu}`,
      ),
      ...config.chatDelaysMs.map((delay) =>
        row(
          `Chat ${delay} ms · the ceiling ÷ our saturated rate (how far the generator can go beyond ours)`,
          ratio(ceiling, saturated(delay)),
        ),
      ),
    );
  }
  const noRatio = { noRatio: true };
  for (const delay of config.chatDelaysMs) {
    const ours = load.ours.filter(at(delay));
    const tutorial = tutorialOf(load)?.filter(at(delay));
    const pair = (metric: string, pick: (s: SessionResult) => Maybe, f: Format, cells = {}) =>
      rows.push(sides(metric, ours.map(pick), tutorial?.map(pick), f, cells));
    const answersRow = (metric: string, pick: (s: SessionResult) => RunSummary | undefined) =>
      rows.push(
        row(
          `${metric}: answers 2xx / non-2xx / none (all runs)`,
          answers(ours.map(pick)),
          answers(tutorial?.map(pick)),
        ),
      );
    if (load.plan.fixedRate) {
      const fixed = `Chat ${delay} ms · fixed ${int(config.rate)}/s × ${config.rateSeconds} s`;
      const p99 = median(ours.map((s) => s.fixed?.p99Ms));
      const name = `ack p99 < ${TARGETS.ackP99Ms} ms at ${config.rate}/s, Chat ${delay} ms`;
      const met = p99 !== undefined && p99 < TARGETS.ackP99Ms;
      pair(`${fixed}: ack latency p50 (ms)`, (s) => s.fixed?.p50Ms, ms);
      pair(`${fixed}: **ack latency p99 (ms)**`, (s) => s.fixed?.p99Ms, ms, {
        target: judge(name, met, `< ${TARGETS.ackP99Ms} ms`),
      });
      const fromSchedule = (s: SessionResult) => s.fixed?.fromScheduleP99Ms;
      pair(`${fixed}: ack latency p99 from the scheduled send (ms)`, fromSchedule, ms);
      const achieved = (s: SessionResult) => s.fixed?.achievedRate;
      pair(`${fixed}: rate the generator achieved (events/s)`, achieved, oneDecimal, noRatio);
      pair(`${fixed}: generator send lag p99 (ms)`, (s) => s.fixed?.sendLagP99Ms, ms, noRatio);
      answersRow(fixed, (s) => s.fixed);
    }
    const sat = `Chat ${delay} ms · saturation, ${config.concurrency} in flight × ${config.saturationSeconds} s`;
    const accepted = saturated(delay);
    const name = `≥ ${TARGETS.acceptedPerS} accepted events/s, Chat ${delay} ms`;
    const met = accepted !== undefined && accepted >= TARGETS.acceptedPerS;
    pair(`${sat}: **accepted events/s**`, (s) => s.saturation.acceptedPerS, count, {
      baseline: bare(`bare node:http: ${spread(ceilings, count)}`),
      target: judge(name, met, `≥ ${int(TARGETS.acceptedPerS)}/s`),
    });
    if (ceiling) {
      const share = (s: SessionResult) => s.saturation.acceptedPerS / ceiling;
      pair(`${sat}: share of the bare node:http ceiling`, share, percent, { baseline: "100 %" });
    }
    pair(`${sat}: ack latency p50 (ms)`, (s) => s.saturation.p50Ms, ms);
    pair(`${sat}: ack latency p99 (ms)`, (s) => s.saturation.p99Ms, ms);
    answersRow(sat, (s) => s.saturation);
    pair(`${sat}: adapter CPU (share of one core)`, (s) => s.adapterCpuShare, percent, {
      baseline: bare(`bare node:http: ${serverCpu}`),
    });
    const generator = (s: SessionResult) => s.saturation.generatorCpuShare;
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
    const durable = kills.every((k) => k.missing === 0 && k.acknowledged > 0);
    rows.push(
      row(
        `kill -9 under saturated load after ${config.killAfterSeconds} s, once per session (${kills.length} kills)`,
        `acknowledged ${int(sum(kills.map((k) => k.acknowledged)))}, missing ${int(sum(kills.map((k) => k.missing)))}`,
        "keeps nothing (n/a)",
        "–",
        "–",
        judge("nothing acknowledged lost to kill -9", durable, "0 missing", true),
      ),
    );
  }
  return rows;
}

/** "12.3", or "not all visible after 300 s (287 of 500)" per run. */
function visibleTimes(results: readonly BurstResult[] | undefined): string {
  if (!results) return "skipped";
  const times = results.map((r) => r.allVisibleS);
  if (times.every((t) => t !== undefined)) return spread(times, oneDecimal);
  return results
    .map((r) =>
      r.allVisibleS !== undefined
        ? r.allVisibleS.toFixed(1)
        : `not all visible after ${int(r.endedS)} s (${int(r.visible)} of ${int(r.events)})`,
    )
    .join("; ");
}

function burstRows({ config, burst }: ReportInput, judge: Judge): Row[] {
  if (!burst) return [];
  const { ours } = burst;
  const tutorial = tutorialOf(burst);
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
  const noneLost = ours.every((r) => r.lost === 0 && r.allVisibleS !== undefined);
  return [
    row(
      `${b}: **time until every event is visible in Chat (s)**`,
      visibleTimes(ours),
      visibleTimes(tutorial),
      timeRatio,
    ),
    both(
      "**events lost** (not visible in Chat when the run ended)",
      (r) => r.lost,
      judge("no burst event lost", noneLost, "0 in every run", true),
    ),
    both("**posts to Chat** (429s included)", (r) => r.posts),
    both("**429s met**", (r) => r.throttled),
    both("messages Chat accepted", (r) => r.accepted),
    both("most events in one message", (r) => r.maxPerMessage),
    both("events shown twice or more (duplicates)", (r) => r.duplicates),
    both("deliveries the Vast.ai-like sender made (retries included)", (r) => r.sender.attempts),
    row(
      `${b}: sender's events: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end (per run)`,
      senderOutcome(ours),
      senderOutcome(tutorial),
    ),
    sides(
      `${b}: time until the sender had a 2xx for every event (s)`,
      ours.map(acksInS),
      tutorial?.map(acksInS),
      seconds,
      { noRatio: true },
    ),
  ];
}

/** Non-2xx answers and requests without one, summed over the repeats, per adapter and run. */
function problems({ config, load, burst }: ReportInput): string[] {
  const lines: string[] = [];
  const note = <T>(
    label: string,
    items: T[],
    pick: (item: T) => Iterable<[string, number]> | undefined,
    expected = "",
  ) => {
    const list = tally(items, pick);
    if (list) lines.push(`- ${label}: ${list}${expected}`);
  };
  // A skipped tutorial has nothing to list.
  const bothSides = <T>(part: { ours: T[]; tutorial: T[] | Skipped }) =>
    Object.entries({ "vast-gchat": part.ours, tutorial: tutorialOf(part) ?? [] });
  if (load) {
    note("bare node:http", load.ceilings, (c) => c.saturation.problems);
    for (const [name, sessions] of bothSides(load)) {
      for (const delay of config.chatDelaysMs) {
        const mine = sessions.filter((s) => s.chatDelayMs === delay);
        const label = `${name}, Chat ${delay} ms`;
        note(`${label}, fixed rate`, mine, (s) => s.fixed?.problems);
        note(`${label}, saturation`, mine, (s) => s.saturation.problems);
        const cut = " (expected: the connections the kill cut)";
        note(`${label}, kill run`, mine, (s) => s.kill?.run.problems, cut);
      }
    }
  }
  for (const [name, results] of burst ? bothSides(burst) : []) {
    const label = `${name}, burst (each retried or final, see the method)`;
    note(label, results, (r) => senderProblems(r.sender));
  }
  return lines.length
    ? ["", "Answers other than 2xx, and requests without an answer (all runs):", "", ...lines]
    : [];
}

/** The bench's report, and whether every correctness target held (the exit code). */
export function renderReport(input: ReportInput): { text: string; correct: boolean } {
  const { config, burst } = input;
  const { judge, summary, correct } = verdicts();
  const rows = [startupRows, loadRows, burstRows].flatMap((part) => part(input, judge));
  const reasons = new Set<string>();
  for (const part of [input.load, input.burst]) {
    if (part && !Array.isArray(part.tutorial)) reasons.add(part.tutorial.skipped);
  }
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
      `burst ${burst.ours.length} run(s) of vast-gchat, ${tutorialOf(burst)?.length ?? 0} of the tutorial's`,
  ];
  const text = [
    ...header(
      input,
      `\`npm run build && ${env}npm run bench${args}\`${only}${quick}`,
      "the generator, the fake Chat and the adapter under test",
      repeats.filter(Boolean).join("; "),
      input.machine.python ? `, ${input.machine.python}` : "",
    ),
    "",
    table(COLUMNS, rows),
    "",
    ...summary(),
    ...(reasons.size ? ["", `Tutorial adapter skipped: ${[...reasons].join("; ")}.`] : []),
    ...problems(input),
    ...["", "Method:", "", ...method(input), ""],
  ].join("\n");
  return { text, correct: correct() };
}

/**
 * The one report path: reads a document (the bench's or the routed burst's), prints its report,
 * writes it into its section of BENCHMARKS.md when `write` is set; true when every correctness
 * target held.
 */
export function renderDocument(file = RESULTS_FILE, write = false): boolean {
  const input = loadResults<ReportInput | RoutesInput>(file);
  const routes = "kind" in input;
  const { text, correct } = routes ? renderRoutes(input) : renderReport(input);
  console.log(text);
  if (write) writeSection(text, routes ? "routes" : "bench");
  return correct;
}

const retries = (config: BenchConfig) =>
  `an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s`;
const backoff = (config: BenchConfig) =>
  `after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter`;
const chatLimit = (config: BenchConfig) =>
  `${config.burstChatRate} message(s) a second: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.burstChatDelayMs} ms`;

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
      `- Burst: ${int(config.burstEvents)} signed deliveries with unique subjects (\`burst 0001\`…, five event types in turn), all queued at once and sent with at most ${config.burstConcurrency} requests in flight, into one Chat space whose fake allows ${chatLimit(config)}. A fresh adapter and a fresh fake Chat for every run; vast-gchat runs \`serve\` with its defaults (1 message/s per space, digests on). Runs: ${config.burstRepeats} of vast-gchat, ${config.tutorialBurstRepeats} of the tutorial's (each of its runs takes up to ${config.burstTutorialCapSeconds} s, because Chat lets through about one of its messages a second).`,
      `- Vast.ai's retries, emulated the same way for both adapters (Vast.ai does not publish its schedule, so this is an assumption): ${retries(config)}, or failing to connect, is sent again (the same body, a fresh X-Vast-Timestamp and signature, X-Vast-Delivery-Attempt + 1) ${backoff(config)} from a seeded generator, up to ${config.burstMaxAttempts} attempts per event; then the sender gives up on it. A 2xx or any other 4xx ends an event's deliveries.`,
      `- Visible: a subject counts once it appears in a message the fake Chat accepted: in \`fallbackText\` for vast-gchat (a digest lists every event), in \`text\` for the tutorial. The time runs from the first send to the last subject's appearance. Lost: not visible when the run ended. vast-gchat's runs are capped at ${config.burstOursCapSeconds} s; the tutorial's at ${config.burstTutorialCapSeconds} s, or earlier once its sender has nothing left to send (it posts inside the request, so nothing can reach Chat after that).`,
      "- Posts are every request the fake Chat received, 429s included. The tutorial answers 502 on each 429 and relies on the retries above.",
    );
  }
  return lines;
}

// ---- The routed burst's report (bench/routes-burst.ts).

/** `default` takes what the others do not: a fresh set-up reads as `default`, types all. */
export const ROUTES = [
  { name: "default", types: "account,host", eventType: "machine_error", space: undefined },
  { name: "billing", types: "billing", eventType: "low_credit", space: "BBBBbilling" },
  { name: "instance", types: "instance", eventType: "instance_stopped", space: "CCCCinstance" },
] as const;
/** After every event is visible, Chat counts as settled once it gets no post for this long. */
export const SETTLE = { quietMs: 2000, settleMs: 10_000 };
/** The routed burst's document: each repeat's routed burst and its shares alone, in ROUTES' order. */
export interface RoutesInput extends Run {
  kind: "routes";
  options: { quick: boolean; events: number; argv: string[]; burst: BenchConfig };
  repeats: { routed: RoutedSession; alone: RoutedSession[] }[];
}

function renderRoutes(input: RoutesInput): { text: string; correct: boolean } {
  const { options: config, repeats } = input;
  const events = config.events;
  const share = events / ROUTES.length;
  const routed = repeats.map((r) => r.routed);
  const routedTimes = routed.map((r) => r.allVisibleS);
  const all = [...routed, ...repeats.flatMap((r) => r.alone)];
  const secs = orDash((v) => v.toFixed(v < 10 ? 2 : 1));
  const timesOf = orDash((v) => `${v.toFixed(2)}×`);
  const spaceRows = ROUTES.map((route, index) => {
    const mine = routed.map((result) => result.spaces.find((space) => space.route === route.name));
    const pick = (f: (space: SpaceResult) => Maybe, format = count) => {
      const values = mine.map((s) => s && f(s));
      return spreadAll(values, format);
    };
    const alone = repeats.map((repeat) => repeat.alone[index]?.allVisibleS);
    return [
      `${route.name} (\`--types ${route.types}\`, events \`${route.eventType}\`) → spaces/${mine[0]?.space ?? route.space ?? "?"}`,
      int(share),
      pick((s) => s.lastVisibleS, secs),
      spreadAll(alone, secs),
      ...[(s: SpaceResult) => s.messages, (s: SpaceResult) => s.posts].map((f) => pick(f)),
      ...[(s: SpaceResult) => s.throttled, (s: SpaceResult) => s.maxPerMessage].map((f) => pick(f)),
      pick((s) => (s.shortestGapMs === undefined ? undefined : s.shortestGapMs / 1000), secs),
    ];
  });
  // Per repeat: the routed burst against its own repeat's shares sent alone.
  const aloneTimes = repeats.map((repeat) => repeat.alone.map((result) => result.allVisibleS));
  const complete = (list: Maybe[]): list is number[] => list.every((t) => t !== undefined);
  const largest = aloneTimes.map((list) => (complete(list) ? Math.max(...list) : undefined));
  const summed = aloneTimes.map((list) => (complete(list) ? sum(list) : undefined));
  const ratioTo = (baseline: Maybe[]) =>
    routedTimes.map((total, i) =>
      total === undefined || !baseline[i] ? undefined : total / (baseline[i] as number),
    );
  const [toLargest, toSum] = [ratioTo(largest), ratioTo(summed)];
  const { judge, summary, correct } = verdicts();
  /** The most in any session of a figure summed over its spaces. */
  const most = (pick: (space: SpaceResult) => number) =>
    Math.max(0, ...all.map((r) => sum(r.spaces.map(pick))));
  const lost = Math.max(0, ...all.map((r) => r.lost));
  const [misplaced, duplicates] = [most((s) => s.misplaced), most((s) => s.duplicates)];
  const [throttled, others] = [most((s) => s.throttled), most((s) => s.otherMessages)];
  const [LARGEST_MAX, SUM_MAX] = [1.5, 0.5];
  const everyRepeat = (list: Maybe[], ok: (v: number) => boolean) =>
    list.every((v) => v !== undefined && ok(v));
  const summaryRows = [
    ["**time until every event is visible in its space (s)**", spreadAll(routedTimes, secs)],
    [
      `the largest share alone: the slowest of the three shares of ${int(share)}, each sent alone (s)`,
      spreadAll(largest, secs),
    ],
    ["the three shares alone, summed (s)", spreadAll(summed, secs)],
    [
      "**routed ÷ the largest share alone** (per repeat)",
      spreadAll(toLargest, timesOf),
      judge(
        "about the time of the largest share",
        everyRepeat(toLargest, (v) => v <= LARGEST_MAX),
        `≤ ${LARGEST_MAX}× in every repeat`,
      ),
    ],
    [
      "**routed ÷ the sum** (per repeat)",
      spreadAll(toSum, timesOf),
      judge(
        "not the sum",
        everyRepeat(toSum, (v) => v < SUM_MAX),
        `< ${SUM_MAX}× in every repeat`,
      ),
    ],
    [
      "**events lost** (not visible in their space when the run ended; all sessions)",
      int(lost),
      judge("no event lost", lost === 0, "0 in every session", true),
    ],
    [
      "**events in another route's space** (all sessions)",
      int(misplaced),
      judge("every event in its route's space only", misplaced === 0, "0", true),
    ],
    [
      "events shown twice or more in their space (all sessions)",
      int(duplicates),
      judge("none twice", duplicates === 0, "0", true),
    ],
    [
      "**429s**, all spaces (most in one session)",
      int(throttled),
      judge("each space paced on its own", throttled === 0, "0"),
    ],
    ["messages carrying none of the burst's events (most in one session)", int(others)],
    [
      `sender's events, routed burst: 2xx / refused / gave up after ${config.burst.burstMaxAttempts} attempts / still retrying at the end (per run)`,
      senderOutcome(routed),
    ],
    [
      "time until the sender had a 2xx for every event, routed burst (s)",
      spreadAll(routed.map(acksInS), seconds),
    ],
  ].map(([metric = "", figure = "", target = "–"]) => [metric, figure, target]);
  const answerList = tally(all, (r) => [
    ...senderProblems(r.sender),
    ...(r.refused ? [["Chat 400", r.refused] as [string, number]] : []),
  ]);
  const args = config.argv.length ? ` -- ${config.argv.join(" ")}` : "";
  const routeList = ROUTES.map((route) => `\`${route.name}\` (\`--types ${route.types}\`)`);
  const b = config.burst;
  const text = [
    ...header(
      input,
      `\`npm run build && npm run bench:routes${args}\`${config.quick ? " (`--quick`: a small burst, one repeat, not for comparison)" : ""}`,
      "the sender, the fake Chat and serve",
      `${repeats.length} routed burst(s) of ${int(events)} events, each followed by each share of ${int(share)} sent alone; the median, with the range across repeats in brackets`,
    ),
    "",
    table(
      [
        ...["route → space", "events", "**its last event visible (s)**"],
        ...["the same share sent alone (s)", "messages Chat accepted", "posts (429s included)"],
        ...["**429s**", "most events in one message", "shortest gap between two posts (s)"],
      ],
      spaceRows,
    ),
    "",
    table(["the whole burst", "figure", "target"], summaryRows),
    "",
    ...summary(),
    ...(answerList
      ? [
          "",
          `Answers other than 2xx the sender got, and requests without an answer (all sessions; each retried or final): ${answerList}`,
        ]
      : []),
    "",
    "Method:",
    "",
    `- Routes: a fresh config directory per session, set up with the CLI as a user does it: \`printf '%s\\n' URL | vast-gchat route add NAME --types LIST --chat-url-stdin --no-chat-check\` for ${routeList.join(", ")} (\`default\` with \`--replace\`: a fresh set-up reads as \`default\`, types all, which would take every event too), secrets in the file store, no API key (so no webhook is updated). Each route is a different space of one fake Chat that takes ${chatLimit(b).replace(" a second:", " a second per space:")}.`,
    `- serve: \`node bin/vast-gchat.js serve\` on that directory with GOOGLE_CHAT_URL (\`default\`'s URL) and VAST_WEBHOOK_SECRET, its defaults otherwise (a worker per route: 1 message/s per space, digests on); a fresh serve and fake Chat for every session.`,
    `- Burst: ${int(events)} signed deliveries with unique subjects (\`burst 0001\`…), of the types ${ROUTES.map((route) => `\`${route.eventType}\``).join(", ")} in turn, a third going to each route, sent by bench/burst.ts's Vast.ai-like sender: at most ${b.burstConcurrency} requests in flight; ${retries(b)}, is sent again ${backoff(b)}, up to ${b.burstMaxAttempts} attempts.`,
    `- Visible: an event counts once its subject appears in the \`fallbackText\` of a message the fake Chat accepted in its route's space; times run from the first send. Once every event is visible the watch waits until Chat has had no post for ${SETTLE.quietMs / 1000} s (at most ${SETTLE.settleMs / 1000} s) and then counts messages, posts, events in another route's space and events shown twice. 429s per space are its posts less the messages it accepted (the fake refused none as malformed unless "Chat 400" is listed above). The shortest gap is between two posts arriving at one space, as the bench saw them. Sessions are capped at ${b.burstOursCapSeconds} s.`,
    "- Shares alone: in each repeat, after the routed burst, each route's share (the same events of its one type) is sent alone to a fresh serve with the same routes and a fresh fake Chat. The largest share is the slowest of the three, the sum their total: the time if the spaces were served one after another, as one paced worker would. The ratios are taken per repeat, then their median.",
    "",
  ].join("\n");
  return { text, correct: correct() };
}
