import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execaSync } from "execa";
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
 * a bare `node -e 0` (what no Node CLI can beat), timed by hyperfine (`apt-get install hyperfine`)
 * without a shell, warm-up runs first so both read from a warm page cache. Without hyperfine the
 * bench falls back to its own loop: the same warm-up, then timed runs taking turns, the order
 * swapped each round.
 */
export interface StartupResult {
  /** What timed the runs. */
  tool: "hyperfine" | "bench loop";
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

export const HYPERFINE_MISSING =
  "hyperfine not found (install it with `apt-get install hyperfine`); timing start-up with the bench's own loop";

/** BENCH_HYPERFINE=0 forces the fallback loop. */
export function hasHyperfine(): boolean {
  if (process.env.BENCH_HYPERFINE === "0") return false;
  return spawnSync("hyperfine", ["--version"], { stdio: "ignore" }).status === 0;
}

function withHyperfine(options: StartupOptions, env: NodeJS.ProcessEnv): StartupResult {
  const exported = join(options.configDir, "..", "hyperfine.json");
  const node = JSON.stringify(process.execPath);
  execaSync(
    "hyperfine",
    [
      "--shell=none",
      "--style=none",
      `--warmup=${options.warmupRuns}`,
      `--runs=${options.runs}`,
    ].concat(["--export-json", exported, `${node} ${JSON.stringify(BIN)} --help`, `${node} -e 0`]),
    { env, extendEnv: false, timeout: 300_000 },
  );
  const { results } = JSON.parse(readFileSync(exported, "utf8")) as {
    results: { times: number[] }[];
  };
  const toMs = (i: number) => (results[i]?.times ?? []).map((s) => s * 1000);
  return { tool: "hyperfine", helpMs: toMs(0), bareNodeMs: toMs(1) };
}

/** Runs a command to completion and returns its wall time in ms; throws if it fails. */
function timeRun(args: string[], env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  execaSync(process.execPath, args, { env, extendEnv: false, stdio: "ignore", timeout: 30_000 });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function measureStartup(options: StartupOptions): StartupResult {
  mkdirSync(options.configDir, { recursive: true });
  const env = cleanEnv({ VAST_GCHAT_CONFIG_DIR: options.configDir });
  if (hasHyperfine()) return withHyperfine(options, env);
  const help = () => timeRun([BIN, "--help"], env);
  const bareNode = () => timeRun(["-e", "0"], env);
  for (let i = 0; i < options.warmupRuns; i++) {
    help();
    bareNode();
  }
  const result: StartupResult = { tool: "bench loop", helpMs: [], bareNodeMs: [] };
  for (let i = 0; i < options.runs; i++) {
    const pair = i % 2 === 0 ? [help, bareNode] : [bareNode, help];
    for (const run of pair) (run === help ? result.helpMs : result.bareNodeMs).push(run());
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
