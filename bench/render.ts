import { RESULTS_FILE, renderDocument } from "./report.js";

/** `tsx bench/render.ts [FILE] [--write]`: the report from a saved run, without measuring again. */
const args = process.argv.slice(2);
process.exitCode = renderDocument(
  args.find((arg) => arg !== "--write") ?? RESULTS_FILE,
  args.includes("--write"),
)
  ? 0
  : 1;
