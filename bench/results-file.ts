import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ReportInput } from "./report-input.js";
import { REPO_ROOT } from "./targets.js";

/**
 * The one JSON document a bench run leaves: everything it measured (ReportInput). The report,
 * the verdicts and BENCHMARKS.md's section are rendered from it, live or later with
 * `tsx bench/render.ts [FILE] [--write]`. Maps, infinite latencies ("no answer") and the start
 * date survive the round trip.
 */
export const RESULTS_FILE = join(REPO_ROOT, "bench-results.json");

export function saveResults(input: ReportInput, file = RESULTS_FILE): void {
  const replacer = (_key: string, value: unknown): unknown => {
    if (value instanceof Map) return { $map: [...value] };
    if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
    return value;
  };
  writeFileSync(file, `${JSON.stringify(input, replacer, 1)}\n`);
}

export function loadResults(file = RESULTS_FILE): ReportInput {
  const input = JSON.parse(readFileSync(file, "utf8"), (_key, value: unknown) => {
    if (typeof value === "object" && value !== null) {
      if ("$map" in value) return new Map(value.$map as [unknown, unknown][]);
      if ("$number" in value) return Number(value.$number);
    }
    return value;
  }) as ReportInput & { startedAt: string };
  return { ...input, startedAt: new Date(input.startedAt) };
}
