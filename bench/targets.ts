import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { eventStorePath } from "../src/config/paths.js";
import { isPostgresUrl } from "../src/delivery/store-location.js";
import { freeLoopbackPort } from "../src/tunnel/free-port.js";
import { BIN, type CliProcess, cleanEnv, spawnProcess } from "../test/support/cli-process.js";
import type { LoadTarget } from "./load.js";

/**
 * The processes under test: our CLI, the tutorial's Python adapter, and a bare node:http server
 * (the ceiling), each a child process (test/support's spawnProcess) writing to a log file, SIGKILL
 * 5 s after a SIGTERM that did not end it, killed when the bench exits.
 */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const TUTORIAL_ADAPTER = resolve(REPO_ROOT, "../shared/reference/vast_google_chat_adapter.py");
const BARE_SERVER = fileURLToPath(new URL("./bare-server.ts", import.meta.url));

export interface Target extends LoadTarget {
  name: string;
  pid: number;
  proc: CliProcess;
  /** From the spawn until the first 200 from /health (or the ready line, for the bare server). */
  startedInMs: number;
  /** Ours only: its store, for the kill -9 check. */
  storePath?: string;
}

interface StartOptions {
  workdir: string;
  chatUrl: string;
  secret: string;
}

export type StartTarget = (options: StartOptions) => Promise<Target>;

/** A webhook secret for one adapter under test. */
export const newSecret = () => `bench-${randomBytes(12).toString("hex")}`;

function spawn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, log: string) {
  const spawnedAt = performance.now();
  const proc = spawnProcess(command, args, env, {
    logFile: log,
    cwd: REPO_ROOT,
    forceKillAfterMs: 5000,
  });
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${name} did not start; its log:\n${tailOf(proc)}`);
  return { proc, pid, spawnedAt };
}

const running = (proc: CliProcess) =>
  proc.child.exitCode === null && proc.child.signalCode === null;

/** Polls /health every 5 ms until it answers 200; the ms since the spawn. 15 s at most. */
async function waitForHealth(name: string, proc: CliProcess, origin: string, spawnedAt: number) {
  while (performance.now() < spawnedAt + 15_000 && running(proc)) {
    try {
      const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return performance.now() - spawnedAt;
    } catch {
      // Not listening yet.
    }
    await sleep(5);
  }
  throw new Error(`${name} did not answer /health; its log:\n${tailOf(proc)}`);
}

/** `node bin/vast-gchat.js serve --port N` with its own config dir, as a user runs it. */
export async function startOurs(options: StartOptions): Promise<Target> {
  const name = "vast-gchat";
  const configDir = join(options.workdir, "config");
  const port = await freeLoopbackPort();
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: options.secret,
    GOOGLE_CHAT_URL: options.chatUrl,
    VAST_GCHAT_CONFIG_DIR: configDir,
    // `VAST_GCHAT_STORE=postgresql://... npm run bench` measures serve on PostgreSQL (a fresh
    // database each run: the store is not emptied between sessions).
    ...pick(process.env, "VAST_GCHAT_SQLITE_DRIVER", "VAST_GCHAT_STORE"),
  });
  const { proc, pid, spawnedAt } = spawn(
    name,
    process.execPath,
    [BIN, "serve", "--host", "127.0.0.1", "--port", String(port)],
    env,
    join(options.workdir, "vast-gchat.log"),
  );
  const origin = `http://127.0.0.1:${port}`;
  const startedInMs = await waitForHealth(name, proc, origin, spawnedAt);
  // The ready line names the webhook path; it follows the listening socket closely.
  const ready = await proc.waitForLog((r) => r.msg === "ready");
  const { pathname: path } = new URL(String(ready.url));
  // The kill -9 check reads a SQLite file; on PostgreSQL it is left out.
  const onSqlite = !isPostgresUrl(process.env.VAST_GCHAT_STORE ?? "");
  const storePath = onSqlite
    ? process.env.VAST_GCHAT_STORE || eventStorePath(configDir)
    : undefined;
  const target = { name, pid, origin, path, secret: options.secret, proc, startedInMs };
  return { ...target, ...(storePath ? { storePath } : {}) };
}

/** The named variables of `env` that are set, to pass to a child. */
function pick(env: NodeJS.ProcessEnv, ...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
}

/** Why the tutorial's adapter cannot run here, or undefined when it can. */
export function tutorialUnavailable(): string | undefined {
  if (!existsSync(TUTORIAL_ADAPTER)) return `${TUTORIAL_ADAPTER} not found`;
  const probe = spawnSync("python3", ["-c", "import requests"], { timeout: 15_000 });
  if (probe.error) return `python3 not runnable (${probe.error.message})`;
  if (probe.status !== 0) return "python3 has no `requests` module (pip install requests)";
  return undefined;
}

/** `python3 -u vast_google_chat_adapter.py`, the tutorial's way: env only. */
export async function startTutorial(options: StartOptions): Promise<Target> {
  const name = "tutorial adapter";
  // The tutorial reads PORT and has no "port 0": ask the kernel for a free one first.
  const port = await freeLoopbackPort();
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: options.secret,
    GOOGLE_CHAT_URL: options.chatUrl,
    PORT: String(port),
  });
  const log = join(options.workdir, "tutorial.log");
  const { proc, pid, spawnedAt } = spawn(name, "python3", ["-u", TUTORIAL_ADAPTER], env, log);
  const origin = `http://127.0.0.1:${port}`;
  // It prints "listening on ..." before it binds, so the health check is the real signal.
  const startedInMs = await waitForHealth(name, proc, origin, spawnedAt);
  return { name, pid, origin, path: "/", secret: options.secret, proc, startedInMs };
}

/** The ceiling: node:http answering 200 without doing anything, run the same way. */
export async function startBareServer(workdir: string): Promise<Target> {
  const name = "bare node:http";
  const args = ["--import", "tsx", BARE_SERVER];
  const log = join(workdir, "bare.log");
  const { proc, pid, spawnedAt } = spawn(name, process.execPath, args, cleanEnv({}), log);
  const ready = await proc.waitForLog((r) => r.msg === "ready");
  const startedInMs = performance.now() - spawnedAt;
  const { origin, pathname: path } = new URL(String(ready.url));
  return { name, pid, origin, path, secret: "unused", proc, startedInMs };
}

export function tailOf(proc: CliProcess, lines = 30): string {
  return proc.stdout().split("\n").slice(-lines).join("\n") || "(no log)";
}

/** Peak (VmHWM) or current (VmRSS, the soak's) resident set of a live process, in MiB. */
export function rssMiB(pid: number, field = "VmHWM"): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined; // Gone.
  }
}

/** Kernel clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat times. */
const TICKS_PER_S =
  Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5000 }).stdout) || 100;

/** User + system CPU seconds a live process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // utime and stime, the 14th and 15th fields, after the name (which may hold spaces).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}
