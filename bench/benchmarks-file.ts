import { readFileSync, renameSync, writeFileSync } from "node:fs";

/**
 * BENCHMARKS.md holds sections written by different scripts (the bench, the soak suite), each
 * between its own pair of markers. The bench replaces only the text between its markers and
 * leaves every other byte of the file as it found it.
 */
export const BENCH_BEGIN = "<!-- bench:begin -->";
export const BENCH_END = "<!-- bench:end -->";

/** `text` with the part between `begin` and `end` replaced; throws if the markers are not there once each, in order. */
export function replaceSection(text: string, begin: string, end: string, content: string): string {
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from === -1 || to === -1 || to < from) {
    throw new Error(`the markers ${begin} … ${end} are missing or out of order`);
  }
  if (text.indexOf(begin, from + 1) !== -1 || text.indexOf(end, to + 1) !== -1) {
    throw new Error(`the markers ${begin} … ${end} appear more than once`);
  }
  return `${text.slice(0, from + begin.length)}\n${content.trim()}\n${text.slice(to)}`;
}

/**
 * Writes the bench section. Read, replace and rename happen back to back, so another script
 * writing its own section at nearly the same moment is unlikely to be overwritten, and a reader
 * never sees a half-written file.
 */
export function writeBenchSection(path: string, content: string): void {
  const updated = replaceSection(readFileSync(path, "utf8"), BENCH_BEGIN, BENCH_END, content);
  const temporary = `${path}.bench-${process.pid}.tmp`;
  writeFileSync(temporary, updated);
  renameSync(temporary, path);
}
