import type { BurstResult, SenderStats } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { DurabilityResult } from "./durability.js";
import { acceptedPerS, achievedRate, noAnswer, non2xx, percentile, type RunStats } from "./load.js";

/** The markdown report: one table (metric x adapter), the targets, the machine and the method. */
export interface AdapterResult {
  fixed: RunStats;
  saturation: RunStats;
  peakRssMiB: number | undefined;
  /** Messages the fake Chat accepted while this adapter was under load. */
  chatPosts: number;
}

export interface OursResult extends AdapterResult {
  killRun: RunStats;
  durability: DurabilityResult;
}

export interface MachineInfo {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  python: string | undefined;
  loadAverage: string;
  commit: string | undefined;
  date: string;
}

/** The load part: ceiling, both adapters under fixed-rate and saturated load, kill -9. */
export interface LoadReport {
  ceiling: RunStats;
  ours: OursResult;
  tutorial: AdapterResult | { skipped: string };
}

/** The burst part: N events into one space limited to one message a second. */
export interface BurstReport {
  ours: BurstResult;
  tutorial: BurstResult | { skipped: string };
}

export interface ReportInput {
  config: BenchConfig;
  machine: MachineInfo;
  /** Absent when only the burst ran. */
  load?: LoadReport | undefined;
  /** Absent when only the load part ran. */
  burst?: BurstReport | undefined;
}

export const TARGETS = {
  ackP99Ms: 10,
  acceptedPerS: 2000,
  missingAfterKill: 0,
  burstLost: 0,
};

/** Whether the targets were met, for the exit code and the summary line; absent: not measured. */
export interface Verdicts {
  ackP99?: boolean;
  accepted?: boolean;
  durable?: boolean;
  /** Every burst event visible in Chat (ours). */
  burstLossless?: boolean;
}

/** Losing an event is a correctness failure (exit code 1); the other targets are reported. */
export function correct(pass: Verdicts): boolean {
  return pass.durable !== false && pass.burstLossless !== false;
}

const rate = acceptedPerS;

function ms(value: number | undefined): string {
  if (value === undefined) return "–";
  if (!Number.isFinite(value)) return "no answer";
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function int(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function ratio(ours: number | undefined, theirs: number | undefined): string {
  if (ours === undefined || theirs === undefined) return "–";
  if (!Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return "–";
  const r = ours / theirs;
  if (r === 0) return "0×";
  return `${r < 0.1 ? r.toPrecision(2) : r < 10 ? r.toFixed(2) : r.toFixed(0)}×`;
}

const verdict = (ok: boolean) => (ok ? "**PASS**" : "**FAIL**");

function answers(stats: RunStats): string {
  const skipped = stats.skipped ? ` (+${int(stats.skipped)} skipped)` : "";
  return `${int(stats.ok)} / ${int(non2xx(stats))} / ${int(noAnswer(stats))}${skipped}`;
}

function details(stats: RunStats): string[] {
  const parts = [...stats.statuses].map(([status, n]) => `HTTP ${status} x${n}`);
  parts.push(...[...stats.errors].map(([code, n]) => `${code} x${n}`));
  return parts;
}

export function verdicts(input: ReportInput): Verdicts {
  const pass: Verdicts = {};
  if (input.load) {
    const { ours } = input.load;
    const p99 = percentile(ours.fixed.latenciesMs, 99);
    pass.ackP99 = p99 !== undefined && p99 < TARGETS.ackP99Ms;
    pass.accepted = rate(ours.saturation) >= TARGETS.acceptedPerS;
    pass.durable =
      ours.durability.missing === TARGETS.missingAfterKill && ours.durability.acknowledged > 0;
  }
  if (input.burst) {
    pass.burstLossless =
      input.burst.ours.lost === TARGETS.burstLost && input.burst.ours.allVisibleS !== undefined;
  }
  return pass;
}

type Row = string[];

function loadRows(config: BenchConfig, load: LoadReport, pass: Verdicts): Row[] {
  const { ceiling, ours } = load;
  const tutorial = "skipped" in load.tutorial ? undefined : load.tutorial;
  const rows: Row[] = [];
  const row = (metric: string, a: string, b: string, r: string, target: string) =>
    rows.push([metric, a, tutorial ? b : "–", tutorial ? r : "–", target]);
  const pair = (
    metric: string,
    pick: (result: AdapterResult) => number | undefined,
    format: (value: number | undefined) => string,
    target = "–",
  ) => {
    const a = pick(ours);
    const b = tutorial && pick(tutorial);
    row(metric, format(a), format(b), ratio(a, b), target);
  };

  const fixed = `fixed ${int(config.rate)}/s for ${config.rateSeconds} s`;
  pair(
    `${fixed}: achieved send rate (events/s)`,
    (r) => achievedRate(r.fixed),
    (v) => (v === undefined ? "–" : v.toFixed(1)),
  );
  row(
    `${fixed}: answers 2xx / non-2xx / none`,
    answers(ours.fixed),
    tutorial ? answers(tutorial.fixed) : "",
    "–",
    "–",
  );
  pair(`${fixed}: ack latency p50 (ms)`, (r) => percentile(r.fixed.latenciesMs, 50), ms);
  pair(
    `${fixed}: **ack latency p99 (ms)**`,
    (r) => percentile(r.fixed.latenciesMs, 99),
    ms,
    `< ${TARGETS.ackP99Ms} ms ${verdict(pass.ackP99 === true)}`,
  );
  pair(`${fixed}: ack latency max (ms)`, (r) => percentile(r.fixed.latenciesMs, 100), ms);
  pair(
    `${fixed}: ack p99 from scheduled send (ms)`,
    (r) => percentile(r.fixed.fromScheduleMs, 99),
    ms,
  );
  pair(`${fixed}: generator send lag p99 (ms)`, (r) => percentile(r.fixed.sendLagMs, 99), ms);

  const sat = `saturation, ${config.concurrency} in flight, ${config.saturationSeconds} s`;
  pair(
    `${sat}: **accepted events/s (2xx only)**`,
    (r) => rate(r.saturation),
    (v) => (v === undefined ? "–" : int(v)),
    `≥ ${int(TARGETS.acceptedPerS)}/s ${verdict(pass.accepted === true)}`,
  );
  row(
    `${sat}: answers 2xx / non-2xx / none`,
    answers(ours.saturation),
    tutorial ? answers(tutorial.saturation) : "",
    "–",
    "–",
  );
  pair(`${sat}: ack latency p50 (ms)`, (r) => percentile(r.saturation.latenciesMs, 50), ms);
  pair(`${sat}: ack latency p99 (ms)`, (r) => percentile(r.saturation.latenciesMs, 99), ms);
  pair(
    `${sat}: share of the bare node:http ceiling (${int(rate(ceiling))}/s)`,
    (r) => rate(r.saturation) / rate(ceiling),
    (v) => (v === undefined ? "–" : `${(v * 100).toFixed(1)} %`),
  );
  pair(
    "peak RSS, VmHWM (MiB)",
    (r) => r.peakRssMiB,
    (v) => (v === undefined ? "–" : v.toFixed(1)),
  );
  pair(
    "posts the fake Chat received while under load",
    (r) => r.chatPosts,
    (v) => (v === undefined ? "–" : int(v)),
  );
  rows.push([
    `kill -9 after ${config.killAfterSeconds} s of saturated load`,
    `acknowledged ${int(ours.durability.acknowledged)}, missing ${int(ours.durability.missing)}`,
    "no store (n/a)",
    "–",
    `0 missing ${verdict(pass.durable === true)}`,
  ]);
  return rows;
}

/** "12.3", or "not all visible after 300 s (287 of 500)". */
function visibleAfter(result: BurstResult): string {
  if (result.allVisibleS !== undefined) return result.allVisibleS.toFixed(1);
  return `not all visible after ${int(result.endedS)} s (${int(result.visible)} of ${int(result.events)})`;
}

function senderOutcome(sender: SenderStats): string {
  return `${int(sender.acked)} / ${int(sender.refused)} / ${int(sender.gaveUp)} / ${int(sender.cutOff)}`;
}

function senderDetails(sender: SenderStats): string[] {
  return [
    ...[...sender.statuses].map(([status, n]) => `HTTP ${status} x${int(n)}`),
    ...[...sender.errors].map(([code, n]) => `${code} x${int(n)}`),
  ];
}

function burstRows(config: BenchConfig, burst: BurstReport, pass: Verdicts): Row[] {
  const { ours } = burst;
  const tutorial = "skipped" in burst.tutorial ? undefined : burst.tutorial;
  const b = `burst of ${int(config.burstEvents)} → 1 space at ${config.burstChatRate} msg/s`;
  const rows: Row[] = [];
  const pair = (
    metric: string,
    pick: (result: BurstResult) => number | undefined,
    format: (value: number | undefined) => string = (v) => (v === undefined ? "–" : int(v)),
    target = "–",
  ) => {
    const a = pick(ours);
    const t = tutorial && pick(tutorial);
    rows.push([metric, format(a), tutorial ? format(t) : "–", ratio(a, t), target]);
  };

  // Not all visible: its true time is longer than the run (or never), so ours ÷ it is below this.
  let timeRatio = "–";
  if (tutorial && ours.allVisibleS !== undefined) {
    timeRatio =
      tutorial.allVisibleS !== undefined
        ? ratio(ours.allVisibleS, tutorial.allVisibleS)
        : `< ${ratio(ours.allVisibleS, tutorial.endedS)}`;
  }
  rows.push([
    `${b}: **time until every event is visible in Chat (s)**`,
    visibleAfter(ours),
    tutorial ? visibleAfter(tutorial) : "–",
    timeRatio,
    "–",
  ]);
  pair(
    `${b}: **events lost** (not visible in Chat when the run ended)`,
    (r) => r.lost,
    undefined,
    `${TARGETS.burstLost} ${verdict(pass.burstLossless === true)}`,
  );
  pair(`${b}: **posts to Chat** (429s included)`, (r) => r.posts);
  pair(`${b}: **429s met**`, (r) => r.throttled);
  pair(`${b}: messages Chat accepted`, (r) => r.accepted);
  pair(`${b}: most events in one message`, (r) => r.maxPerMessage);
  pair(`${b}: events shown twice or more (duplicates)`, (r) => r.duplicates);
  pair(
    `${b}: deliveries the Vast.ai-like sender made (retries included)`,
    (r) => r.sender.attempts,
  );
  rows.push([
    `${b}: sender's events: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end`,
    senderOutcome(ours.sender),
    tutorial ? senderOutcome(tutorial.sender) : "–",
    "–",
    "–",
  ]);
  pair(
    `${b}: time until the sender had a 2xx for every event (s)`,
    (r) => (r.sender.acked === r.events ? (r.sender.lastAckMs ?? 0) / 1000 : undefined),
    (v) => (v === undefined ? "not all" : v < 10 ? v.toFixed(2) : v.toFixed(1)),
  );
  return rows;
}

export function renderReport(input: ReportInput): string {
  const { config, machine, load, burst } = input;
  const pass = verdicts(input);
  const rows = [
    ...(load ? loadRows(config, load, pass) : []),
    ...(burst ? burstRows(config, burst, pass) : []),
  ];

  const header = ["metric", "vast-gchat", "tutorial adapter", "ratio (ours ÷ tutorial)", "target"];
  const table = [header, header.map(() => "---"), ...rows]
    .map((cells) => `| ${cells.join(" | ")} |`)
    .join("\n");

  const tutorialLoad = load && !("skipped" in load.tutorial) ? load.tutorial : undefined;
  const problemSources: Array<[string, RunStats | undefined]> = load
    ? [
        ["vast-gchat fixed", load.ours.fixed],
        ["vast-gchat saturation", load.ours.saturation],
        ["vast-gchat kill run", load.ours.killRun],
        ["tutorial fixed", tutorialLoad?.fixed],
        ["tutorial saturation", tutorialLoad?.saturation],
        ["ceiling", load.ceiling],
      ]
    : [];
  const problems = problemSources.flatMap(([label, stats]) => {
    const parts = stats ? details(stats) : [];
    return parts.length ? [`- ${label}: ${parts.join(", ")}`] : [];
  });
  const burstSenders: Array<[string, SenderStats | undefined]> = burst
    ? [
        ["vast-gchat", burst.ours.sender],
        ["tutorial", "skipped" in burst.tutorial ? undefined : burst.tutorial.sender],
      ]
    : [];
  const burstProblems = burstSenders.flatMap(([label, sender]) => {
    const parts = sender ? senderDetails(sender) : [];
    return parts.length ? [`- ${label}: ${parts.join(", ")}`] : [];
  });

  const measured = [pass.ackP99, pass.accepted, pass.durable, pass.burstLossless].filter(
    (v) => v !== undefined,
  );
  const skipped = [
    ...(load && "skipped" in load.tutorial ? [load.tutorial.skipped] : []),
    ...(burst && "skipped" in burst.tutorial ? [burst.tutorial.skipped] : []),
  ];
  const lines = [
    "# vast-gchat benchmark",
    "",
    ...(load && burst ? [] : [`Only the ${load ? "load" : "burst"} part ran (\`--only\`).`, ""]),
    table,
    "",
    `Targets met: ${measured.filter(Boolean).length} of ${measured.length}.`,
    ...(skipped.length ? ["", `Tutorial adapter skipped: ${skipped[0]}.`] : []),
    ...(problems.length
      ? ["", "Non-2xx answers and requests without an answer:", ...problems]
      : []),
    ...(burstProblems.length
      ? [
          "",
          "Burst: answers the Vast.ai-like sender got other than 2xx (each one retried or final, see Method):",
          ...burstProblems,
        ]
      : []),
    "",
    "## Machine",
    "",
    `- nproc ${machine.nproc}, ${machine.cpu}, ${machine.memoryGiB.toFixed(1)} GiB RAM, load average at start ${machine.loadAverage}`,
    `- node ${machine.node}${machine.python ? `, ${machine.python}` : ""}`,
    `- commit ${machine.commit ?? "unknown"}, ${machine.date}`,
    "- Shared, noisy machine: the load generator, the fake Chat and the adapter under test all run on the same cores, so absolute numbers move from run to run; compare the columns of one run.",
    "",
    "## Method",
    "",
    ...(load ? loadMethod(config) : []),
    ...(burst ? burstMethod(config, burst) : []),
    "",
  ];
  return lines.join("\n");
}

function loadMethod(config: BenchConfig): string[] {
  return [
    `- Each request is a signed delivery as Vast.ai sends it (fresh X-Vast-Timestamp, unique event_id from sampleEvent), POSTed over keep-alive connections (undici Pool) to 127.0.0.1. The fake Chat answers every post after ${config.chatDelayMs} ms.`,
    `- Fixed rate: open loop, request i leaves at start + i/${config.rate} s whatever the earlier ones are doing (up to ${int(config.openConnections)} connections, ${int(config.maxInFlight)} in flight). Ack latency is measured from the moment the request was handed to the connection pool to the end of the answer; the "from scheduled send" row adds the generator's own lateness (coordinated-omission-free). A request with no answer within ${config.requestTimeoutMs / 1000} s counts as infinite latency.`,
    `- Saturation: closed loop, ${config.concurrency} requests always in flight, after a ${config.warmupSeconds} s unmeasured warm-up. Accepted events/s counts 2xx answers only. The ceiling is the same run against a bare node:http server that reads the body and answers 200 {"ok":true}.`,
    "- Peak RSS is VmHWM from /proc/<pid>/status just before the process is stopped (for vast-gchat: just before the kill -9, so it covers every run).",
    `- Delivery to Chat is not what the load runs measure (the burst does): vast-gchat posts one message at a time, oldest first, so with a ${config.chatDelayMs} ms Chat it delivers at most ${Math.floor(1000 / config.chatDelayMs)}/s and keeps the rest queued in SQLite (Google Chat itself allows about 1 message/s per space); the tutorial posts inside each request, which is why its ack latency includes the Chat round trip.`,
    "- kill -9: a fresh saturated run, SIGKILL to the adapter, then its SQLite file is opened read-only and every event id that got a 2xx during the whole session (warm-up, fixed, saturation, kill run) must be in `events`.",
  ];
}

function burstMethod(config: BenchConfig, burst: BurstReport): string[] {
  const tutorialCap =
    "skipped" in burst.tutorial ? config.burstTutorialCapSeconds : burst.tutorial.capS;
  return [
    `- Burst: ${int(config.burstEvents)} signed deliveries with unique subjects (\`burst 0001\`…, five event types in turn), all queued at once and sent with at most ${config.burstConcurrency} requests in flight, into one Chat space whose fake allows ${config.burstChatRate} message(s) a second: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.chatDelayMs} ms. A fresh adapter and a fresh fake Chat for each side; vast-gchat runs \`serve\` with its defaults (1 message/s per space, digests on).`,
    `- Vast.ai's retries, emulated the same way for both adapters (Vast.ai does not publish its schedule, so this is an assumption): an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s, or failing to connect, is sent again — the same body, a fresh X-Vast-Timestamp and signature, X-Vast-Delivery-Attempt + 1 — after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter (uniform in the upper half of that delay, from a seeded generator), up to ${config.burstMaxAttempts} attempts per event; then the sender gives up on it. A 2xx or any other 4xx ends an event's deliveries.`,
    `- Visible: a subject counts once it appears in a message the fake Chat accepted — in \`fallbackText\` for vast-gchat (a digest lists every event as "• subject (Type)"), in \`text\` for the tutorial. The time runs from the first send to the last subject's appearance. Lost: not visible when the run ended. vast-gchat's run is capped at ${config.burstOursCapSeconds} s; the tutorial's at ${tutorialCap} s, or earlier once its sender has nothing left to send (it posts inside the request, so nothing can reach Chat after that).`,
    "- Posts are every request the fake Chat received, 429s included; a 429 is a post Chat refused for its per-space limit. The tutorial answers 502 on each such 429 and relies on the retries above.",
  ];
}
