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
  /** Ours on SQLite only: its store, for the kill -9 check. */
  storePath?: string;
}
type StartOptions = { workdir: string; chatUrl: string; secret: string };
export type StartTarget = (options: StartOptions) => Promise<Target>;

/** A webhook secret for one adapter under test. */
export const newSecret = () => `bench-${randomBytes(12).toString("hex")}`;

/**
 * Spawns `command`, then waits for it: until /health answers 200 (polled every 5 ms, 15 s at
 * most) when `health` is given, else for its ready line (which names its origin and path).
 */
async function start(
  name: string,
  [command, ...args]: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  health?: LoadTarget,
): Promise<Target> {
  const spawnedAt = performance.now();
  const proc = spawnProcess(command as string, args, env, {
    logFile,
    cwd: REPO_ROOT,
    forceKillAfterMs: 5000,
  });
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${name} did not start; its log:\n${tailOf(proc)}`);
  const started = (endpoint: LoadTarget): Target => ({
    name,
    pid,
    proc,
    ...endpoint,
    startedInMs: performance.now() - spawnedAt,
  });
  if (health === undefined) {
    const ready = await proc.waitForLog((r) => r.msg === "ready");
    const { origin, pathname: path } = new URL(String(ready.url));
    return started({ origin, path, secret: "unused" });
  }
  const running = () => proc.child.exitCode === null && proc.child.signalCode === null;
  while (performance.now() < spawnedAt + 15_000 && running()) {
    try {
      const signal = AbortSignal.timeout(1000);
      const response = await fetch(`${health.origin}/health`, { signal });
      await response.arrayBuffer();
      if (response.ok) return started(health);
    } catch {
      // Not listening yet.
    }
    await sleep(5);
  }
  throw new Error(`${name} did not answer /health; its log:\n${tailOf(proc)}`);
}

/** `node bin/vast-gchat.js serve --port N` with its own config dir, as a user runs it. */
export async function startOurs({ workdir, chatUrl, secret }: StartOptions): Promise<Target> {
  const configDir = join(workdir, "config");
  const port = await freeLoopbackPort();
  // `VAST_GCHAT_STORE=postgresql://... npm run bench` measures serve on PostgreSQL (a fresh
  // database each run: the store is not emptied between sessions).
  const { VAST_GCHAT_SQLITE_DRIVER = "", VAST_GCHAT_STORE = "" } = process.env;
  // BENCH_SERVE_ENV='{"NODE_OPTIONS": "..."}': settings for serve alone, as a deployment gives
  // them (bench:stores' row of serve started as a service), never for the generator beside it.
  const serveEnv = JSON.parse(process.env.BENCH_SERVE_ENV ?? "{}") as Record<string, string>;
  const env = cleanEnv({
    ...serveEnv,
    VAST_WEBHOOK_SECRET: secret,
    GOOGLE_CHAT_URL: chatUrl,
    VAST_GCHAT_CONFIG_DIR: configDir,
    ...(VAST_GCHAT_SQLITE_DRIVER ? { VAST_GCHAT_SQLITE_DRIVER } : {}),
    ...(VAST_GCHAT_STORE ? { VAST_GCHAT_STORE } : {}),
  });
  const args = [process.execPath, BIN, "serve", "--host", "127.0.0.1", "--port", String(port)];
  const health = { origin: `http://127.0.0.1:${port}`, path: "/", secret };
  const target = await start("vast-gchat", args, env, join(workdir, "vast-gchat.log"), health);
  // The ready line names the webhook path; it follows the listening socket closely.
  const ready = await target.proc.waitForLog((r) => r.msg === "ready");
  target.path = new URL(String(ready.url)).pathname;
  // The kill -9 check reads a SQLite file; on PostgreSQL it is left out.
  if (!isPostgresUrl(VAST_GCHAT_STORE))
    target.storePath = VAST_GCHAT_STORE || eventStorePath(configDir);
  return target;
}

/** Why the tutorial's adapter cannot run here, or undefined when it can. */
export function tutorialUnavailable(): string | undefined {
  if (!existsSync(TUTORIAL_ADAPTER)) return `${TUTORIAL_ADAPTER} not found`;
  const probe = spawnSync("python3", ["-c", "import requests"], { timeout: 15_000 });
  if (probe.error) return `python3 not runnable (${probe.error.message})`;
  if (probe.status !== 0) return "python3 has no `requests` module (pip install requests)";
  return undefined;
}

/**
 * `python3 -u vast_google_chat_adapter.py`, the tutorial's way: env only. It reads PORT and has no
 * "port 0", and prints "listening on ..." before it binds, so the health check is the signal.
 */
export async function startTutorial({ workdir, chatUrl, secret }: StartOptions): Promise<Target> {
  const port = await freeLoopbackPort();
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: secret,
    GOOGLE_CHAT_URL: chatUrl,
    PORT: String(port),
  });
  const health = { origin: `http://127.0.0.1:${port}`, path: "/", secret };
  const args = ["python3", "-u", TUTORIAL_ADAPTER];
  return start("tutorial adapter", args, env, join(workdir, "tutorial.log"), health);
}

/** The ceiling: node:http answering 200 without doing anything, run the same way. */
export const startBareServer = (workdir: string) =>
  start(
    "bare node:http",
    [process.execPath, "--import", "tsx", BARE_SERVER],
    cleanEnv({}),
    join(workdir, "bare.log"),
  );

export const tailOf = (proc: CliProcess, lines = 30) =>
  proc.stdout().split("\n").slice(-lines).join("\n") || "(no log)";

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
