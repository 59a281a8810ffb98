import { readFileSync } from "node:fs";
import { processTable } from "../../src/tunnel/process-table.js";
import type { Needle } from "./secret-values.js";

/**
 * What serve hands the processes it starts (a tunnel program, the shell around a tunnel command,
 * their own children, the watchdog): found through /proc by their parent ids, their environment
 * (as it was at exec) and command line read while serve runs, and searched for the secrets. Linux
 * only; the suite runs there.
 */
export interface ChildProcessInfo {
  pid: number;
  ppid: number;
  /** `comm` and the start of the command line, for the report (redact before printing). */
  description: string;
  cmdline: string;
  environ: string[];
}

export interface EnvLeak {
  pid: number;
  description: string;
  /** The variable that holds the secret, or "command line". */
  where: string;
  /** Which secret (never its value). */
  what: string;
}

export interface ChildScan {
  processes: ChildProcessInfo[];
  /** Processes that were there but whose environment could not be read (not gone: refused). */
  unreadable: Array<{ pid: number; error: string }>;
  leaks: EnvLeak[];
}

/** Every process below `root` (children, grandchildren, ...), not `root` itself. */
export function descendantsOf(root: number): Array<{ pid: number; ppid: number }> {
  const children = new Map<number, number[]>();
  for (const { pid, ppid } of processTable() ?? []) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const found: Array<{ pid: number; ppid: number }> = [];
  const queue = [root];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      found.push({ pid: child, ppid: next });
      queue.push(child);
    }
  }
  return found;
}

const gone = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ESRCH";
};

/** The NUL-separated entries of a /proc file. */
function entries(path: string): string[] {
  return readFileSync(path, "latin1").split("\0").filter(Boolean);
}

/**
 * Reads every process below `root` and searches its environment and command line for the
 * needles. Processes that end meanwhile are skipped; one whose environment cannot be read for any
 * other reason is listed as unreadable.
 */
export function scanDescendants(root: number, needles: readonly Needle[]): ChildScan {
  const scan: ChildScan = { processes: [], unreadable: [], leaks: [] };
  for (const { pid, ppid } of descendantsOf(root)) {
    let info: ChildProcessInfo;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      const cmdline = entries(`/proc/${pid}/cmdline`).join(" ");
      const environ = entries(`/proc/${pid}/environ`);
      info = { pid, ppid, description: `${comm} (${cmdline.slice(0, 80)})`, cmdline, environ };
    } catch (error) {
      if (!gone(error)) {
        scan.unreadable.push({ pid, error: (error as NodeJS.ErrnoException).code ?? "error" });
      }
      continue;
    }
    scan.processes.push(info);
    const seen = new Set<string>();
    const note = (where: string, needle: Needle) => {
      // One line per variable and secret: the halves of a value are the same leak.
      const what = needle.name.replace(/ \((first|second) half\)$/, "");
      const key = `${where}\0${what}`;
      if (seen.has(key)) return;
      seen.add(key);
      scan.leaks.push({ pid, description: info.description, where, what });
    };
    for (const variable of info.environ) {
      const name = variable.slice(0, Math.max(0, variable.indexOf("="))) || variable;
      for (const needle of needles) if (variable.includes(needle.value)) note(name, needle);
    }
    for (const needle of needles) {
      if (info.cmdline.includes(needle.value)) note("command line", needle);
    }
  }
  return scan;
}

/** Several looks, a moment apart, merged: short-lived children (the watchdog's sleep) come and go. */
export async function scanDescendantsRepeatedly(
  root: number,
  needles: readonly Needle[],
  looks: number,
  everyMs: number,
): Promise<ChildScan> {
  const merged: ChildScan = { processes: [], unreadable: [], leaks: [] };
  const known = new Set<string>();
  for (let look = 0; look < looks; look++) {
    if (look > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
    const scan = scanDescendants(root, needles);
    for (const info of scan.processes) {
      // The same pid with another command line is another program (an exec): keep both.
      const key = `${info.pid}\0${info.cmdline}`;
      if (known.has(key)) continue;
      known.add(key);
      merged.processes.push(info);
      merged.leaks.push(...scan.leaks.filter((leak) => leak.pid === info.pid));
    }
    for (const problem of scan.unreadable) {
      if (!merged.unreadable.some((known) => known.pid === problem.pid)) {
        merged.unreadable.push(problem);
      }
    }
  }
  return merged;
}
