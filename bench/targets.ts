import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { eventStorePath } from "../src/config/paths.js";
import { freeLoopbackPort } from "../src/tunnel/free-port.js";
import { BIN, cleanEnv } from "../test/support/cli-process.js";

/**
 * The processes under test: our CLI, the tutorial's Python adapter, and a bare node:http server
 * (the ceiling). Each is a real child process whose output goes to a log file, not a pipe: a pipe
 * the bench failed to drain would stall the adapter (Node writes to pipes synchronously), and
 * reading it would cost the generator CPU it shares with the adapter.
 */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const TUTORIAL_ADAPTER = resolve(
  REPO_ROOT,
  "../shared/reference/vast_google_chat_adapter.py",
);
const BARE_SERVER = fileURLToPath(new URL("./bare-server.ts", import.meta.url));

export interface Target {
  name: string;
  pid: number;
  /** e.g. http://127.0.0.1:40123 */
  origin: string;
  path: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** From the spawn until the first 200 from /health, polled every HEALTH_POLL_MS. */
  startedInMs: number;
}

/** Every child still running: killed on any exit of the bench, normal or not. */
const children = new Set<ChildProcess>();

export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
}

function spawnLogged(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
): { child: ChildProcess; exited: Promise<void> } {
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  children.add(child);
  const exited = new Promise<void>((done) => {
    child.once("exit", () => {
      children.delete(child);
      done();
    });
    child.once("error", (error) => {
      console.error(`${name}: could not start: ${error.message}`);
      children.delete(child);
      done();
    });
  });
  return { child, exited };
}

function logTail(logFile: string, lines = 30): string {
  try {
    return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Polls the log for a JSON line matching `predicate`; bounded by `timeoutMs`. */
async function waitForLogRecord(
  target: { child: ChildProcess; logFile: string; name: string },
  predicate: (record: Record<string, unknown>) => boolean,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (target.child.exitCode !== null || target.child.signalCode !== null) break;
    for (const line of logTail(target.logFile, 200).split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (predicate(record)) return record;
      } catch {
        // A line still being written; the next poll sees it whole.
      }
    }
    await sleep(50);
  }
  throw new Error(`${target.name} did not become ready; its log:\n${logTail(target.logFile)}`);
}

/** How often a starting adapter's /health is asked: the resolution of the start-up time. */
const HEALTH_POLL_MS = 5;

/**
 * Polls /health until it answers 200 and returns the ms since `spawnedAt` (performance.now()).
 * Bounded by `timeoutMs`; gives up early if the process exits.
 */
async function waitForHealth(
  target: { child: ChildProcess; logFile: string; name: string },
  origin: string,
  spawnedAt: number,
  timeoutMs = 15_000,
): Promise<number> {
  const deadline = spawnedAt + timeoutMs;
  while (performance.now() < deadline) {
    if (target.child.exitCode !== null || target.child.signalCode !== null) break;
    try {
      const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return performance.now() - spawnedAt;
    } catch {
      // Not listening yet.
    }
    await sleep(HEALTH_POLL_MS);
  }
  throw new Error(`${target.name} did not answer /health; its log:\n${logTail(target.logFile)}`);
}

function originOf(url: unknown, name: string): { origin: string; path: string } {
  if (typeof url !== "string") throw new Error(`${name}: the ready line has no url`);
  const parsed = new URL(url);
  return { origin: parsed.origin, path: parsed.pathname };
}

/** A webhook secret for one adapter under test. */
export const newSecret = () => `bench-${randomBytes(12).toString("hex")}`;

export interface OursOptions {
  workdir: string;
  chatUrl: string;
  secret: string;
}

/**
 * `node bin/vast-gchat.js serve --port N`, as a user runs it, with its own config dir. The port
 * is chosen beforehand so /health can be polled from the spawn on, as for the tutorial's.
 */
export async function startOurs(options: OursOptions): Promise<Target & { storePath: string }> {
  const name = "vast-gchat";
  const configDir = join(options.workdir, "config");
  const logFile = join(options.workdir, "vast-gchat.log");
  const port = await freeLoopbackPort();
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: options.secret,
    GOOGLE_CHAT_URL: options.chatUrl,
    VAST_GCHAT_CONFIG_DIR: configDir,
  });
  const spawnedAt = performance.now();
  const { child, exited } = spawnLogged(
    name,
    process.execPath,
    [BIN, "serve", "--host", "127.0.0.1", "--port", String(port)],
    env,
    logFile,
  );
  const origin = `http://127.0.0.1:${port}`;
  const startedInMs = await waitForHealth({ child, logFile, name }, origin, spawnedAt);
  // The ready line names the webhook path; it follows the listening socket closely.
  const ready = await waitForLogRecord({ child, logFile, name }, (r) => r.msg === "ready");
  const { path } = originOf(ready.url, name);
  return {
    name,
    pid: requirePid(child, name),
    origin,
    path,
    child,
    logFile,
    exited,
    startedInMs,
    storePath: eventStorePath(configDir),
  };
}

/** Why the tutorial's adapter cannot run here, or undefined when it can. */
export function tutorialUnavailable(): string | undefined {
  if (!existsSync(TUTORIAL_ADAPTER)) return `${TUTORIAL_ADAPTER} not found`;
  const probe = spawnSync("python3", ["-c", "import requests"], { timeout: 15_000 });
  if (probe.error) return `python3 not runnable (${probe.error.message})`;
  if (probe.status !== 0) return "python3 has no `requests` module (pip install requests)";
  return undefined;
}

export function pythonVersion(): string | undefined {
  const probe = spawnSync("python3", ["--version"], { timeout: 15_000, encoding: "utf8" });
  return probe.status === 0 ? `${probe.stdout}${probe.stderr}`.trim() : undefined;
}

/** `python3 -u vast_google_chat_adapter.py`, the tutorial's way: env only. */
export async function startTutorial(options: OursOptions): Promise<Target> {
  const name = "tutorial adapter";
  // The tutorial reads PORT and has no "port 0": ask the kernel for a free one first.
  const port = await freeLoopbackPort();
  const logFile = join(options.workdir, "tutorial.log");
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: options.secret,
    GOOGLE_CHAT_URL: options.chatUrl,
    PORT: String(port),
  });
  const spawnedAt = performance.now();
  const { child, exited } = spawnLogged(name, "python3", ["-u", TUTORIAL_ADAPTER], env, logFile);
  const origin = `http://127.0.0.1:${port}`;
  // It prints "listening on ..." before it binds, so the health check is the real signal.
  const startedInMs = await waitForHealth({ child, logFile, name }, origin, spawnedAt);
  return {
    name,
    pid: requirePid(child, name),
    origin,
    path: "/",
    child,
    logFile,
    exited,
    startedInMs,
  };
}

/** The ceiling: node:http answering 200 without doing anything, run the same way. */
export async function startBareServer(workdir: string): Promise<Target> {
  const name = "bare node:http";
  const logFile = join(workdir, "bare.log");
  const spawnedAt = performance.now();
  const { child, exited } = spawnLogged(
    name,
    process.execPath,
    ["--import", "tsx", BARE_SERVER],
    cleanEnv({}),
    logFile,
  );
  const ready = await waitForLogRecord({ child, logFile, name }, (r) => r.msg === "ready");
  const { origin, path } = originOf(ready.url, name);
  return {
    name,
    pid: requirePid(child, name),
    origin,
    path,
    child,
    logFile,
    exited,
    startedInMs: performance.now() - spawnedAt,
  };
}

function requirePid(child: ChildProcess, name: string): number {
  if (child.pid === undefined) throw new Error(`${name} has no pid`);
  return child.pid;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopTarget(target: Target, graceMs = 5000): Promise<void> {
  const { child } = target;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = new AbortController();
  await Promise.race([
    target.exited,
    sleep(graceMs, undefined, { signal: timer.signal }).catch(() => {}),
  ]);
  timer.abort();
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await target.exited;
  }
}

export function tailOf(target: Target): string {
  return logTail(target.logFile);
}
