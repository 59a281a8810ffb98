import { parseArgs } from "node:util";

/**
 * The bench's knobs, from `--flag value` or BENCH_* variables (a flag beats the environment, which
 * beats `--quick`, which beats the default): `rateSeconds` is `--rate-seconds` and
 * BENCH_RATE_SECONDS. Each is [default, under --quick, max, whole number]; `max` keeps a typo from
 * starting an hour-long run. What each does is in the method.
 */
type Knob = readonly [fallback: number, quick: number | undefined, max: number, int?: true];
const PARTS = {
  load: {
    repeats: [3, 1, 20, true],
    rate: [500, undefined, 20_000],
    rateSeconds: [10, 3, 120],
    concurrency: [64, undefined, 1024, true],
    saturationSeconds: [10, 3, 120],
    warmupSeconds: [2, 1, 30],
    killAfterSeconds: [3, 1, 60],
    openConnections: [256, undefined, 4096, true],
    maxInFlight: [5000, undefined, 100_000, true],
    requestTimeoutMs: [10_000, undefined, 60_000],
  },
  startup: {
    startupRuns: [20, 5, 500, true],
    startupWarmupRuns: [3, 1, 50, true],
    serveStarts: [5, 2, 50, true],
  },
  burst: {
    burstEvents: [500, 100, 5000, true],
    burstRepeats: [3, 1, 20, true],
    tutorialBurstRepeats: [1, undefined, 20, true],
    burstConcurrency: [32, undefined, 256, true],
    burstMaxAttempts: [20, undefined, 100, true],
    burstInitialDelayMs: [1000, undefined, 60_000],
    burstMaxDelayMs: [30_000, undefined, 600_000],
    burstChatRate: [1, undefined, 100],
    burstChatDelayMs: [300, undefined, 10_000],
    burstOursCapSeconds: [120, 60, 1800],
    burstTutorialCapSeconds: [300, 30, 1800],
  },
} as const satisfies Record<string, Record<string, Knob>>;
const NUMBERS: Record<string, Knob> = { ...PARTS.load, ...PARTS.startup, ...PARTS.burst };
type NumberKey = { [P in keyof typeof PARTS]: keyof (typeof PARTS)[P] }[keyof typeof PARTS];

/** Where the bench says what it is doing (stderr, so stdout is only the report). */
export type Progress = (message: string) => void;

const BENCH_PARTS = ["all", "load", "burst", "startup", "rss"] as const;
type BenchPart = (typeof BENCH_PARTS)[number];

export type BenchConfig = { [K in NumberKey]: number } & {
  only: BenchPart;
  quick: boolean;
  /** Whether the report replaces its section of BENCHMARKS.md. */
  write: boolean;
  skipPython: boolean;
  /** The fake Chat's answer delays the load part is run with, one session each. */
  chatDelaysMs: number[];
  /** The arguments and the BENCH_* variables set, so the report shows the command as typed. */
  argv: string[];
  envSettings: string[];
};

const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envOf = (flag: string) => `BENCH_${flag.replaceAll("-", "_").toUpperCase()}`;
/** `[--repeats 3] [--rate 500] …`, wrapped at 100 columns under an 11-column label. */
function usageOf(knobs: Record<string, Knob>, ...more: string[]): string {
  const lines = [""];
  for (const [key, [fallback]] of Object.entries(knobs)) {
    const item = `[--${flagOf(key)} ${fallback}] `;
    if ((lines.at(-1) ?? "").length + item.length > 90) lines.push("");
    lines[lines.length - 1] += item;
  }
  return [...more, ...lines].map((line) => line.trimEnd()).join(`\n${" ".repeat(11)}`);
}

export const USAGE = `usage: npm run bench -- [--quick] [--only ${BENCH_PARTS.join("|")}]
                        [--write | --no-write] [--skip-python]
  load:    ${usageOf(PARTS.load, "[--chat-delays-ms 5,300]")}
  startup: ${usageOf(PARTS.startup)}
  burst:   ${usageOf(PARTS.burst)}
The numbers shown are the defaults. Each flag also reads from BENCH_<NAME> (e.g. BENCH_REPEATS=5,
BENCH_ONLY=burst, BENCH_QUICK=1). A full run (no --only, no --quick) replaces the bench section of
BENCHMARKS.md; other runs only print their table unless given --write. --only rss runs the load
sessions without the fixed-rate run and the kill -9. Run \`npm run build\` first.`;

/**
 * The knobs from `argv` and `env`; `extra` adds knobs of one script (bench:routes' `--events`).
 * Throws on a flag or value it does not understand; `--help` prints `usage` and exits.
 */
export function readConfig<X extends string = never>(
  argv: string[],
  env: NodeJS.ProcessEnv,
  extra: Record<X, Knob> = {} as Record<X, Knob>,
  usage = USAGE,
): BenchConfig & Record<X, number> {
  const knobs: Record<string, Knob> = { ...NUMBERS, ...extra };
  const strings = ["chat-delays-ms", "only", ...Object.keys(knobs).map(flagOf)];
  const booleans = ["quick", "skip-python", "write", "help"];
  const { values: flags } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...strings.map((flag) => [flag, { type: "string" as const }]),
      ...booleans.map((flag) => [flag, { type: "boolean" as const }]),
    ]),
    allowNegative: true,
    strict: true,
  }) as { values: Record<string, string | boolean | undefined> };
  if (flags.help) {
    console.log(usage);
    process.exit(0);
  }
  const raw = (flag: string) => {
    const value = flags[flag] ?? env[envOf(flag)];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const quick = flags.quick === true || env.BENCH_QUICK === "1";
  const numbers = Object.fromEntries(
    Object.entries(knobs).map(([key, [fallback, whenQuick, max, int]]) => {
      const text = raw(flagOf(key));
      if (text === undefined) return [key, quick ? (whenQuick ?? fallback) : fallback];
      const value = Number(text);
      if (!Number.isFinite(value) || value <= 0 || value > max) {
        const names = `--${flagOf(key)} / ${envOf(flagOf(key))}`;
        throw new Error(`${names} must be a number in (0, ${max}], not "${text}"`);
      }
      return [key, int ? Math.max(1, Math.round(value)) : value];
    }),
  );
  const only = (raw("only") ?? "all") as BenchPart;
  if (!BENCH_PARTS.includes(only)) {
    throw new Error(`--only / BENCH_ONLY must be one of ${BENCH_PARTS.join(", ")}, not "${only}"`);
  }
  const delays = (raw("chat-delays-ms") ?? "5,300").split(",").map((part) => Number(part.trim()));
  if (delays.length > 5 || delays.some((v) => !Number.isFinite(v) || v < 0 || v > 10_000)) {
    throw new Error(
      `--chat-delays-ms / BENCH_CHAT_DELAYS_MS must be 1 to 5 delays in [0, 10000] ms separated by commas, not "${raw("chat-delays-ms")}"`,
    );
  }
  // Only a full, unhurried run may replace the figures in BENCHMARKS.md, unless asked to.
  const write = typeof flags.write === "boolean" ? flags.write : env.BENCH_WRITE;
  return {
    ...(numbers as BenchConfig & Record<X, number>),
    only,
    quick,
    write: typeof write === "boolean" ? write : write ? write === "1" : only === "all" && !quick,
    skipPython: flags["skip-python"] === true || env.BENCH_SKIP_PYTHON === "1",
    chatDelaysMs: delays,
    argv,
    envSettings: Object.keys(env)
      .filter((name) => name.startsWith("BENCH_"))
      .sort()
      .map((name) => `${name}=${env[name] ?? ""}`),
  };
}

/** Whether a part runs in this invocation. */
export const runs = (config: BenchConfig, part: Exclude<BenchPart, "all">) =>
  config.only === "all" || config.only === part;
