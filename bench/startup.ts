import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execaSync } from "execa";
import { BIN, cleanEnv } from "../test/support/cli-process.js";
import { FakeChat } from "../test/support/fake-chat.js";
import type { BenchConfig, Progress } from "./config.js";
import { newSecret, type StartTarget, startOurs, startTutorial } from "./targets.js";

/**
 * Start-up time: `node bin/vast-gchat.js --help` against a bare `node -e 0`, timed by hyperfine
 * (`apt-get install hyperfine`).
 */
export interface StartupResult {
  /** What timed the runs ("bench loop": the bench's own, in documents of older runs). */
  tool: "hyperfine" | "bench loop";
  /** Wall time of each timed `--help` and `node -e 0`, ms. */
  helpMs: number[];
  bareNodeMs: number[];
}

/** `--help` and `node -e 0`, with an empty config dir so `--help` cannot depend on this machine's. */
function measureHelp(config: BenchConfig, configDir: string, progress: Progress): StartupResult {
  const { startupRuns: runs, startupWarmupRuns: warmupRuns } = config;
  progress(`start-up: ${warmupRuns} warm-up + ${runs} timed runs each of --help and node -e 0`);
  mkdirSync(configDir, { recursive: true });
  const options = {
    env: cleanEnv({ VAST_GCHAT_CONFIG_DIR: configDir }),
    extendEnv: false,
  } as const;
  const hyperfine = execaSync("hyperfine", ["--version"], { reject: false, stdio: "ignore" });
  if (hyperfine.exitCode !== 0) {
    throw new Error("start-up is timed by hyperfine: `apt-get install hyperfine`, or --only");
  }
  const exported = join(configDir, "..", "hyperfine.json");
  const node = JSON.stringify(process.execPath);
  const commands = [`${node} ${JSON.stringify(BIN)} --help`, `${node} -e 0`];
  const flags = ["--shell=none", "--style=none", `--warmup=${warmupRuns}`, `--runs=${runs}`];
  execaSync("hyperfine", [...flags, "--export-json", exported, ...commands], {
    ...options,
    timeout: 300_000,
  });
  const { results } = JSON.parse(readFileSync(exported, "utf8")) as {
    results: { times: number[] }[];
  };
  const toMs = (i: number) => (results[i]?.times ?? []).map((s) => s * 1000);
  return { tool: "hyperfine", helpMs: toMs(0), bareNodeMs: toMs(1) };
}

/** The adapters' own start-up, taking turns, each in a fresh directory and stopped at once. */
export interface ServeStartsResult {
  oursMs: number[];
  /** Undefined when the tutorial's adapter cannot run here. */
  tutorialMs: number[] | undefined;
}

/** The start-up part: `--help` against `node -e 0`, then the adapters' starts. */
export async function benchStartup(
  config: BenchConfig,
  workdir: string,
  withTutorial: boolean,
  progress: Progress,
): Promise<{ cli: StartupResult; serve: ServeStartsResult }> {
  const cli = measureHelp(config, join(workdir, "startup-config"), progress);
  progress(`start-up: ${config.serveStarts} starts of each adapter, timed until /health answers`);
  const chat = await FakeChat.start();
  const serve: ServeStartsResult = { oursMs: [], tutorialMs: withTutorial ? [] : undefined };
  const startOnce = async (start: StartTarget, dir: string): Promise<number> => {
    mkdirSync(dir, { recursive: true });
    const target = await start({ workdir: dir, chatUrl: chat.webhookUrl(), secret: newSecret() });
    await target.proc.stop();
    return target.startedInMs;
  };
  try {
    for (let i = 0; i < config.serveStarts; i++) {
      serve.oursMs.push(await startOnce(startOurs, join(workdir, "serve-starts", `ours-${i}`)));
      if (serve.tutorialMs) {
        const dir = join(workdir, "serve-starts", `tutorial-${i}`);
        serve.tutorialMs.push(await startOnce(startTutorial, dir));
      }
    }
  } finally {
    await chat.close();
  }
  return { cli, serve };
}
