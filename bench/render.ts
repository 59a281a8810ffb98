import { join } from "node:path";
import { writeBenchSection } from "./benchmarks-file.js";
import { renderReport } from "./report.js";
import { loadResults, RESULTS_FILE } from "./results-file.js";
import { REPO_ROOT } from "./targets.js";

/** `tsx bench/render.ts [FILE] [--write]`: the report from a saved run, without measuring again. */
const args = process.argv.slice(2);
const file = args.find((arg) => arg !== "--write") ?? RESULTS_FILE;
const report = renderReport(loadResults(file));
console.log(report);
if (args.includes("--write")) writeBenchSection(join(REPO_ROOT, "BENCHMARKS.md"), report);
