import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execaSync } from "execa";
import { BIN, cleanEnv } from "../test/support/cli-process.js";
import { FakeChat } from "../test/support/fake-chat.js";
import type { BenchConfig, Progress } from "./config.js";
import { newSecret, startOurs, startTutorial } from "./targets.js";

/**
 * Start-up time: `node bin/vast-gchat.js --help` against a bare `node -e 0`, timed by hyperfine
 * (`apt-get install hyperfine`), then the adapters' own start-up until /health answers. `tool`
 * is "bench loop" in documents of runs older than hyperfine's use.
 */
export type StartupResult = {
  tool: "hyperfine" | "bench loop";
  helpMs: number[];
  bareNodeMs: number[];
};
/** tutorialMs: undefined when the tutorial's adapter cannot run here. */
export type ServeStartsResult = { oursMs: number[]; tutorialMs: number[] | undefined };

/** `--help` and `node -e 0`, with an empty config dir so `--help` cannot depend on this machine's. */
function measureHelp(config: BenchConfig, configDir: string, progress: Progress): StartupResult {
  const { startupRuns: runs, startupWarmupRuns: warmupRuns } = config;
  progress(`start-up: ${warmupRuns} warm-up + ${runs} timed runs each of --help and node -e 0`);
  mkdirSync(configDir, { recursive: true });
  if (execaSync("hyperfine", ["--version"], { reject: false, stdio: "ignore" }).exitCode !== 0) {
    throw new Error("start-up is timed by hyperfine: `apt-get install hyperfine`, or --only");
  }
  const exported = join(configDir, "..", "hyperfine.json");
  const node = JSON.stringify(process.execPath);
  const commands = [`${node} ${JSON.stringify(BIN)} --help`, `${node} -e 0`];
  const flags = ["--shell=none", "--style=none", `--warmup=${warmupRuns}`, `--runs=${runs}`];
  execaSync("hyperfine", [...flags, "--export-json", exported, ...commands], {
    env: cleanEnv({ VAST_GCHAT_CONFIG_DIR: configDir }),
    extendEnv: false,
    timeout: 300_000,
  });
  const { results } = JSON.parse(readFileSync(exported, "utf8")) as {
    results: { times: number[] }[];
  };
  const toMs = (i: number) => (results[i]?.times ?? []).map((s) => s * 1000);
  return { tool: "hyperfine", helpMs: toMs(0), bareNodeMs: toMs(1) };
}

/** The start-up part: `--help` against `node -e 0`, then the adapters' starts, taking turns,
 * each in a fresh directory and stopped at once. */
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
  try {
    for (let i = 0; i < config.serveStarts; i++) {
      for (const [start, times, name] of [
        [startOurs, serve.oursMs, "ours"],
        [startTutorial, serve.tutorialMs, "tutorial"],
      ] as const) {
        if (!times) continue;
        const dir = join(workdir, "serve-starts", `${name}-${i}`);
        mkdirSync(dir, { recursive: true });
        const target = await start({
          workdir: dir,
          chatUrl: chat.webhookUrl(),
          secret: newSecret(),
        });
        await target.proc.stop();
        times.push(target.startedInMs);
      }
    }
  } finally {
    await chat.close();
  }
  return { cli, serve };
}
