import { parseArgs } from "node:util";

/**
 * The bench's knobs, from `--flag value` arguments or BENCH_* environment variables (a flag beats
 * the environment, which beats `--quick`, which beats the defaults).
 *
 * With the defaults a full run takes about 15 minutes on a 2-core machine: the load part repeats
 * every figure 3 times for each Chat latency (about 8 minutes), the tutorial's burst is capped at
 * 5 minutes, and start-up, the ceiling and our own bursts take the rest. `--quick` is for
 * development: short runs, one repeat, a small burst, 2 to 3 minutes; it does not write
 * BENCHMARKS.md unless `--write` is given.
 */
export interface BenchConfig {
  /** Which parts run (`--only`). */
  only: BenchPart;
  quick: boolean;
  /** Whether the report replaces the bench section of BENCHMARKS.md. */
  write: boolean;
  skipPython: boolean;
  /** The arguments the bench was given, for the report's "command" line. */
  argv: string[];
  /** BENCH_* variables that were set, for the same line. */
  envSettings: string[];

  /** Every load figure is measured this many times, ceiling and adapters taking turns. */
  repeats: number;
  /** The fake Chat's answer delays the load part is run with, one variant each. */
  chatDelaysMs: number[];
  /** Offered rate of the open-loop run, events per second. */
  rate: number;
  rateSeconds: number;
  /** Requests kept in flight by the closed-loop (saturation) runs. */
  concurrency: number;
  saturationSeconds: number;
  /** Unmeasured closed-loop load first, so the adapters' JIT and connections are warm. */
  warmupSeconds: number;
  /** How long into the saturated kill run our adapter gets SIGKILL (every one of our sessions). */
  killAfterSeconds: number;
  /** Connections the open-loop generator may open: enough for a slow adapter's backlog. */
  openConnections: number;
  /** The open-loop generator never has more than this in flight; beyond it a send is skipped. */
  maxInFlight: number;
  /** Every request gets an answer within this, or counts as "no answer" (Vast.ai waits 10 s). */
  requestTimeoutMs: number;

  /** Start-up: timed runs of `vast-gchat --help` and of `node -e 0` each, interleaved. */
  startupRuns: number;
  /** Start-up: untimed runs of each first, so both start from a warm page cache. */
  startupWarmupRuns: number;
  /** Start-up: starts of each adapter, timed until it answers /health. */
  serveStarts: number;

  /** Burst: events sent at once into one space (subjects `burst 0001`…). */
  burstEvents: number;
  /** Burst: runs of ours; the figures are medians. */
  burstRepeats: number;
  /** Burst: runs of the tutorial's adapter (each takes up to burstTutorialCapSeconds). */
  tutorialBurstRepeats: number;
  /** Burst: requests the Vast.ai-like sender keeps in flight at most. */
  burstConcurrency: number;
  /** Burst: attempts per event, the first included, before the sender gives up on it. */
  burstMaxAttempts: number;
  /** Burst: the sender's first retry delay; doubles per attempt up to burstMaxDelayMs. */
  burstInitialDelayMs: number;
  burstMaxDelayMs: number;
  /** Burst: messages a second the fake Chat takes per space (429 beyond). */
  burstChatRate: number;
  /** Burst: how long the fake Chat takes to answer a post it accepts. */
  burstChatDelayMs: number;
  /** Burst: how long ours gets before the run reports what is still not visible. */
  burstOursCapSeconds: number;
  /** Burst: the same for the tutorial's adapter (it needs about one second per event). */
  burstTutorialCapSeconds: number;
}

export const BENCH_PARTS = ["all", "load", "burst", "startup", "rss"] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

interface NumberKnob {
  flag: string;
  env: string;
  fallback: number;
  /** The value under `--quick`, when it differs. */
  quick?: number;
  /** Upper bound, so a typo cannot start an hour-long or machine-wrecking run. */
  max: number;
  integer?: boolean;
}

const NUMBERS = {
  repeats: { flag: "repeats", env: "BENCH_REPEATS", fallback: 3, quick: 1, max: 20, integer: true },
  rate: { flag: "rate", env: "BENCH_RATE", fallback: 500, max: 20_000 },
  rateSeconds: {
    flag: "rate-seconds",
    env: "BENCH_RATE_SECONDS",
    fallback: 10,
    quick: 3,
    max: 120,
  },
  concurrency: {
    flag: "concurrency",
    env: "BENCH_CONCURRENCY",
    fallback: 64,
    max: 1024,
    integer: true,
  },
  saturationSeconds: {
    flag: "saturation-seconds",
    env: "BENCH_SATURATION_SECONDS",
    fallback: 10,
    quick: 3,
    max: 120,
  },
  warmupSeconds: {
    flag: "warmup-seconds",
    env: "BENCH_WARMUP_SECONDS",
    fallback: 2,
    quick: 1,
    max: 30,
  },
  killAfterSeconds: {
    flag: "kill-after-seconds",
    env: "BENCH_KILL_AFTER_SECONDS",
    fallback: 3,
    quick: 1,
    max: 60,
  },
  openConnections: {
    flag: "open-connections",
    env: "BENCH_OPEN_CONNECTIONS",
    fallback: 256,
    max: 4096,
    integer: true,
  },
  maxInFlight: {
    flag: "max-in-flight",
    env: "BENCH_MAX_IN_FLIGHT",
    fallback: 5000,
    max: 100_000,
    integer: true,
  },
  requestTimeoutMs: {
    flag: "request-timeout-ms",
    env: "BENCH_REQUEST_TIMEOUT_MS",
    fallback: 10_000,
    max: 60_000,
  },
  startupRuns: {
    flag: "startup-runs",
    env: "BENCH_STARTUP_RUNS",
    fallback: 20,
    quick: 5,
    max: 500,
    integer: true,
  },
  startupWarmupRuns: {
    flag: "startup-warmup-runs",
    env: "BENCH_STARTUP_WARMUP_RUNS",
    fallback: 3,
    quick: 1,
    max: 50,
    integer: true,
  },
  serveStarts: {
    flag: "serve-starts",
    env: "BENCH_SERVE_STARTS",
    fallback: 5,
    quick: 2,
    max: 50,
    integer: true,
  },
  burstEvents: {
    flag: "burst-events",
    env: "BENCH_BURST_EVENTS",
    fallback: 500,
    quick: 100,
    max: 5000,
    integer: true,
  },
  burstRepeats: {
    flag: "burst-repeats",
    env: "BENCH_BURST_REPEATS",
    fallback: 3,
    quick: 1,
    max: 20,
    integer: true,
  },
  tutorialBurstRepeats: {
    flag: "tutorial-burst-repeats",
    env: "BENCH_TUTORIAL_BURST_REPEATS",
    fallback: 1,
    max: 20,
    integer: true,
  },
  burstConcurrency: {
    flag: "burst-concurrency",
    env: "BENCH_BURST_CONCURRENCY",
    fallback: 32,
    max: 256,
    integer: true,
  },
  burstMaxAttempts: {
    flag: "burst-max-attempts",
    env: "BENCH_BURST_MAX_ATTEMPTS",
    fallback: 20,
    max: 100,
    integer: true,
  },
  burstInitialDelayMs: {
    flag: "burst-initial-delay-ms",
    env: "BENCH_BURST_INITIAL_DELAY_MS",
    fallback: 1000,
    max: 60_000,
  },
  burstMaxDelayMs: {
    flag: "burst-max-delay-ms",
    env: "BENCH_BURST_MAX_DELAY_MS",
    fallback: 30_000,
    max: 600_000,
  },
  burstChatRate: { flag: "burst-chat-rate", env: "BENCH_BURST_CHAT_RATE", fallback: 1, max: 100 },
  burstChatDelayMs: {
    flag: "burst-chat-delay-ms",
    env: "BENCH_BURST_CHAT_DELAY_MS",
    fallback: 300,
    max: 10_000,
  },
  burstOursCapSeconds: {
    flag: "burst-ours-cap-seconds",
    env: "BENCH_BURST_OURS_CAP_SECONDS",
    fallback: 120,
    quick: 60,
    max: 1800,
  },
  burstTutorialCapSeconds: {
    flag: "burst-tutorial-cap-seconds",
    env: "BENCH_BURST_TUTORIAL_CAP_SECONDS",
    fallback: 300,
    quick: 30,
    max: 1800,
  },
} as const satisfies Record<string, NumberKnob>;

type NumberKey = keyof typeof NUMBERS;

const CHAT_DELAYS = { flag: "chat-delays-ms", env: "BENCH_CHAT_DELAYS_MS", fallback: [5, 300] };

export const USAGE = `usage: npm run bench -- [--quick] [--only all|load|burst|startup|rss] [--repeats N]
                        [--write | --no-write] [--skip-python]
  load:    [--chat-delays-ms 5,300] [--rate N] [--rate-seconds N] [--concurrency N]
           [--saturation-seconds N] [--warmup-seconds N] [--kill-after-seconds N]
           [--open-connections N] [--max-in-flight N] [--request-timeout-ms N]
  startup: [--startup-runs N] [--startup-warmup-runs N] [--serve-starts N]
  burst:   [--burst-events N] [--burst-repeats N] [--tutorial-burst-repeats N]
           [--burst-concurrency N] [--burst-max-attempts N] [--burst-initial-delay-ms N]
           [--burst-max-delay-ms N] [--burst-chat-rate N] [--burst-chat-delay-ms N]
           [--burst-ours-cap-seconds N] [--burst-tutorial-cap-seconds N]
Each flag also reads from BENCH_<NAME> (e.g. BENCH_REPEATS=5, BENCH_ONLY=burst, BENCH_QUICK=1).
A full run (no --only, no --quick) replaces the bench section of BENCHMARKS.md; other runs only
print their table unless given --write. --only rss runs the load sessions without the fixed-rate
run and the kill -9. Run \`npm run build\` first.`;

function parseChatDelays(raw: string): number[] {
  const values = raw.split(",").map((part) => Number(part.trim()));
  if (
    values.length === 0 ||
    values.length > 5 ||
    values.some((v) => !Number.isFinite(v) || v < 0 || v > 10_000)
  ) {
    throw new Error(
      `--${CHAT_DELAYS.flag} / ${CHAT_DELAYS.env} must be 1 to 5 delays in [0, 10000] ms separated by commas, not "${raw}"`,
    );
  }
  return values;
}

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig {
  const numberOptions = Object.fromEntries(
    Object.values(NUMBERS).map(({ flag }) => [flag, { type: "string" as const }]),
  );
  const { values } = parseArgs({
    args: argv,
    options: {
      ...numberOptions,
      [CHAT_DELAYS.flag]: { type: "string" },
      quick: { type: "boolean" },
      "skip-python": { type: "boolean" },
      only: { type: "string" },
      write: { type: "boolean" },
      help: { type: "boolean" },
    },
    allowNegative: true,
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const flags = values as Record<string, string | boolean | undefined>;
  const quick = flags.quick === true || env.BENCH_QUICK === "1";

  const number = (key: NumberKey): number => {
    const knob: NumberKnob = NUMBERS[key];
    const raw = flags[knob.flag] ?? env[knob.env];
    if (raw === undefined || raw === "" || typeof raw === "boolean") {
      return quick && knob.quick !== undefined ? knob.quick : knob.fallback;
    }
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0 || value > knob.max) {
      throw new Error(
        `--${knob.flag} / ${knob.env} must be a number in (0, ${knob.max}], not "${raw}"`,
      );
    }
    return knob.integer ? Math.max(1, Math.round(value)) : value;
  };

  const onlyRaw = (typeof flags.only === "string" ? flags.only : undefined) ?? env.BENCH_ONLY;
  const only = onlyRaw === undefined || onlyRaw === "" ? "all" : onlyRaw;
  if (!(BENCH_PARTS as readonly string[]).includes(only)) {
    throw new Error(`--only / BENCH_ONLY must be one of ${BENCH_PARTS.join(", ")}, not "${only}"`);
  }
  const delaysRaw = flags[CHAT_DELAYS.flag] ?? env[CHAT_DELAYS.env];
  const chatDelaysMs =
    typeof delaysRaw === "string" && delaysRaw !== ""
      ? parseChatDelays(delaysRaw)
      : CHAT_DELAYS.fallback;
  // Only a full, unhurried run may replace the figures in BENCHMARKS.md, unless asked to.
  const writeFlag = typeof flags.write === "boolean" ? flags.write : undefined;
  const write = writeFlag ?? (env.BENCH_WRITE ? env.BENCH_WRITE === "1" : only === "all" && !quick);

  const numbers = Object.fromEntries(
    (Object.keys(NUMBERS) as NumberKey[]).map((key) => [key, number(key)]),
  ) as Record<NumberKey, number>;
  return {
    ...numbers,
    only: only as BenchPart,
    quick,
    write,
    skipPython: flags["skip-python"] === true || env.BENCH_SKIP_PYTHON === "1",
    argv,
    envSettings: Object.keys(env)
      .filter((name) => name.startsWith("BENCH_"))
      .sort()
      .map((name) => `${name}=${env[name] ?? ""}`),
    chatDelaysMs,
  };
}

/** Whether a part runs in this invocation. */
export function runs(config: BenchConfig, part: Exclude<BenchPart, "all">): boolean {
  return config.only === "all" || config.only === part;
}
