import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { request } from "undici";
import { SERVE_NODE_OPTIONS } from "../../src/cli/commands/service.js";
import { eventStorePath } from "../../src/config/paths.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { BIN, cleanEnv } from "../../test/support/cli-process.js";
import { REPO_ROOT } from "../targets.js";
import type { Budget } from "./run.js";

/**
 * What every part of the soak shares: its results, its secrets and events, the CLI as child
 * processes, and `serve` as the suite runs it.
 */

// ---- Results ---------------------------------------------------------------------------------

/** One line of the results table. `info` rows explain a figure; they never fail the run. */
export interface CheckRow {
  check: string;
  figure: string;
  target: string;
  verdict: "PASS" | "FAIL" | "SKIP" | "info";
}

export const row = (
  check: string,
  figure: string,
  target: string,
  pass: boolean | "info" | "SKIP",
): CheckRow => ({
  check,
  figure,
  target,
  verdict: pass === true ? "PASS" : pass === false ? "FAIL" : pass,
});

export interface PartResult {
  rows: CheckRow[];
  /** Details worth reading under the table: reproductions, examples, why a part was skipped. */
  notes: string[];
}

/** What every part gets: its own work directory, how big to be, the secrets and the seed. */
export interface PartContext {
  dir: string;
  budget: Budget;
  secrets: SoakSecrets;
  seed: number;
  progress: (message: string) => void;
  redact: (text: string) => string;
  /** Run after the part, once its children are dead (closing a fake Chat, unmounting a tmpfs). */
  later: (cleanup: () => unknown) => void;
}

export function countInto<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

export function formatCounts(counts: ReadonlyMap<string | number, number>): string {
  if (counts.size === 0) return "none";
  return [...counts]
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([key, count]) => `${key}×${count}`)
    .join(", ");
}

// ---- Secrets ---------------------------------------------------------------------------------

/**
 * The secrets the suite hands its children: fresh random values with a recognisable prefix, so a
 * leak anywhere in their output is found by a plain substring search, and never a real secret.
 * serve has no use for the API key (the commands that call the API do) nor NGROK_AUTHTOKEN: they
 * are there to prove they are never printed nor handed to a tunnel child. The refused key is one
 * the local Vast.ai API refuses: error paths must not print it either.
 */
const SECRETS = {
  webhookSecret: ["soakwhsec", "webhook secret"],
  apiKey: ["soakapikey", "Vast API key"],
  refusedApiKey: ["soakbadkey", "refused Vast API key"],
  chatKey: ["soakchatkey", "Chat key"],
  chatToken: ["soakchattoken", "Chat token"],
  ngrokAuthtoken: ["soakngrok", "NGROK_AUTHTOKEN"],
} as const;
export type SoakSecrets = Record<keyof typeof SECRETS, string>;
/** What leaked (`name`, for the report, never the value) and what to look for. */
export type Needle = { name: string; value: string };

export function makeSoakSecrets(): SoakSecrets {
  const entries = Object.entries(SECRETS).map(([key, [prefix]]) => [
    key,
    `${prefix}${randomBytes(16).toString("hex")}`,
  ]);
  return Object.fromEntries(entries) as SoakSecrets;
}

/**
 * Each whole value, and each half of its random part (16 hex characters), so a value cut short or
 * printed without its prefix is found too. A mask (`soak…ab12`) shows less.
 */
export function needlesOf(secrets: SoakSecrets): Needle[] {
  return (Object.keys(SECRETS) as Array<keyof SoakSecrets>).flatMap((key) => {
    const [name, value] = [SECRETS[key][1], secrets[key]];
    const random = value.slice(-32);
    return [
      { name, value },
      { name: `${name} (first half)`, value: random.slice(0, 16) },
      { name: `${name} (second half)`, value: random.slice(16) },
    ];
  });
}

/** The suite prints children's log tails on errors: never with a secret in them. */
export function redactor(secrets: SoakSecrets): (text: string) => string {
  const values = needlesOf(secrets).map((needle) => needle.value);
  return (text) => values.reduce((out, value) => out.replaceAll(value, "[secret]"), text);
}

// ---- Events ----------------------------------------------------------------------------------

/**
 * Events the suite can find again in Chat. Each subject carries a token (`SOAKC000042`, one capital
 * letter per part): letters and digits only, so Chat escaping leaves it whole, and a digest shows
 * every subject (its fallback text and its card sections), so counting tokens per message counts
 * events per message. The body is the same bytes on every attempt; only the timestamp and
 * signature headers change.
 */
export interface SoakEvent {
  token: string;
  eventId: string;
  body: Buffer;
}

export const TOKEN_PATTERN = /\bSOAK[A-Z]\d{6}\b/g;
// A mix of real types, so digests group several types as a real burst would.
const TYPES = ["instance_stopped", "outbid", "low_credit", "machine_error", "billing_failed"];

export function makeSoakEvents(series: "C" | "D" | "S", count: number, first = 0): SoakEvent[] {
  return Array.from({ length: count }, (_, offset) => {
    const index = first + offset;
    const token = `SOAK${series}${String(index).padStart(6, "0")}`;
    const event = sampleEvent(TYPES[index % TYPES.length] ?? "low_credit", {
      subject: `${token} soak event`,
      message: `Soak event ${index}.`,
    });
    return { token, eventId: event.event_id, body: Buffer.from(JSON.stringify(event), "utf8") };
  });
}

// ---- The CLI as child processes ----------------------------------------------------------------

/**
 * Each child in its own process group (so a kill reaches anything it started), with stdout and
 * stderr appended to files by the child itself: a pipe the suite failed to drain would stall the
 * child, and the files are what the secrets scan reads afterwards. Runs with the same `stem`
 * append to the same pair; `offsets` is where this run's output starts.
 */
export interface Child {
  label: string;
  pid: number;
  stdoutPath: string;
  stderrPath: string;
  offsets: { out: number; err: number };
  /** How it ended: `exit N` or the signal's name. */
  exited: Promise<string>;
  alive(): boolean;
}

export const children = { started: 0, running: new Set<Child>(), logFiles: new Set<string>() };

const sizeOf = (path: string) => (existsSync(path) ? statSync(path).size : 0);
const readFrom = (path: string, offset: number) =>
  existsSync(path) ? readFileSync(path).subarray(offset).toString("utf8") : "";

/** `node bin/vast-gchat.js ARGS`: the built CLI (bin/ imports dist/) as a user runs it. */
export function spawnCli(
  label: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  dir: string,
  stem: string,
): Child {
  const stdoutPath = join(dir, `${stem}.stdout.log`);
  const stderrPath = join(dir, `${stem}.stderr.log`);
  const offsets = { out: sizeOf(stdoutPath), err: sizeOf(stderrPath) };
  const subprocess = execa(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env,
    extendEnv: false,
    stdin: "ignore",
    stdout: { file: stdoutPath, append: true },
    stderr: { file: stderrPath, append: true },
    detached: true,
    reject: false,
  });
  if (subprocess.pid === undefined) throw new Error(`${label} did not start`);
  const child: Child = {
    label,
    pid: subprocess.pid,
    stdoutPath,
    stderrPath,
    offsets,
    alive: () => subprocess.exitCode === null && subprocess.signalCode === null,
    exited: subprocess.then((result) => {
      children.running.delete(child);
      return result.signal ?? `exit ${result.exitCode}`;
    }),
  };
  children.started++;
  children.running.add(child);
  children.logFiles.add(stdoutPath).add(stderrPath);
  return child;
}

/** Signals the child's whole process group; a group already gone is fine. */
export function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: it has exited already.
  }
}

/** Waits for its end; SIGKILL to its group if that takes longer than `ms`. */
export async function exitWithin(child: Child, ms: number): Promise<string> {
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), ms);
  return child.exited.finally(() => clearTimeout(timer));
}

/** kill -9, and wait until the kernel has reaped it (its port and files are free then). */
export function killHard(child: Child): Promise<string> {
  signalGroup(child, "SIGKILL");
  return child.exited;
}

/** SIGTERM (serve finishes the post in flight and closes the store), SIGKILL after 10 s. */
export function stopGently(child: Child): Promise<string> {
  signalGroup(child, "SIGTERM");
  return exitWithin(child, 10_000);
}

/** The last lines of this run's output, for an error message (redact before printing). */
export function outputOf(child: Child): string {
  const tail = (path: string, offset: number) =>
    readFrom(path, offset).split("\n").slice(-15).join("\n");
  return `stdout:\n${tail(child.stdoutPath, child.offsets.out)}\nstderr:\n${tail(child.stderrPath, child.offsets.err)}`;
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

// ---- serve -----------------------------------------------------------------------------------

/**
 * `vast-gchat serve` as the suite runs it: a fixed loopback port (a restart after kill -9 must be
 * found where the sender expects it), no tunnel unless told, secrets from the environment only,
 * its own config directory holding the store. The detailed /health and /metrics are on serve's
 * second, loopback-only listener (any free port): its address is read from the `ready` line.
 */
export interface ServeSpec {
  label: string;
  dir: string;
  stem: string;
  configDir: string;
  port: number;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export interface Serve {
  child: Child;
  /** The public listener: the webhook path and the minimal /health. */
  origin: string;
  /** The loopback-only listener: the detailed /health and /metrics. */
  adminOrigin: string;
  path: string;
  storePath: string;
}

/** A serve of one part: logs and (unless given) config in the part's directory, a free port. */
export async function serveSpec(
  context: PartContext,
  label: string,
  chatUrl: string,
  more: { stem?: string; configDir?: string; args?: string[]; env?: Record<string, string> } = {},
): Promise<ServeSpec> {
  const { budget, secrets } = context;
  const configDir = more.configDir ?? join(context.dir, "config");
  const port = await freeLoopbackPort();
  return {
    label: `serve (${label})`,
    dir: context.dir,
    stem: more.stem ?? "serve",
    configDir,
    port,
    // `--rate` high enough that pacing is never the bottleneck of a check; `--max-age` so that
    // nothing expires into the dead letters during a run.
    args: [
      ...["serve", "--port", String(port), ...(more.args ?? ["--tunnel", "none"])],
      ...["--rate", String(budget.serveRate), "--max-age", String(budget.serveMaxAgeHours)],
    ],
    env: cleanEnv({
      VAST_WEBHOOK_SECRET: secrets.webhookSecret,
      GOOGLE_CHAT_URL: chatUrl,
      VAST_API_KEY: secrets.apiKey,
      NGROK_AUTHTOKEN: secrets.ngrokAuthtoken,
      VAST_GCHAT_CONFIG_DIR: configDir,
      // As `vast-gchat service` runs it for good (its heap cap); SOAK_CHILD_NODE_OPTIONS replaces
      // that, to look into a failure (e.g. --trace-gc) or to measure serve uncapped ("").
      NODE_OPTIONS: process.env.SOAK_CHILD_NODE_OPTIONS ?? SERVE_NODE_OPTIONS.join(" "),
      ...more.env,
    }),
  };
}

/**
 * Starts serve; `ready` settles when its `ready` line appears in this run's part of the log, or
 * rejects when it exits first or takes longer than timeoutMs. The caller may kill it before then.
 */
export function launchServe(spec: ServeSpec, timeoutMs = 20_000) {
  const child = spawnCli(spec.label, spec.args, spec.env, spec.dir, spec.stem);
  const ready = (async (): Promise<Serve> => {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(20)) {
      // Only whole lines; a line still being written is read on the next poll.
      const lines = readFrom(child.stdoutPath, child.offsets.out).split("\n").slice(0, -1);
      const line = lines.find((text) => text.startsWith("{") && text.includes('"msg":"ready"'));
      if (line) {
        const { url, admin_url } = JSON.parse(line) as { url: string; admin_url?: string };
        const admin = new URL(admin_url ?? "none:");
        // The suite never asks anything beyond loopback.
        if (admin.protocol !== "http:" || admin.hostname !== "127.0.0.1") {
          signalGroup(child, "SIGKILL");
          throw new Error(`${spec.label} is ready but names no loopback listener (${admin_url})`);
        }
        const { origin, pathname: path } = new URL(url);
        const storePath = eventStorePath(spec.configDir);
        return { child, origin, adminOrigin: admin.origin, path, storePath };
      }
      if (!child.alive()) {
        const exit = await child.exited;
        throw new Error(`${spec.label} exited (${exit}) before it was ready\n${outputOf(child)}`);
      }
    }
    signalGroup(child, "SIGKILL");
    throw new Error(`${spec.label} was not ready in ${timeoutMs} ms\n${outputOf(child)}`);
  })();
  return { child, ready };
}

export const startServe = (spec: ServeSpec) => launchServe(spec).ready;

/** An HTTP answer on loopback, its body parsed when it is JSON; or the error that stood in the way. */
export interface Answer {
  status?: number;
  text: string;
  json: Record<string, unknown>;
  error?: string;
}

export async function ask(
  url: string,
  init: { method?: "GET" | "HEAD" | "POST"; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Answer> {
  try {
    const response = await request(url, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.body.text();
    let json: Record<string, unknown> = {};
    try {
      json = Object(JSON.parse(text));
    } catch {
      // Not JSON (the metrics page, a HEAD): the text must do.
    }
    return { status: response.statusCode, text, json };
  } catch (error) {
    return { text: "", json: {}, error: (error as Error).message };
  }
}

/** The detailed /health (queue, dead letters, Chat, store): the loopback listener's. */
export const health = (serve: Serve) => ask(`${serve.adminOrigin}/health`);
