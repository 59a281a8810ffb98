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

export interface ReportInput {
  config: BenchConfig;
  machine: MachineInfo;
  ceiling: RunStats;
  ours: OursResult;
  tutorial: AdapterResult | { skipped: string };
}

export const TARGETS = {
  ackP99Ms: 10,
  acceptedPerS: 2000,
  missingAfterKill: 0,
};

/** Whether the targets were met, for the exit code and the summary line. */
export interface Verdicts {
  ackP99: boolean;
  accepted: boolean;
  durable: boolean;
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
  const p99 = percentile(input.ours.fixed.latenciesMs, 99);
  return {
    ackP99: p99 !== undefined && p99 < TARGETS.ackP99Ms,
    accepted: rate(input.ours.saturation) >= TARGETS.acceptedPerS,
    durable:
      input.ours.durability.missing === TARGETS.missingAfterKill &&
      input.ours.durability.acknowledged > 0,
  };
}

export function renderReport(input: ReportInput): string {
  const { config, machine, ceiling, ours } = input;
  const tutorial = "skipped" in input.tutorial ? undefined : input.tutorial;
  const pass = verdicts(input);
  const rows: string[][] = [];
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
    `< ${TARGETS.ackP99Ms} ms ${verdict(pass.ackP99)}`,
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
    `≥ ${int(TARGETS.acceptedPerS)}/s ${verdict(pass.accepted)}`,
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
    `0 missing ${verdict(pass.durable)}`,
  ]);

  const header = ["metric", "vast-gchat", "tutorial adapter", "ratio (ours ÷ tutorial)", "target"];
  const table = [header, header.map(() => "---"), ...rows]
    .map((cells) => `| ${cells.join(" | ")} |`)
    .join("\n");

  const problemSources: Array<[string, RunStats | undefined]> = [
    ["vast-gchat fixed", ours.fixed],
    ["vast-gchat saturation", ours.saturation],
    ["vast-gchat kill run", ours.killRun],
    ["tutorial fixed", tutorial?.fixed],
    ["tutorial saturation", tutorial?.saturation],
    ["ceiling", ceiling],
  ];
  const problems = problemSources.flatMap(([label, stats]) => {
    const parts = stats ? details(stats) : [];
    return parts.length ? [`- ${label}: ${parts.join(", ")}`] : [];
  });

  const lines = [
    "# vast-gchat benchmark",
    "",
    table,
    "",
    `Targets met: ${[pass.ackP99, pass.accepted, pass.durable].filter(Boolean).length} of 3.`,
    ...("skipped" in input.tutorial
      ? ["", `Tutorial adapter skipped: ${input.tutorial.skipped}.`]
      : []),
    ...(problems.length
      ? ["", "Non-2xx answers and requests without an answer:", ...problems]
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
    `- Each request is a signed delivery as Vast.ai sends it (fresh X-Vast-Timestamp, unique event_id from sampleEvent), POSTed over keep-alive connections (undici Pool) to 127.0.0.1. The fake Chat answers every post after ${config.chatDelayMs} ms.`,
    `- Fixed rate: open loop, request i leaves at start + i/${config.rate} s whatever the earlier ones are doing (up to ${int(config.openConnections)} connections, ${int(config.maxInFlight)} in flight). Ack latency is measured from the moment the request was handed to the connection pool to the end of the answer; the "from scheduled send" row adds the generator's own lateness (coordinated-omission-free). A request with no answer within ${config.requestTimeoutMs / 1000} s counts as infinite latency.`,
    `- Saturation: closed loop, ${config.concurrency} requests always in flight, after a ${config.warmupSeconds} s unmeasured warm-up. Accepted events/s counts 2xx answers only. The ceiling is the same run against a bare node:http server that reads the body and answers 200 {"ok":true}.`,
    "- Peak RSS is VmHWM from /proc/<pid>/status just before the process is stopped (for vast-gchat: just before the kill -9, so it covers every run).",
    `- Delivery to Chat is not what is measured: vast-gchat posts one message at a time, oldest first, so with a ${config.chatDelayMs} ms Chat it delivers at most ${Math.floor(1000 / config.chatDelayMs)}/s and keeps the rest queued in SQLite (Google Chat itself allows about 1 message/s per space); the tutorial posts inside each request, which is why its ack latency includes the Chat round trip.`,
    "- kill -9: a fresh saturated run, SIGKILL to the adapter, then its SQLite file is opened read-only and every event id that got a 2xx during the whole session (warm-up, fixed, saturation, kill run) must be in `events`.",
    "",
  ];
  return lines.join("\n");
}
