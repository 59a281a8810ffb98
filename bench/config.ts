import { parseArgs } from "node:util";

/**
 * The bench's knobs, from `--flag value` arguments or BENCH_* environment variables (a flag beats
 * the environment). The defaults keep the whole run near a minute and a half on a 2-core machine.
 */
export interface BenchConfig {
  /** Offered rate of the open-loop run, events per second. */
  rate: number;
  rateSeconds: number;
  /** Requests kept in flight by the closed-loop (saturation) runs. */
  concurrency: number;
  saturationSeconds: number;
  /** Unmeasured closed-loop load first, so the adapters' JIT and connections are warm. */
  warmupSeconds: number;
  /** How long into the saturated kill run the adapter gets SIGKILL. */
  killAfterSeconds: number;
  /** Latency of the fake Google Chat. */
  chatDelayMs: number;
  /** Connections the open-loop generator may open: enough for a slow adapter's backlog. */
  openConnections: number;
  /** The open-loop generator never has more than this in flight; beyond it a send is skipped. */
  maxInFlight: number;
  /** Every request gets an answer within this, or counts as "no answer" (Vast.ai waits 10 s). */
  requestTimeoutMs: number;
  skipPython: boolean;
  /** Where the markdown table is written, relative to the repository root. */
  out: string;
}

const NUMBERS = {
  rate: { flag: "rate", env: "BENCH_RATE", fallback: 500 },
  rateSeconds: { flag: "rate-seconds", env: "BENCH_RATE_SECONDS", fallback: 10 },
  concurrency: { flag: "concurrency", env: "BENCH_CONCURRENCY", fallback: 64 },
  saturationSeconds: { flag: "saturation-seconds", env: "BENCH_SATURATION_SECONDS", fallback: 10 },
  warmupSeconds: { flag: "warmup-seconds", env: "BENCH_WARMUP_SECONDS", fallback: 2 },
  killAfterSeconds: { flag: "kill-after-seconds", env: "BENCH_KILL_AFTER_SECONDS", fallback: 3 },
  chatDelayMs: { flag: "chat-delay-ms", env: "BENCH_CHAT_DELAY_MS", fallback: 100 },
  openConnections: { flag: "open-connections", env: "BENCH_OPEN_CONNECTIONS", fallback: 256 },
  maxInFlight: { flag: "max-in-flight", env: "BENCH_MAX_IN_FLIGHT", fallback: 5000 },
  requestTimeoutMs: {
    flag: "request-timeout-ms",
    env: "BENCH_REQUEST_TIMEOUT_MS",
    fallback: 10_000,
  },
} as const;

/** Upper bounds so a typo cannot start an hour-long or machine-wrecking run. */
const LIMITS: Record<keyof typeof NUMBERS, number> = {
  rate: 20_000,
  rateSeconds: 120,
  concurrency: 1024,
  saturationSeconds: 120,
  warmupSeconds: 30,
  killAfterSeconds: 60,
  chatDelayMs: 10_000,
  openConnections: 4096,
  maxInFlight: 100_000,
  requestTimeoutMs: 60_000,
};

export const USAGE = `usage: npm run bench -- [--rate N] [--rate-seconds N] [--concurrency N]
  [--saturation-seconds N] [--warmup-seconds N] [--kill-after-seconds N] [--chat-delay-ms N]
  [--open-connections N] [--max-in-flight N] [--request-timeout-ms N] [--skip-python] [--out FILE]
Each flag also reads from BENCH_<NAME> (e.g. BENCH_RATE=1000). Run \`npm run build\` first.`;

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig {
  const options = Object.fromEntries(
    Object.values(NUMBERS).map(({ flag }) => [flag, { type: "string" as const }]),
  );
  const { values } = parseArgs({
    args: argv,
    options: {
      ...options,
      "skip-python": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const flags = values as Record<string, string | boolean | undefined>;

  const number = (key: keyof typeof NUMBERS): number => {
    const { flag, env: variable, fallback } = NUMBERS[key];
    const raw = flags[flag] ?? env[variable];
    if (raw === undefined || raw === "" || typeof raw === "boolean") return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0 || value > LIMITS[key]) {
      throw new Error(
        `--${flag} / ${variable} must be a number in (0, ${LIMITS[key]}], not "${raw}"`,
      );
    }
    return value;
  };

  return {
    rate: number("rate"),
    rateSeconds: number("rateSeconds"),
    concurrency: Math.round(number("concurrency")),
    saturationSeconds: number("saturationSeconds"),
    warmupSeconds: number("warmupSeconds"),
    killAfterSeconds: number("killAfterSeconds"),
    chatDelayMs: number("chatDelayMs"),
    openConnections: Math.round(number("openConnections")),
    maxInFlight: Math.round(number("maxInFlight")),
    requestTimeoutMs: number("requestTimeoutMs"),
    skipPython: Boolean(flags["skip-python"]) || env.BENCH_SKIP_PYTHON === "1",
    out:
      (typeof flags.out === "string" ? flags.out : undefined) ??
      env.BENCH_OUT ??
      "bench/results.md",
  };
}
