/**
 * How big each part is. The full run is sized for about 8–12 minutes on a 2-core machine, the
 * quick one for 1–2 minutes; both run the same checks against the same targets.
 */
export interface CrashBudget {
  events: number;
  /** First attempts leave at this rate; retries come on top. Slow enough that kills land mid-flow. */
  sendRatePerS: number;
  /** Requests in flight at most, as a webhook sender with a small worker pool. */
  concurrency: number;
  /** A kill comes this long (uniform, ms) after the previous restart was ready. */
  killAfterMs: readonly [number, number];
  /** How long the adapter stays dead before the restart (uniform, ms). */
  downMs: readonly [number, number];
  /** Chance that a restart is killed again before it is ready (during start-up, store opening). */
  earlyKillChance: number;
  /** Once every event is acknowledged and Chat is healthy again, wait at most this for Chat to have them all. */
  drainCapS: number;
}

export interface FuzzBudget {
  /** Fuzzing before the long phase: JIT, caches, V8's heap and the store grow to their working size. */
  warmupS: number;
  /** The long phase whose start and end RSS are compared. */
  durationS: number;
  /** Whether the phase is long enough for the heap to reach its working size and judge growth. */
  judgeMemory: boolean;
  /** Independent fast-check runs in parallel, so one slow case does not idle the fuzzer. */
  lanes: number;
  /** Requests sent at once by one property run. */
  batchMax: number;
}

export interface PressureBudget {
  idle: number;
  trickle: number;
  /** Signed events a second while the connections are held. */
  ratePerS: number;
  durationS: number;
  /** The same load without the held connections first, for comparison. */
  baselineS: number;
}

export interface DiskBudget {
  /** Events sent once each while the disk is full. */
  whileFull: number;
  /** New events after the filler is gone (besides the refused ones, sent again). */
  afterFreeing: number;
  deliverCapS: number;
}

export interface Budget {
  crashes: CrashBudget;
  fuzz: FuzzBudget;
  pressure: PressureBudget;
  disk: DiskBudget;
  /** `serve --rate`: high enough that pacing is never the bottleneck of a check. */
  serveRate: number;
  /** `serve --max-age` in hours: nothing may expire into the dead letters during a run. */
  serveMaxAgeHours: number;
}

export function budgetFor(quick: boolean): Budget {
  return {
    crashes: quick
      ? {
          events: 400,
          sendRatePerS: 20,
          concurrency: 12,
          killAfterMs: [1000, 4000],
          downMs: [0, 400],
          earlyKillChance: 0.15,
          drainCapS: 60,
        }
      : {
          events: 3000,
          sendRatePerS: 25,
          concurrency: 16,
          killAfterMs: [1500, 6000],
          downMs: [0, 500],
          earlyKillChance: 0.15,
          drainCapS: 150,
        },
    fuzz: quick
      ? { warmupS: 10, durationS: 20, judgeMemory: false, lanes: 3, batchMax: 6 }
      : { warmupS: 40, durationS: 120, judgeMemory: true, lanes: 3, batchMax: 6 },
    pressure: quick
      ? { idle: 300, trickle: 100, ratePerS: 50, durationS: 20, baselineS: 8 }
      : { idle: 300, trickle: 100, ratePerS: 50, durationS: 90, baselineS: 20 },
    disk: { whileFull: 60, afterFreeing: 40, deliverCapS: 60 },
    serveRate: 50,
    serveMaxAgeHours: 1000,
  };
}
