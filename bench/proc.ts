import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * What Linux's /proc says about a process under test: its peak memory and its CPU time. Both
 * cover every thread of the process (the tutorial's per-request threads, our checkpointer).
 */

/** Peak resident set (VmHWM) of a live process, in MiB; undefined once it is gone. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat times. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const probe = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5000 });
    const value = Number(probe.stdout?.trim());
    clockTicks = probe.status === 0 && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** User + system CPU seconds a live process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 (utime) and 15 (stime) of the whole line are 12 and 13 after the name.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}
