import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BIN, cleanEnv } from "../test/support/cli-process.js";
import { FakeChat } from "../test/support/fake-chat.js";
import {
  newSecret,
  type OursOptions,
  startOurs,
  startTutorial,
  stopTarget,
  type Target,
} from "./targets.js";

/**
 * Start-up time: `node bin/vast-gchat.js --help` (what a user waits for on every command) against
 * a bare `node -e 0` (what no Node CLI can beat). Both are spawned the same way, untimed warm-up
 * runs first so both read from a warm page cache, then timed runs taking turns, the order
 * swapped each round, so a busy moment on the shared machine hits both alike.
 */
export interface StartupResult {
  /** Wall time of each timed `--help`, ms. */
  helpMs: number[];
  /** Wall time of each timed `node -e 0`, ms. */
  bareNodeMs: number[];
}

export interface StartupOptions {
  runs: number;
  warmupRuns: number;
  /** An empty config directory, so `--help` cannot depend on what this machine has stored. */
  configDir: string;
}

/** Runs a command to completion and returns its wall time in ms; throws if it fails. */
function timeRun(args: string[], env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { env, stdio: "ignore", timeout: 30_000 });
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`node ${args.join(" ")} exited with ${result.status ?? result.signal}`);
  }
  return elapsedMs;
}

export function measureStartup(options: StartupOptions): StartupResult {
  const env = cleanEnv({ VAST_GCHAT_CONFIG_DIR: options.configDir });
  const help = () => timeRun([BIN, "--help"], env);
  const bareNode = () => timeRun(["-e", "0"], env);
  for (let i = 0; i < options.warmupRuns; i++) {
    help();
    bareNode();
  }
  const result: StartupResult = { helpMs: [], bareNodeMs: [] };
  for (let i = 0; i < options.runs; i++) {
    if (i % 2 === 0) {
      result.helpMs.push(help());
      result.bareNodeMs.push(bareNode());
    } else {
      result.bareNodeMs.push(bareNode());
      result.helpMs.push(help());
    }
  }
  return result;
}

/**
 * The adapters' own start-up: from the spawn until /health answers, for `vast-gchat serve` and
 * the tutorial's script, taking turns. Each start gets a fresh directory and is stopped at once.
 */
export interface ServeStartsResult {
  oursMs: number[];
  /** Undefined when the tutorial's adapter cannot run here. */
  tutorialMs: number[] | undefined;
}

export async function measureServeStarts(options: {
  starts: number;
  workdir: string;
  withTutorial: boolean;
}): Promise<ServeStartsResult> {
  const chat = await FakeChat.start();
  const result: ServeStartsResult = {
    oursMs: [],
    tutorialMs: options.withTutorial ? [] : undefined,
  };
  const startOnce = async (
    start: (o: OursOptions) => Promise<Target>,
    dir: string,
  ): Promise<number> => {
    mkdirSync(dir, { recursive: true });
    const target = await start({ workdir: dir, chatUrl: chat.webhookUrl(), secret: newSecret() });
    await stopTarget(target);
    return target.startedInMs;
  };
  try {
    for (let i = 0; i < options.starts; i++) {
      result.oursMs.push(await startOnce(startOurs, join(options.workdir, `ours-${i}`)));
      if (result.tutorialMs) {
        result.tutorialMs.push(
          await startOnce(startTutorial, join(options.workdir, `tutorial-${i}`)),
        );
      }
    }
  } finally {
    await chat.close();
  }
  return result;
}
