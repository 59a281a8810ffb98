import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { request } from "undici";
import { SERVE_ENVIRONMENT, SERVE_NODE_OPTIONS } from "../../src/cli/commands/service.js";
import { eventStorePath } from "../../src/config/paths.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { BIN, cleanEnv, spawnProcess } from "../../test/support/cli-process.js";
import { EVENT_TYPES } from "../burst.js";
import { REPO_ROOT } from "../targets.js";
import type { Budget } from "./run.js";

/** One line of the results table. `info` rows explain a figure; they never fail the run. */
export type CheckRow = ReturnType<typeof row>;
export const row = (
  check: string,
  figure: string,
  target: string,
  pass: boolean | "SKIP" | "info",
) => ({ check, figure, target, verdict: pass === true ? "PASS" : pass || "FAIL" }) as const;
/** Notes are worth reading under the table (reproductions, examples); a non-string is left out. */
export type PartResult = { rows: CheckRow[]; notes: unknown[] };

/** What every part gets; `later` runs a clean-up after the part, once its children are dead. */
export type PartContext = { dir: string; budget: Budget; secrets: SoakSecrets; seed: number } & {
  progress: (message: string) => void;
  later: (cleanup: () => unknown) => void;
};

export const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
export { countInto } from "../load.js";
export const formatCounts = (counts: ReadonlyMap<string | number, number>) =>
  [...counts]
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([key, count]) => `${key}×${count}`)
    .join(", ") || "none";

/**
 * The secrets the suite hands its children: fresh random values with a recognisable prefix, found
 * by a substring search. serve has no use for the API key nor NGROK_AUTHTOKEN: they are there to
 * prove they are never printed nor handed to a tunnel child. The local Vast.ai API refuses the
 * refused key: error paths must not print it either.
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
export const makeSoakSecrets = () =>
  Object.fromEntries(
    Object.entries(SECRETS).map(([key, [prefix]]) => [
      key,
      prefix + randomBytes(16).toString("hex"),
    ]),
  ) as SoakSecrets;

/** What to look for (and its name for the report): each value, and each half of its random part. */
export type Needle = { name: string; value: string };
export const needlesOf = (secrets: SoakSecrets): Needle[] =>
  (Object.keys(SECRETS) as Array<keyof SoakSecrets>).flatMap((key) => {
    const [name, value] = [SECRETS[key][1], secrets[key]];
    return [
      { name, value },
      { name: `${name} (first half)`, value: value.slice(-32, -16) },
      { name: `${name} (second half)`, value: value.slice(-16) },
    ];
  });

/** The suite prints children's log tails and errors: never with a secret in them. */
export function redactor(secrets: SoakSecrets): (text: string) => string {
  const values = needlesOf(secrets).map((needle) => needle.value);
  return (text) => values.reduce((out, value) => out.replaceAll(value, "[secret]"), text);
}

/**
 * Events the suite can find again in Chat: each subject carries a token (`SOAKC000042`, a letter
 * per part) that Chat's escaping leaves whole. A mix of real types, as a real burst would be.
 */
export type SoakEvent = { token: string; eventId: string; body: Buffer };
export const TOKEN_PATTERN = /\bSOAK[A-Z]\d{6}\b/g;

export function makeSoakEvents(series: "C" | "D" | "S", count: number, first = 0): SoakEvent[] {
  return Array.from({ length: count }, (_, offset) => {
    const index = first + offset;
    const token = `SOAK${series}${String(index).padStart(6, "0")}`;
    const event = sampleEvent(EVENT_TYPES[index % EVENT_TYPES.length] ?? "low_credit", {
      subject: `${token} soak event`,
      message: `Soak event ${index}.`,
    });
    return { token, eventId: event.event_id, body: Buffer.from(JSON.stringify(event)) };
  });
}

/**
 * `node bin/vast-gchat.js ARGS` (test/support's spawnProcess) in its own process group (a kill
 * reaches what it started), stdout and stderr in a log file of its own, `<log>.N.log` (what the
 * secrets scan reads); `exited` says how it ended: `exit N` or the signal.
 */
export type Child = ReturnType<typeof spawnCli>;
export const children = { started: 0, running: new Set<Child>(), logFiles: new Set<string>() };

export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv, log: string) {
  const logFile: string = `${log}.${++children.started}.log`;
  const options = { logFile, cwd: REPO_ROOT, detached: true };
  const proc = spawnProcess(process.execPath, [BIN, ...args], env, options);
  // An undefined pid would make the group kills below hit the suite's own group.
  if (proc.child.pid === undefined) throw new Error(`vast-gchat ${args[0]} did not start`);
  const child = {
    pid: proc.child.pid,
    proc,
    log: logFile,
    alive: () => proc.child.exitCode === null && proc.child.signalCode === null,
    exited: proc.exited.then(({ code, signal }) => {
      children.running.delete(child);
      return signal ?? `exit ${code}`;
    }),
  };
  children.running.add(child);
  children.logFiles.add(logFile);
  return child;
}

/** Signals the child's whole process group; a group already gone (ESRCH) is fine. */
export function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {}
}

/** Waits for its end (its port and files are free then); SIGKILL to its group after `ms`. */
export function exitWithin(child: Child, ms: number): Promise<string> {
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), ms);
  return child.exited.finally(() => clearTimeout(timer));
}

/** SIGTERM (serve finishes the post in flight and closes the store) or kill -9, and the end. */
export function stop(child: Child, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<string> {
  signalGroup(child, signal);
  return exitWithin(child, 10_000);
}

/**
 * `vast-gchat serve` as the suite runs it: a fixed loopback port (a restart after kill -9 is found
 * where the sender expects it), no tunnel unless told, secrets from the environment only.
 * `launchServe(spec).ready` settles at its `ready` line, or rejects when it exits first or after
 * timeoutMs; `origin` is the public listener, `adminOrigin` the loopback one.
 */
async function serveSpec(
  { budget, secrets, dir }: PartContext,
  label: string,
  chatUrl: string,
  more: { stem?: string; configDir?: string; args?: string[]; env?: Record<string, string> } = {},
) {
  const configDir = more.configDir ?? join(dir, "config");
  const port = await freeLoopbackPort();
  const args = [
    ...["serve", "--port", String(port), ...(more.args ?? ["--tunnel", "none"])],
    ...["--rate", String(budget.serveRate), "--max-age", String(budget.serveMaxAgeHours)],
  ];
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: secrets.webhookSecret,
    GOOGLE_CHAT_URL: chatUrl,
    VAST_API_KEY: secrets.apiKey,
    NGROK_AUTHTOKEN: secrets.ngrokAuthtoken,
    VAST_GCHAT_CONFIG_DIR: configDir,
    // As `vast-gchat service` runs it, unless SOAK_CHILD_NODE_OPTIONS says otherwise.
    ...SERVE_ENVIRONMENT,
    NODE_OPTIONS: process.env.SOAK_CHILD_NODE_OPTIONS ?? SERVE_NODE_OPTIONS.join(" "),
    ...more.env,
  });
  const log = join(dir, more.stem ?? "serve");
  return { label: `serve (${label})`, log, configDir, port, args, env };
}
export type Serve = Awaited<ReturnType<typeof launchServe>["ready"]>;

export function launchServe(spec: Awaited<ReturnType<typeof serveSpec>>, timeoutMs = 20_000) {
  const child = spawnCli(spec.args, spec.env, spec.log);
  const fail = (why: string) => {
    signalGroup(child, "SIGKILL");
    return new Error(`${spec.label} ${why}; its output is in ${child.log}`);
  };
  const ready = (async () => {
    const line = await child.proc
      .waitForLog((r) => r.msg === "ready", timeoutMs)
      .catch(async () => {
        throw fail(
          child.alive()
            ? `was not ready in ${timeoutMs} ms`
            : `exited (${await child.exited}) before it was ready`,
        );
      });
    const { url, admin_url } = line as { url: string; admin_url?: string };
    const admin = new URL(admin_url ?? "none:");
    // The suite never asks anything beyond loopback.
    if (admin.protocol !== "http:" || admin.hostname !== "127.0.0.1") {
      throw fail(`is ready but names no loopback listener (${admin_url})`);
    }
    const { origin, pathname: path } = new URL(url);
    const storePath = eventStorePath(spec.configDir);
    return { child, spec, origin, adminOrigin: admin.origin, path, storePath };
  })();
  return { child, ready };
}
export const startServe = async (...args: Parameters<typeof serveSpec>) =>
  launchServe(await serveSpec(...args)).ready;

/** An HTTP answer on loopback, its body parsed when it is JSON; or the error that stood in the way. */
export type Answer = {
  status?: number;
  text: string;
  json: Record<string, unknown>;
  error?: string;
};
type AskInit = {
  method?: "GET" | "HEAD" | "POST";
  headers?: Record<string, string>;
  body?: Buffer;
};

export async function ask(url: string, init: AskInit = {}): Promise<Answer> {
  try {
    const response = await request(url, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.body.text();
    let json = {};
    try {
      json = Object(JSON.parse(text));
    } catch {} // Not JSON (the metrics page, a HEAD): the text must do.
    return { status: response.statusCode, text, json };
  } catch (error) {
    return { text: "", json: {}, error: (error as Error).message };
  }
}

/** The detailed /health (queue, dead letters, Chat, store): the loopback listener's. */
export const health = (serve: Serve) => ask(`${serve.adminOrigin}/health`);
