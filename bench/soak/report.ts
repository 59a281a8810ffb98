import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import type { CheckRow } from "./results.js";

/**
 * The results as one markdown table, with what is needed to judge it above (command, date,
 * machine, load), and its place in BENCHMARKS.md: only between the soak markers, since another
 * script owns the bench section.
 */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  commit: string | undefined;
}

export function describeMachine(repoRoot: string): Machine {
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 5000,
  });
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown CPU",
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    commit: commit.status === 0 ? commit.stdout.trim() : undefined,
  };
}

export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
}

export interface ReportInput {
  command: string;
  startedAt: Date;
  durationS: number;
  machine: Machine;
  loadAtStart: string;
  loadAtEnd: string;
  seed: number;
  rows: readonly CheckRow[];
  notes: readonly string[];
}

/** Pipes and line breaks would break the table. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

export function renderReport(input: ReportInput): string {
  const { machine } = input;
  const failed = input.rows.filter((row) => row.verdict === "FAIL").length;
  const checks = input.rows.filter((row) => row.verdict === "PASS" || row.verdict === "FAIL");
  const lines = [
    `Command: \`${input.command}\` (seed ${input.seed})  `,
    `Date: ${input.startedAt.toISOString()}, ${Math.round(input.durationS)} s${machine.commit ? `, commit ${machine.commit}` : ""}  `,
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB.toFixed(1)} GiB, Node ${machine.node}; load average ${input.loadAtStart} at the start, ${input.loadAtEnd} at the end (1, 5, 15 min)`,
    "",
    "| check | figure | target | result |",
    "|---|---|---|---|",
    ...input.rows.map(
      (row) =>
        `| ${cell(row.check)} | ${cell(row.figure)} | ${cell(row.target)} | ${row.verdict} |`,
    ),
    "",
    failed === 0
      ? `All ${checks.length} checks passed.`
      : `${failed} of ${checks.length} checks failed.`,
  ];
  if (input.notes.length) {
    lines.push("", "Notes:", "", ...input.notes.map((note) => `- ${note.replaceAll("\n", " ")}`));
  }
  return `${lines.join("\n")}\n`;
}

const BEGIN = "<!-- soak:begin -->";
const END = "<!-- soak:end -->";

/** Replaces what is between the soak markers, and nothing else. */
export function writeSoakSection(path: string, report: string): void {
  const page = readFileSync(path, "utf8");
  const begin = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (begin === -1 || end === -1 || end < begin) {
    throw new Error(`${path} has no ${BEGIN} … ${END} section to write into`);
  }
  const next = `${page.slice(0, begin + BEGIN.length)}\n${report}${page.slice(end)}`;
  writeFileSync(path, next);
}
