import { parseArgs } from "node:util";

/**
 * The bench's knobs, from `--flag value` or BENCH_* variables (a flag beats the environment, which
 * beats `--quick`, which beats the defaults). A number knob is one row below: `rateSeconds` is
 * `--rate-seconds` and BENCH_RATE_SECONDS; `max` keeps a typo from starting an hour-long run,
 * `quick` is its value under `--quick`, `int` rounds to a count. What each does is in the method.
 */
interface Knob {
  fallback: number;
  quick?: number;
  max: number;
  int?: boolean;
}

const LOAD = {
  repeats: { fallback: 3, quick: 1, max: 20, int: true },
  rate: { fallback: 500, max: 20_000 },
  rateSeconds: { fallback: 10, quick: 3, max: 120 },
  concurrency: { fallback: 64, max: 1024, int: true },
  saturationSeconds: { fallback: 10, quick: 3, max: 120 },
  warmupSeconds: { fallback: 2, quick: 1, max: 30 },
  killAfterSeconds: { fallback: 3, quick: 1, max: 60 },
  openConnections: { fallback: 256, max: 4096, int: true },
  maxInFlight: { fallback: 5000, max: 100_000, int: true },
  requestTimeoutMs: { fallback: 10_000, max: 60_000 },
};

const STARTUP = {
  startupRuns: { fallback: 20, quick: 5, max: 500, int: true },
  startupWarmupRuns: { fallback: 3, quick: 1, max: 50, int: true },
  serveStarts: { fallback: 5, quick: 2, max: 50, int: true },
};

const BURST = {
  burstEvents: { fallback: 500, quick: 100, max: 5000, int: true },
  burstRepeats: { fallback: 3, quick: 1, max: 20, int: true },
  tutorialBurstRepeats: { fallback: 1, max: 20, int: true },
  burstConcurrency: { fallback: 32, max: 256, int: true },
  burstMaxAttempts: { fallback: 20, max: 100, int: true },
  burstInitialDelayMs: { fallback: 1000, max: 60_000 },
  burstMaxDelayMs: { fallback: 30_000, max: 600_000 },
  burstChatRate: { fallback: 1, max: 100 },
  burstChatDelayMs: { fallback: 300, max: 10_000 },
  burstOursCapSeconds: { fallback: 120, quick: 60, max: 1800 },
  burstTutorialCapSeconds: { fallback: 300, quick: 30, max: 1800 },
};

const NUMBERS = { ...LOAD, ...STARTUP, ...BURST } satisfies Record<string, Knob>;
type NumberKey = keyof typeof NUMBERS;

/** Where the bench says what it is doing (stderr, so stdout is only the report). */
export type Progress = (message: string) => void;

const BENCH_PARTS = ["all", "load", "burst", "startup", "rss"] as const;
type BenchPart = (typeof BENCH_PARTS)[number];

export type BenchConfig = { [K in NumberKey]: number } & {
  /** Which parts run (`--only`). */
  only: BenchPart;
  quick: boolean;
  /** Whether the report replaces the bench section of BENCHMARKS.md. */
  write: boolean;
  skipPython: boolean;
  /** The fake Chat's answer delays the load part is run with, one variant each. */
  chatDelaysMs: number[];
  /** The arguments the bench was given, and the BENCH_* variables set, for the report. */
  argv: string[];
  envSettings: string[];
};

const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envOf = (flag: string) => `BENCH_${flag.replaceAll("-", "_").toUpperCase()}`;

/** `  load:    [--chat-delays-ms 5,300] [--repeats 3] …`, wrapped at 100 columns. */
function usageOf(part: string, knobs: Record<string, Knob>, ...more: string[]): string {
  const head = `  ${`${part}:`.padEnd(9)}`;
  const lines = [head];
  for (const item of [
    ...more,
    ...Object.entries(knobs).map(([k, v]) => `--${flagOf(k)} ${v.fallback}`),
  ]) {
    if ((lines.at(-1) ?? "").length + item.length + 3 > 100) lines.push(" ".repeat(head.length));
    lines[lines.length - 1] += `[${item}] `;
  }
  return lines.map((line) => line.trimEnd()).join("\n");
}

export const USAGE = `usage: npm run bench -- [--quick] [--only ${BENCH_PARTS.join("|")}]
                        [--write | --no-write] [--skip-python]
${usageOf("load", LOAD, "--chat-delays-ms 5,300")}
${usageOf("startup", STARTUP)}
${usageOf("burst", BURST)}
The numbers shown are the defaults. Each flag also reads from BENCH_<NAME> (e.g. BENCH_REPEATS=5,
BENCH_ONLY=burst, BENCH_QUICK=1). A full run (no --only, no --quick) replaces the bench section of
BENCHMARKS.md; other runs only print their table unless given --write. --only rss runs the load
sessions without the fixed-rate run and the kill -9. Run \`npm run build\` first.`;

function parseChatDelays(raw: string): number[] {
  const values = raw.split(",").map((part) => Number(part.trim()));
  if (values.length > 5 || values.some((v) => !Number.isFinite(v) || v < 0 || v > 10_000)) {
    throw new Error(
      `--chat-delays-ms / BENCH_CHAT_DELAYS_MS must be 1 to 5 delays in [0, 10000] ms separated by commas, not "${raw}"`,
    );
  }
  return values;
}

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig {
  const strings = ["chat-delays-ms", "only", ...Object.keys(NUMBERS).map(flagOf)];
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...strings.map((flag) => [flag, { type: "string" as const }]),
      ...["quick", "skip-python", "write", "help"].map((flag) => [
        flag,
        { type: "boolean" as const },
      ]),
    ]),
    allowNegative: true,
    strict: true,
  });
  const flags = values as Record<string, string | boolean | undefined>;
  if (flags.help) {
    console.log(USAGE);
    process.exit(0);
  }
  /** A flag's value, else its variable's; undefined when neither is set (or is empty). */
  const raw = (flag: string): string | undefined => {
    const value = flags[flag] ?? env[envOf(flag)];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const yes = (flag: string) => flags[flag] === true || env[envOf(flag)] === "1";
  const quick = yes("quick");

  const number = (key: NumberKey): number => {
    const knob: Knob = NUMBERS[key];
    const text = raw(flagOf(key));
    if (text === undefined) return quick && knob.quick !== undefined ? knob.quick : knob.fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0 || value > knob.max) {
      throw new Error(
        `--${flagOf(key)} / ${envOf(flagOf(key))} must be a number in (0, ${knob.max}], not "${text}"`,
      );
    }
    return knob.int ? Math.max(1, Math.round(value)) : value;
  };

  const only = raw("only") ?? "all";
  if (!(BENCH_PARTS as readonly string[]).includes(only)) {
    throw new Error(`--only / BENCH_ONLY must be one of ${BENCH_PARTS.join(", ")}, not "${only}"`);
  }
  const delays = raw("chat-delays-ms");
  // Only a full, unhurried run may replace the figures in BENCHMARKS.md, unless asked to.
  const write =
    typeof flags.write === "boolean"
      ? flags.write
      : env.BENCH_WRITE
        ? env.BENCH_WRITE === "1"
        : only === "all" && !quick;
  const numbers = Object.fromEntries(
    (Object.keys(NUMBERS) as NumberKey[]).map((key) => [key, number(key)]),
  ) as Record<NumberKey, number>;
  return {
    ...numbers,
    only: only as BenchPart,
    quick,
    write,
    skipPython: yes("skip-python"),
    chatDelaysMs: delays === undefined ? [5, 300] : parseChatDelays(delays),
    argv,
    envSettings: Object.keys(env)
      .filter((name) => name.startsWith("BENCH_"))
      .sort()
      .map((name) => `${name}=${env[name] ?? ""}`),
  };
}

/** Whether a part runs in this invocation. */
export function runs(config: BenchConfig, part: Exclude<BenchPart, "all">): boolean {
  return config.only === "all" || config.only === part;
}
