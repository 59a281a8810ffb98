import { readdirSync, readFileSync } from "node:fs";

/** One process as Linux's /proc/<pid>/stat describes it: what the tunnel code needs of it. */
export interface ProcessEntry {
  pid: number;
  /** R, S, D, Z (a zombie: ended, not reaped yet), ... */
  state: string;
  ppid: number;
  pgrp: number;
}

/**
 * Every process now, from /proc; undefined where there is no /proc to read (macOS). A process
 * that ends while the table is read is left out.
 */
export function processTable(): ProcessEntry[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return undefined;
  }
  const table: ProcessEntry[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // ended while we looked
    }
    // After the command name, which may hold spaces and parentheses: state, ppid, pgrp, ...
    const [state = "", ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    table.push({ pid: Number(entry), state, ppid: Number(ppid), pgrp: Number(pgrp) });
  }
  return table;
}
