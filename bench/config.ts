import { parseArgs } from "node:util";

/**
 * The bench's knobs, from `--flag value` arguments or BENCH_* environment variables (a flag beats
 * the environment). With the defaults the load part takes about a minute and a half on a 2-core
 * machine and the burst part up to about six minutes (the tutorial's adapter gets a 5-minute cap).
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
  /** Which parts run: everything, the load runs only, or the burst only (`--only`). */
  only: BenchPart;
  /** Burst: events sent at once into one space (subjects `burst 0001`…). */
  burstEvents: number;
  /** Burst: requests the Vast.ai-like sender keeps in flight at most. */
  burstConcurrency: number;
  /** Burst: attempts per event, the first included, before the sender gives up on it. */
  burstMaxAttempts: number;
  /** Burst: the sender's first retry delay; doubles per attempt up to burstMaxDelayMs. */
  burstInitialDelayMs: number;
  burstMaxDelayMs: number;
  /** Burst: messages a second the fake Chat takes per space (429 beyond). */
  burstChatRate: number;
  /** Burst: how long ours gets before the run reports what is still not visible. */
  burstOursCapSeconds: number;
  /** Burst: the same for the tutorial's adapter (it needs about one second per event). */
  burstTutorialCapSeconds: number;
  /**
   * Where the markdown report is written, relative to the repository root; undefined: only
   * printed (a partial `--only` run does not overwrite the full results unless asked to).
   */
  out: string | undefined;
}

export const BENCH_PARTS = ["all", "load", "burst"] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

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
  burstEvents: { flag: "burst-events", env: "BENCH_BURST_EVENTS", fallback: 500 },
  burstConcurrency: { flag: "burst-concurrency", env: "BENCH_BURST_CONCURRENCY", fallback: 32 },
  burstMaxAttempts: { flag: "burst-max-attempts", env: "BENCH_BURST_MAX_ATTEMPTS", fallback: 20 },
  burstInitialDelayMs: {
    flag: "burst-initial-delay-ms",
    env: "BENCH_BURST_INITIAL_DELAY_MS",
    fallback: 1000,
  },
  burstMaxDelayMs: {
    flag: "burst-max-delay-ms",
    env: "BENCH_BURST_MAX_DELAY_MS",
    fallback: 30_000,
  },
  burstChatRate: { flag: "burst-chat-rate", env: "BENCH_BURST_CHAT_RATE", fallback: 1 },
  burstOursCapSeconds: {
    flag: "burst-ours-cap-seconds",
    env: "BENCH_BURST_OURS_CAP_SECONDS",
    fallback: 120,
  },
  burstTutorialCapSeconds: {
    flag: "burst-tutorial-cap-seconds",
    env: "BENCH_BURST_TUTORIAL_CAP_SECONDS",
    fallback: 300,
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
  burstEvents: 5000,
  burstConcurrency: 256,
  burstMaxAttempts: 100,
  burstInitialDelayMs: 60_000,
  burstMaxDelayMs: 600_000,
  burstChatRate: 100,
  burstOursCapSeconds: 1800,
  burstTutorialCapSeconds: 1800,
};

export const USAGE = `usage: npm run bench -- [--only all|load|burst] [--skip-python] [--out FILE]
  load:  [--rate N] [--rate-seconds N] [--concurrency N] [--saturation-seconds N]
         [--warmup-seconds N] [--kill-after-seconds N] [--chat-delay-ms N]
         [--open-connections N] [--max-in-flight N] [--request-timeout-ms N]
  burst: [--burst-events N] [--burst-concurrency N] [--burst-max-attempts N]
         [--burst-initial-delay-ms N] [--burst-max-delay-ms N] [--burst-chat-rate N]
         [--burst-ours-cap-seconds N] [--burst-tutorial-cap-seconds N]
Each flag also reads from BENCH_<NAME> (e.g. BENCH_RATE=1000, BENCH_ONLY=burst). A full run writes
bench/results.md; an --only run prints its report and writes it only with --out / BENCH_OUT.
Run \`npm run build\` first.`;

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig {
  const options = Object.fromEntries(
    Object.values(NUMBERS).map(({ flag }) => [flag, { type: "string" as const }]),
  );
  const { values } = parseArgs({
    args: argv,
    options: {
      ...options,
      "skip-python": { type: "boolean" },
      only: { type: "string" },
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

  const onlyRaw = (typeof flags.only === "string" ? flags.only : undefined) ?? env.BENCH_ONLY;
  const only = onlyRaw === undefined || onlyRaw === "" ? "all" : onlyRaw;
  if (!(BENCH_PARTS as readonly string[]).includes(only)) {
    throw new Error(`--only / BENCH_ONLY must be one of ${BENCH_PARTS.join(", ")}, not "${only}"`);
  }
  const explicitOut = (typeof flags.out === "string" ? flags.out : undefined) ?? env.BENCH_OUT;

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
    only: only as BenchPart,
    burstEvents: Math.round(number("burstEvents")),
    burstConcurrency: Math.round(number("burstConcurrency")),
    burstMaxAttempts: Math.round(number("burstMaxAttempts")),
    burstInitialDelayMs: number("burstInitialDelayMs"),
    burstMaxDelayMs: number("burstMaxDelayMs"),
    burstChatRate: number("burstChatRate"),
    burstOursCapSeconds: number("burstOursCapSeconds"),
    burstTutorialCapSeconds: number("burstTutorialCapSeconds"),
    out: explicitOut || (only === "all" ? "bench/results.md" : undefined),
  };
}
