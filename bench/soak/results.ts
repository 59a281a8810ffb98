import type { Budget } from "./budget.js";
import type { SoakPart } from "./options.js";
import type { SoakSecrets } from "./secret-values.js";

/** One line of the results table. `info` rows explain a figure; they never fail the run. */
export type Verdict = "PASS" | "FAIL" | "SKIP" | "info";

export interface CheckRow {
  part: SoakPart;
  check: string;
  figure: string;
  target: string;
  verdict: Verdict;
}

export interface PartResult {
  rows: CheckRow[];
  /** Details worth reading under the table: reproductions, examples, why a part was skipped. */
  notes: string[];
}

/** What every part gets: where to write, how big to be, the secrets to use and the seed. */
export interface PartContext {
  workdir: string;
  budget: Budget;
  secrets: SoakSecrets;
  seed: number;
  progress: (message: string) => void;
}

export function verdict(pass: boolean): Verdict {
  return pass ? "PASS" : "FAIL";
}

/** A part that could not run to its end: one failing row that says why, instead of no rows. */
export function brokenPart(part: SoakPart, error: unknown, redact: (text: string) => string) {
  const message = redact(error instanceof Error ? error.message : String(error));
  return {
    rows: [
      {
        part,
        check: `${part}: ran to the end`,
        figure: `aborted: ${message.split("\n")[0]}`,
        target: "no error",
        verdict: "FAIL",
      },
    ],
    notes: [`${part} aborted: ${message}`],
  } satisfies PartResult;
}

export function formatCounts(counts: ReadonlyMap<string | number, number>): string {
  if (counts.size === 0) return "none";
  return [...counts]
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([key, count]) => `${key}×${count}`)
    .join(", ");
}

export function countInto<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
