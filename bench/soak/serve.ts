import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVE_NODE_OPTIONS } from "../../src/cli/commands/service.js";
import { eventStorePath } from "../../src/config/paths.js";
import { runtimeStatePath } from "../../src/config/runtime-state.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { cleanEnv } from "../../test/support/cli-process.js";
import type { Budget } from "./budget.js";
import { type LoggedProcess, signalGroup, spawnCli } from "./processes.js";
import type { SoakSecrets } from "./secret-values.js";

/**
 * `vast-gchat serve` as the suite runs it: a fixed loopback port (a restart after kill -9 must be
 * found where the sender expects it), no tunnel, secrets from the environment only, and its own
 * config directory holding the store. The detailed /health and /metrics are on serve's second,
 * loopback-only listener (any free port): its address is read from the `ready` line.
 */
export interface ServeSpec {
  label: string;
  logDir: string;
  /** Log file stem: restarts of one adapter append to the same files. */
  stem: string;
  configDir: string;
  port: number;
  chatUrl: string;
  secrets: SoakSecrets;
  budget: Budget;
  /** More flags (e.g. -v) and environment (e.g. DEBUG) for the secrets scenario. */
  extraArgs?: readonly string[];
  extraEnv?: Readonly<Record<string, string>>;
  /** Instead of `--tunnel none` (the secrets scenario runs a stand-in tunnel command). */
  tunnelArgs?: readonly string[];
}

/**
 * The serve of one part of the suite: its logs and (unless given) its config directory in the
 * part's work directory, on a free port.
 */
export async function partServeSpec(
  part: string,
  workdir: string,
  chatUrl: string,
  context: { secrets: SoakSecrets; budget: Budget },
  more: Partial<ServeSpec> = {},
): Promise<ServeSpec> {
  return {
    label: `serve (${part})`,
    logDir: workdir,
    stem: "serve",
    configDir: join(workdir, "config"),
    port: await freeLoopbackPort(),
    chatUrl,
    secrets: context.secrets,
    budget: context.budget,
    ...more,
  };
}

export interface RunningServe {
  proc: LoggedProcess;
  /** The public listener: the webhook path and the minimal /health. */
  origin: string;
  /** The loopback-only listener: the detailed /health and /metrics. */
  adminOrigin: string;
  path: string;
  storePath: string;
}

export function serveEnv(spec: ServeSpec): NodeJS.ProcessEnv {
  return cleanEnv({
    VAST_WEBHOOK_SECRET: spec.secrets.webhookSecret,
    GOOGLE_CHAT_URL: spec.chatUrl,
    // serve has no use for these: they are there to prove they are never printed (nor handed to
    // a tunnel child).
    VAST_API_KEY: spec.secrets.apiKey,
    NGROK_AUTHTOKEN: spec.secrets.ngrokAuthtoken,
    VAST_GCHAT_CONFIG_DIR: spec.configDir,
    // As `vast-gchat service` runs it for good (its heap cap); SOAK_CHILD_NODE_OPTIONS replaces
    // that, to look into a failure (e.g. --trace-gc) or to measure serve uncapped ("").
    NODE_OPTIONS: process.env.SOAK_CHILD_NODE_OPTIONS ?? SERVE_NODE_OPTIONS.join(" "),
    ...spec.extraEnv,
  });
}

export function serveArgs(spec: ServeSpec): string[] {
  return [
    "serve",
    "--port",
    String(spec.port),
    ...(spec.tunnelArgs ?? ["--tunnel", "none"]),
    "--rate",
    String(spec.budget.serveRate),
    "--max-age",
    String(spec.budget.serveMaxAgeHours),
    ...(spec.extraArgs ?? []),
  ];
}

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

function readFrom(path: string, offset: number): string {
  const size = sizeOf(path);
  if (size <= offset) return "";
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The last lines of a child's output since `offset`, for an error message (redact before printing). */
export function outputSince(proc: LoggedProcess, offsets: { out: number; err: number }): string {
  const tail = (text: string) => text.split("\n").slice(-15).join("\n");
  return `stdout:\n${tail(readFrom(proc.stdoutPath, offsets.out))}\nstderr:\n${tail(readFrom(proc.stderrPath, offsets.err))}`;
}

/**
 * Starts serve; `ready` settles when its `ready` line appears in this run's part of the log, or
 * rejects when it exits first or takes longer than timeoutMs. The caller may kill it before then.
 */
export function launchServe(
  spec: ServeSpec,
  timeoutMs = 20_000,
): { proc: LoggedProcess; ready: Promise<RunningServe> } {
  const stdoutPath = `${spec.logDir}/${spec.stem}.stdout.log`;
  const stderrPath = `${spec.logDir}/${spec.stem}.stderr.log`;
  const offsets = { out: sizeOf(stdoutPath), err: sizeOf(stderrPath) };
  const proc = spawnCli(spec.label, serveArgs(spec), serveEnv(spec), spec.logDir, spec.stem);
  const ready = (async (): Promise<RunningServe> => {
    const deadline = Date.now() + timeoutMs;
    let scanned = 0;
    while (Date.now() < deadline) {
      const text = readFrom(proc.stdoutPath, offsets.out);
      // Only whole lines; a line still being written is read on the next poll.
      const complete = text.slice(0, text.lastIndexOf("\n") + 1);
      for (const line of complete.slice(scanned).split("\n")) {
        if (!line.startsWith("{")) continue;
        const record = JSON.parse(line) as { msg?: unknown; url?: unknown; admin_url?: unknown };
        if (record.msg === "ready" && typeof record.url === "string") {
          const url = new URL(record.url);
          const adminOrigin = adminOriginOf(record.admin_url, spec.configDir);
          if (adminOrigin === undefined) {
            signalGroup(proc, "SIGKILL");
            throw new Error(
              `${spec.label} is ready but names no loopback listener (no admin_url in its ready line, no adminOrigin in adapter.json)`,
            );
          }
          return {
            proc,
            origin: url.origin,
            adminOrigin,
            path: url.pathname,
            storePath: eventStorePath(spec.configDir),
          };
        }
      }
      scanned = complete.length;
      if (!proc.isAlive()) {
        const exit = await proc.exited;
        throw new Error(
          `${spec.label} exited (${exit.signal ?? exit.code}) before it was ready\n${outputSince(proc, offsets)}`,
        );
      }
      await sleep(20);
    }
    signalGroup(proc, "SIGKILL");
    throw new Error(
      `${spec.label} was not ready in ${timeoutMs} ms\n${outputSince(proc, offsets)}`,
    );
  })();
  return { proc, ready };
}

/**
 * The loopback listener's origin: `admin_url` of the ready line, else `adminOrigin` of the config
 * directory's adapter.json (written before the ready line). Only a plain-http loopback address is
 * taken: the suite never asks anything beyond loopback.
 */
function adminOriginOf(adminUrl: unknown, configDir: string): string | undefined {
  const candidates: unknown[] = [adminUrl];
  try {
    const state = JSON.parse(readFileSync(runtimeStatePath(configDir), "utf8")) as {
      adminOrigin?: unknown;
    };
    candidates.push(state.adminOrigin);
  } catch {
    // No adapter.json: the ready line must do.
  }
  for (const candidate of candidates) {
    if (typeof candidate !== "string") continue;
    try {
      const url = new URL(candidate);
      if (url.protocol === "http:" && url.hostname === "127.0.0.1") return url.origin;
    } catch {
      // Not a URL: try the next.
    }
  }
  return undefined;
}

export async function startServe(spec: ServeSpec): Promise<RunningServe> {
  return launchServe(spec).ready;
}

/**
 * GET /health: the status and parsed body, or the error that stood in the way. The detailed one
 * (queue, dead letters, Chat) is the loopback listener's: pass `RunningServe.adminOrigin`; the
 * public origin answers only `{ok, instance}`.
 */
export async function health(
  origin: string,
): Promise<{ status: number; body: Record<string, unknown> } | { error: string }> {
  try {
    const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as Record<string, unknown>;
    return { status: response.status, body };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** GET or HEAD of a URL on loopback: status and text, or the error that stood in the way. */
export async function fetchText(
  url: string,
  method: "GET" | "HEAD" = "GET",
): Promise<{ status: number; text: string } | { error: string }> {
  try {
    const response = await fetch(url, { method, signal: AbortSignal.timeout(5000) });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** Current resident set (VmRSS) of a live process, in MiB; undefined once it is gone. */
export function currentRssMiB(pid: number): number | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}
