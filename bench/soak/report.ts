import type { MachineInfo } from "../machine.js";
import { writeSection } from "../report.js";
import type { CheckRow } from "./results.js";

/**
 * The results as one markdown table, with what is needed to judge it above (command, date,
 * machine, load), and its place in BENCHMARKS.md: only between the soak markers, since another
 * script owns the bench section.
 */
export interface ReportInput {
  command: string;
  startedAt: Date;
  durationS: number;
  machine: MachineInfo;
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
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB.toFixed(1)} GiB, Node ${machine.node}; load average ${input.loadAtStart} at the start, ${input.loadAtEnd} at the end (1, 5, 15 min)`,
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

/** Replaces what is between the soak markers, and nothing else (the bench owns another section). */
export function writeSoakSection(path: string, report: string): void {
  writeSection(path, report, "<!-- soak:begin -->", "<!-- soak:end -->");
}
