import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { BIN } from "../../test/support/cli-process.js";
import { REPO_ROOT } from "../targets.js";

/**
 * The CLI as child processes, each in its own process group (so a kill reaches anything it
 * started) with stdout and stderr appended to files: a pipe the suite failed to drain would stall
 * the child, and the files are what the secrets scan reads afterwards.
 */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LoggedProcess {
  label: string;
  pid: number;
  child: ChildProcess;
  stdoutPath: string;
  stderrPath: string;
  exited: Promise<ChildExit>;
  isAlive(): boolean;
}

const running = new Set<LoggedProcess>();
const logFiles = new Set<string>();
let spawned = 0;

/** Every file a child of this suite has written its output to. */
export function capturedLogFiles(): string[] {
  return [...logFiles];
}

export function processesStarted(): number {
  return spawned;
}

/**
 * `node bin/vast-gchat.js ARGS`: the built CLI (bin/ imports dist/) as a user runs it. `stem`
 * names the log files; runs with the same stem append to the same pair.
 */
export function spawnCli(
  label: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logDir: string,
  stem: string,
): LoggedProcess {
  const stdoutPath = join(logDir, `${stem}.stdout.log`);
  const stderrPath = join(logDir, `${stem}.stderr.log`);
  const child = execa(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env,
    extendEnv: false,
    stdin: "ignore",
    stdout: { file: stdoutPath, append: true },
    stderr: { file: stderrPath, append: true },
    detached: true,
    reject: false,
  });
  logFiles.add(stdoutPath);
  logFiles.add(stderrPath);
  spawned++;
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${label} did not start`);
  let alive = true;
  const exited = child.then((result): ChildExit => {
    alive = false;
    running.delete(handle);
    return { code: result.exitCode ?? null, signal: (result.signal as NodeJS.Signals) ?? null };
  });
  const handle: LoggedProcess = {
    label,
    pid,
    child,
    stdoutPath,
    stderrPath,
    exited,
    isAlive: () => alive,
  };
  running.add(handle);
  return handle;
}

/** Signals the child's whole process group; a group already gone is fine. */
export function signalGroup(proc: LoggedProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // ESRCH: it has exited already.
  }
}

/** kill -9, and wait until the kernel has reaped it (its port and files are free then). */
export async function killHard(proc: LoggedProcess): Promise<ChildExit> {
  signalGroup(proc, "SIGKILL");
  return proc.exited;
}

/** SIGTERM (serve finishes the post in flight and closes the store), SIGKILL after graceMs. */
export async function stopGently(proc: LoggedProcess, graceMs = 10_000): Promise<ChildExit> {
  if (!proc.isAlive()) return proc.exited;
  signalGroup(proc, "SIGTERM");
  const timer = new AbortController();
  const result = await Promise.race([
    proc.exited,
    sleep(graceMs, undefined, { signal: timer.signal }).then(
      () => undefined,
      () => undefined,
    ),
  ]);
  timer.abort();
  if (result) return result;
  return killHard(proc);
}

/** Runs a short command to its end; killed if it takes longer than timeoutMs. */
export async function runCliToEnd(
  label: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logDir: string,
  stem: string,
  timeoutMs = 30_000,
): Promise<ChildExit & { timedOut: boolean }> {
  const proc = spawnCli(label, args, env, logDir, stem);
  const timer = setTimeout(() => signalGroup(proc, "SIGKILL"), timeoutMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  return { ...exit, timedOut: exit.signal === "SIGKILL" };
}

/** Synchronous, for exit handlers: SIGKILL to every group still running. */
export function killEveryChildNow(): void {
  for (const proc of running) signalGroup(proc, "SIGKILL");
}

export function childrenStillRunning(): number {
  return running.size;
}
