import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import chalk from "chalk";
import { type ChatPreview, startChatPreview } from "../../chat/preview-server.js";
import { type LoopbackRelay, startLoopbackRelay } from "../../tunnel/loopback-relay.js";
import { defaultNotificationTypes } from "../../vast/emulator/notification-catalogue.js";
import { startVastEmulator, type VastEmulator } from "../../vast/emulator.js";
import { KNOWN_EVENT_TYPES } from "../../vast/event-types.js";
import { sampleEvent } from "../../vast/sample-events.js";
import { sendSignedEvent } from "../../vast/send-event.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { Narrator } from "../demo/narrator.js";
import { CliError, ExitCode } from "../errors.js";
import { lineWriter } from "../line-writer.js";
import type { ServeEvents, ServeReady } from "../serve-events.js";
import { cleanup } from "./cleanup.js";
import { init } from "./init.js";
import { serve } from "./serve.js";

/**
 * `demo`: the whole chain on this machine with no accounts. The built-in Vast.ai emulator stands in
 * for Vast.ai, `init` runs against it unattended, the real `serve` (receiver, store, worker) runs
 * behind a loopback relay in place of a tunnel, and a local Chat preview stands in for the space,
 * with a web page that shows the cards. Everything is written under one temporary config
 * directory, removed at the end; the user's own configuration is never read or touched.
 */
export interface DemoOptions extends GlobalOptions {
  keep?: boolean;
}

export interface DemoContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Where SIGINT and SIGTERM arrive (the process, or a test's emitter). */
  signals: NodeJS.EventEmitter;
}

interface DemoWorld {
  dir: string;
  env: NodeJS.ProcessEnv;
  emulator: VastEmulator;
  preview: ChatPreview;
  relay: LoopbackRelay;
}

interface RunningServe {
  served: Promise<number>;
  settled: boolean;
  /** Serve's "ready"; rejects if serve ends, or takes too long, before it. */
  ready: Promise<ServeReady>;
  signals: EventEmitter;
}

export interface DemoSummary {
  ok: boolean;
  types: Array<{ type: string; status: number | undefined; delivered: boolean }>;
  duplicate: { status: number | undefined; duplicate: boolean; posted_once: boolean };
  forged: { status: number; error: unknown };
  sent: number;
  delivered: number;
  chat_messages: number;
}

/** The emulator's built-in account (src/vast/emulator.ts). */
const EMULATOR_API_KEY = "emulator-key";
const WEBHOOK_NAME = "vast-gchat demo";
/** The preview is not Chat: the demo need not wait a second between messages. */
const DEMO_RATE = 20;
const STEP_TIMEOUT_MS = 20_000;
/** What someone who found the webhook URL, but not its secret, would sign with. */
const IMPOSTOR_SECRET = "a-guess-by-someone-who-found-the-url";
const INTERRUPTED = Symbol("interrupted");

export async function demo(options: DemoOptions, context: DemoContext): Promise<number> {
  const print = (line: string) => {
    if (!options.json) context.stdout.write(`${line}\n`);
  };
  const started = Date.now();
  const interruption = listenForStop(context.signals);
  const world = await openWorld();
  const narrator = new Narrator(print);
  world.preview.events.on("message", (entry) => narrator.onChatMessage(entry));
  let running: RunningServe | undefined;
  let initialised = false;

  try {
    printIntro(world, print);
    const summary = await unlessInterrupted(async () => {
      print(chalk.bold("\n1. init, unattended, against the emulator"));
      await initialise(world, print, context.signals);
      initialised = true;
      print(chalk.bold("\n2. serve, behind a loopback stand-in for the tunnel"));
      running = startServe(world, narrator, context.stderr);
      const ready = await running.ready;
      const publicUrl = new URL(ready.publicUrl ?? ready.url);
      print(chalk.bold("\n3. one signed event of each type, sent by the emulator"));
      return runScript(world, narrator, publicUrl, print);
    }, interruption.stopped);
    if (summary === INTERRUPTED) return ExitCode.Interrupted;

    const seconds = (Date.now() - started) / 1000;
    if (options.json) {
      const document = {
        ...summary,
        seconds,
        preview_url: world.preview.pageUrl.href,
        config_dir: world.dir,
        kept: Boolean(options.keep),
      };
      context.stdout.write(`${JSON.stringify(document)}\n`);
    }
    printSummary(summary, seconds, print);
    if (options.keep) {
      printKeepHelp(world, print);
      await interruption.stopped;
      print("\nStopping the demo and cleaning up.");
    }
    return summary.ok ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    interruption.dispose();
    await stopServe(running);
    if (initialised) await forget(world, print);
    await closeWorld(world);
    print(chalk.dim(`Removed ${world.dir}; nothing is left running.`));
  }
}

async function openWorld(): Promise<DemoWorld> {
  const dir = mkdtempSync(join(tmpdir(), "vast-gchat-demo-"));
  let emulator: VastEmulator | undefined;
  let preview: ChatPreview | undefined;
  try {
    emulator = await startVastEmulator({ allowLoopbackHttp: true });
    preview = await startChatPreview();
    const relay = await startLoopbackRelay();
    const env: NodeJS.ProcessEnv = {
      VAST_GCHAT_CONFIG_DIR: dir,
      VAST_API_URL: emulator.url,
      // A file in the temporary directory, never the user's keychain.
      VAST_GCHAT_SECRET_STORE: "file",
      ...(process.env.DEBUG ? { DEBUG: process.env.DEBUG } : {}),
    };
    return { dir, env, emulator, preview, relay };
  } catch (error) {
    await emulator?.close();
    await preview?.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function closeWorld(world: DemoWorld): Promise<void> {
  await world.emulator.close();
  await world.preview.close();
  await world.relay.close();
  rmSync(world.dir, { recursive: true, force: true });
}

/** Ctrl+C (or SIGTERM) ends the demo at any point, still cleaning up after itself. */
function listenForStop(signals: NodeJS.EventEmitter): {
  stopped: Promise<void>;
  dispose(): void;
} {
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = () => resolve();
  });
  signals.on("SIGINT", stop);
  signals.on("SIGTERM", stop);
  return {
    stopped,
    dispose() {
      signals.off("SIGINT", stop);
      signals.off("SIGTERM", stop);
    },
  };
}

async function unlessInterrupted<T>(
  work: () => Promise<T>,
  stopped: Promise<void>,
): Promise<T | typeof INTERRUPTED> {
  const working = work();
  // Once interrupted, whatever the abandoned steps run into is no longer news.
  working.catch(() => {});
  return Promise.race([working, stopped.then((): typeof INTERRUPTED => INTERRUPTED)]);
}

function printIntro(world: DemoWorld, print: (line: string) => void): void {
  print(chalk.bold("vast-gchat demo: the whole chain on this machine, no accounts needed"));
  print(`Vast.ai     the built-in emulator at ${world.emulator.url}`);
  print(`Chat        a local preview: open ${chalk.underline(world.preview.pageUrl.href)}`);
  print(chalk.dim(`config      ${world.dir} (temporary; your own configuration is not touched)`));
}

/** The real `init`, answered by flags: every type subscribed, the preview as the Chat space. */
async function initialise(
  world: DemoWorld,
  print: (line: string) => void,
  signals: NodeJS.EventEmitter,
): Promise<void> {
  const out = Object.assign(
    lineWriter((line) => print(chalk.dim(`  init: ${line}`))),
    { isTTY: false },
  );
  const code = await init(
    {
      configDir: world.dir,
      apiKeyStdin: true,
      chatUrlStdin: true,
      events: defaultNotificationTypes()
        .map((type) => type.key)
        .join(","),
      name: WEBHOOK_NAME,
      // The relay's address stands for the tunnel's: the webhook points there from the start.
      publicUrl: world.relay.url,
      yes: true,
    },
    {
      env: world.env,
      // Both secrets on standard input, as the README shows users.
      stdin: Object.assign(
        Readable.from([`${EMULATOR_API_KEY}\n${world.preview.webhookUrl.href}\n`]),
        { isTTY: false },
      ),
      stdout: out,
      stderr: out,
      signals,
    },
  );
  if (code !== ExitCode.Ok) throw new CliError(`init against the emulator failed (exit ${code}).`);
}

/** The real `serve`, followed by the narrator through its events; the relay replaces the tunnel. */
function startServe(
  world: DemoWorld,
  narrator: Narrator,
  stderr: NodeJS.WritableStream,
): RunningServe {
  const events = new EventEmitter<ServeEvents>();
  narrator.follow(events);
  const ready = new Promise<ServeReady>((resolve) => events.once("ready", resolve));
  const signals = new EventEmitter();
  const served = serve(
    { configDir: world.dir, port: 0, rate: DEMO_RATE },
    {
      env: world.env,
      // Serve's log is for operators; the story comes from its events.
      stdout: nowhere(),
      stderr,
      signals,
      tunnelProvider: world.relay.provider,
      events,
    },
  );
  const running: RunningServe = {
    served,
    settled: false,
    ready: readyOrWhyNot(ready, served),
    signals,
  };
  const settle = () => {
    running.settled = true;
  };
  served.then(settle, settle);
  return running;
}

/** Serve's "ready", or an error if serve ends, or takes too long, before it. */
function readyOrWhyNot(ready: Promise<ServeReady>, served: Promise<number>): Promise<ServeReady> {
  let timer: NodeJS.Timeout | undefined;
  const tooLong = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CliError(`serve was not ready within ${STEP_TIMEOUT_MS / 1000} s.`));
    }, STEP_TIMEOUT_MS);
  });
  const ended = served.then((code): never => {
    throw new CliError(`serve stopped (exit ${code}) before it was ready.`);
  });
  return Promise.race([ready, ended, tooLong]).finally(() => clearTimeout(timer));
}

/** A stream that drops what is written to it. */
function nowhere(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

/** SIGTERM to serve once it is up, as a user's Ctrl+C would: it finishes what is in flight. */
async function stopServe(running: RunningServe | undefined): Promise<void> {
  if (!running || running.settled) return;
  // Before "ready", serve answers a signal by exiting the process: let it get there first.
  const ready = await running.ready.then(
    () => true,
    () => false,
  );
  if (!ready || running.settled) return;
  running.signals.emit("SIGTERM");
  await running.served.catch(() => {});
}

async function runScript(
  world: DemoWorld,
  narrator: Narrator,
  publicUrl: URL,
  print: (line: string) => void,
): Promise<DemoSummary> {
  const { tally } = narrator;
  const webhookId = openConfig({ configDir: world.dir }, world.env).webhookId();
  const deliveredIn = (eventId: string, what: string) =>
    narrator.until(() => tally.delivered.has(eventId), STEP_TIMEOUT_MS, what);

  // One at a time, each delivered before the next, so the story reads in order.
  const types: DemoSummary["types"] = [];
  for (const slug of KNOWN_EVENT_TYPES.keys()) {
    const report = await world.emulator.deliver(webhookId, { type: slug });
    const status = report.attempts.at(-1)?.status;
    if (status === 200) await deliveredIn(report.eventId, `the delivery of ${slug}`);
    types.push({ type: slug, status, delivered: tally.delivered.has(report.eventId) });
  }

  print(chalk.bold("\n4. a duplicate and a forgery"));
  // At-least-once: Vast.ai sends an event again when it missed the answer.
  const messagesBefore = tally.chatMessages;
  const repeat = await world.emulator.deliver(webhookId, { type: "instance_stopped", attempts: 2 });
  const second = repeat.attempts[1];
  const duplicate = (second?.answer as { duplicate?: unknown } | undefined)?.duplicate === true;
  await deliveredIn(repeat.eventId, "the delivery of the repeated event");
  const forged = await sendSignedEvent(publicUrl, IMPOSTOR_SECRET, sampleEvent("billing_failed"));
  await narrator.until(() => tally.rejected > 0, STEP_TIMEOUT_MS, "the forgery's refusal");

  const summary: DemoSummary = {
    ok: false,
    types,
    duplicate: {
      status: second?.status,
      duplicate,
      posted_once: tally.chatMessages === messagesBefore + 1,
    },
    forged: { status: forged.status, error: (forged.answer as { error?: unknown }).error },
    sent: types.length + 1,
    delivered: tally.delivered.size,
    chat_messages: tally.chatMessages,
  };
  summary.ok =
    types.every((t) => t.status === 200 && t.delivered) &&
    summary.duplicate.duplicate &&
    summary.duplicate.posted_once &&
    forged.status === 401;
  return summary;
}

function printSummary(summary: DemoSummary, seconds: number, print: (line: string) => void): void {
  const delivered = summary.types.filter((t) => t.delivered).length;
  const look = summary.ok ? chalk.bold.green : chalk.bold.red;
  print(
    look(
      `\n${summary.ok ? "Done" : "Something went wrong"}: ${delivered} of ${summary.types.length} types delivered to the Chat preview in ${seconds.toFixed(1)} s; ` +
        `the repeated event was ${summary.duplicate.posted_once ? "posted once" : "NOT posted exactly once"}; ` +
        `the forgery was ${summary.forged.status === 401 ? "refused (401)" : `answered ${summary.forged.status}`}.`,
    ),
  );
}

function printKeepHelp(world: DemoWorld, print: (line: string) => void): void {
  const dir = world.dir;
  print(chalk.bold("\nStill running (--keep). In another terminal, try:"));
  print(`  vast-gchat trigger instance_stopped --config-dir ${dir}`);
  print(`  vast-gchat events --config-dir ${dir}`);
  print(`  vast-gchat status --config-dir ${dir}`);
  print(`and watch ${world.preview.pageUrl.href}. Press Ctrl+C to stop; everything is removed.`);
}

/** The real `cleanup`: deletes the emulator's webhook and forgets the stored secrets. */
async function forget(world: DemoWorld, print: (line: string) => void): Promise<void> {
  print(chalk.bold("\n5. cleanup"));
  const out = Object.assign(
    lineWriter((line) => print(chalk.dim(`  cleanup: ${line}`))),
    { isTTY: false },
  );
  try {
    await cleanup(
      { configDir: world.dir, yes: true },
      { env: world.env, stdin: { isTTY: false }, stdout: out, stderr: out },
    );
  } catch (error) {
    print(`  cleanup: ${(error as Error).message}`);
  }
}
