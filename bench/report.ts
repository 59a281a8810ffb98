import { int } from "./format.js";
import { method } from "./method.js";
import { isSkipped, type ReportInput } from "./report-input.js";
import type { RunSummary } from "./run-summary.js";
import type { SessionResult } from "./sessions.js";
import { burstRows, HEADER, loadRows, type Row, startupRows } from "./table-rows.js";
import { type Verdict, verdicts } from "./verdicts.js";

/**
 * The report: how it was run (command, date, machine, load average, repeats), one table, the
 * targets, what went wrong on the wire, and the method. It is printed and, for a full run, becomes
 * the bench section of BENCHMARKS.md, under that file's "## Benchmarks" heading.
 */

/** The command as typed, so anyone can run the same thing. */
function command(input: ReportInput): string {
  const { argv, envSettings } = input.config;
  const env = envSettings.length ? `${envSettings.join(" ")} ` : "";
  const args = argv.length ? ` -- ${argv.join(" ")}` : "";
  return `npm run build && ${env}npm run bench${args}`;
}

function repeatsLine(input: ReportInput): string {
  const { config } = input;
  const parts: string[] = [];
  if (input.load) {
    parts.push(
      `every load figure ${config.repeats} time(s) per Chat latency (the median, with the range across runs in brackets)`,
    );
  }
  if (input.startup) {
    parts.push(
      `start-up ${config.startupRuns} timed runs each after ${config.startupWarmupRuns} warm-up, ${config.serveStarts} starts of each adapter`,
    );
  }
  if (input.burst) {
    const tutorialRuns = isSkipped(input.burst.tutorial) ? 0 : input.burst.tutorial.length;
    parts.push(
      `burst ${input.burst.ours.length} run(s) of vast-gchat, ${tutorialRuns} of the tutorial's`,
    );
  }
  return parts.join("; ");
}

function header(input: ReportInput): string[] {
  const { machine } = input;
  const only = input.config.only === "all" ? "" : ` (only the ${input.config.only} part)`;
  const quick = input.config.quick ? " (`--quick`: short runs, not for comparison)" : "";
  return [
    `- Command: \`${command(input)}\`${only}${quick}`,
    `- Run: ${input.startedAt.toISOString()}, took ${(input.durationS / 60).toFixed(1)} min; commit ${machine.commit ?? "unknown"}${machine.dirty ? " with uncommitted changes" : ""}`,
    `- Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB.toFixed(1)} GiB RAM, node ${machine.node}${machine.python ? `, ${machine.python}` : ""}; shared with other work, and the generator, the fake Chat and the adapter under test share its cores`,
    `- Load average (1, 5, 15 min): ${input.loadAverageAtStart} at the start, ${input.loadAverageAtEnd} at the end`,
    `- Repeats: ${repeatsLine(input)}`,
  ];
}

function table(rows: Row[]): string {
  return [HEADER, HEADER.map(() => "---"), ...rows]
    .map((cells) => `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`)
    .join("\n");
}

function targetsLine(all: Verdict[]): string[] {
  if (all.length === 0) return [];
  const failed = all.filter((v) => !v.pass);
  return [
    `Targets met: ${all.length - failed.length} of ${all.length}.` +
      (failed.length ? ` Not met: ${failed.map((v) => v.name).join("; ")}.` : ""),
  ];
}

/** Non-2xx answers and requests without one, summed over the repeats, per adapter and run. */
function problems(input: ReportInput): string[] {
  const lines: string[] = [];
  const note = (label: string, runs: Array<RunSummary | undefined>, expected = "") => {
    const totals = new Map<string, number>();
    for (const run of runs) {
      for (const [what, n] of run?.problems ?? []) totals.set(what, (totals.get(what) ?? 0) + n);
    }
    if (totals.size === 0) return;
    const list = [...totals].map(([what, n]) => `${what} ×${int(n)}`).join(", ");
    lines.push(`- ${label}: ${list}${expected}`);
  };
  const load = input.load;
  if (load) {
    note(
      "bare node:http",
      load.ceilings.map((c) => c.saturation),
    );
    const sides: Array<[string, SessionResult[]]> = [["vast-gchat", load.ours]];
    if (!isSkipped(load.tutorial)) sides.push(["tutorial", load.tutorial]);
    for (const [name, sessions] of sides) {
      for (const delay of input.config.chatDelaysMs) {
        const mine = sessions.filter((s) => s.chatDelayMs === delay);
        note(
          `${name}, Chat ${delay} ms, fixed rate`,
          mine.map((s) => s.fixed),
        );
        note(
          `${name}, Chat ${delay} ms, saturation`,
          mine.map((s) => s.saturation),
        );
        note(
          `${name}, Chat ${delay} ms, kill run`,
          mine.map((s) => s.kill?.run),
          " (expected: the connections the kill cut)",
        );
      }
    }
  }
  const burst = input.burst;
  if (burst) {
    const sides: Array<[string, typeof burst.ours]> = [["vast-gchat", burst.ours]];
    if (!isSkipped(burst.tutorial)) sides.push(["tutorial", burst.tutorial]);
    for (const [name, results] of sides) {
      const totals = new Map<string, number>();
      for (const { sender } of results) {
        for (const [status, n] of sender.statuses) {
          totals.set(`HTTP ${status}`, (totals.get(`HTTP ${status}`) ?? 0) + n);
        }
        for (const [code, n] of sender.errors) totals.set(code, (totals.get(code) ?? 0) + n);
      }
      if (totals.size === 0) continue;
      const list = [...totals].map(([what, n]) => `${what} ×${int(n)}`).join(", ");
      lines.push(`- ${name}, burst (each retried or final, see the method): ${list}`);
    }
  }
  return lines.length
    ? ["", "Answers other than 2xx, and requests without an answer (all runs):", "", ...lines]
    : [];
}

function skippedLines(input: ReportInput): string[] {
  const reasons = new Set<string>();
  if (input.load && isSkipped(input.load.tutorial)) reasons.add(input.load.tutorial.skipped);
  if (input.burst && isSkipped(input.burst.tutorial)) reasons.add(input.burst.tutorial.skipped);
  if (input.startup && input.startup.serve.tutorialMs === undefined) reasons.add("not available");
  return reasons.size ? ["", `Tutorial adapter skipped: ${[...reasons].join("; ")}.`] : [];
}

export function renderReport(input: ReportInput): string {
  const all = verdicts(input);
  const rows = [
    ...(input.startup ? startupRows(input.startup, input, all) : []),
    ...(input.load ? loadRows(input, input.load, all) : []),
    ...(input.burst ? burstRows(input, input.burst, all) : []),
  ];
  return [
    ...header(input),
    "",
    table(rows),
    "",
    ...targetsLine(all),
    ...skippedLines(input),
    ...problems(input),
    "",
    "Method:",
    "",
    ...method(input),
    "",
  ].join("\n");
}
