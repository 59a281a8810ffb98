import type { BurstResult } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { MachineInfo } from "./machine.js";
import type { CeilingResult, SessionPlan, SessionResult } from "./sessions.js";
import type { ServeStartsResult, StartupResult } from "./startup.js";

/** Everything one `npm run bench` measured: what the report, the verdicts and the exit code read. */
export interface ReportInput {
  config: BenchConfig;
  machine: MachineInfo;
  startedAt: Date;
  /** Wall time of the whole run, s. */
  durationS: number;
  loadAverageAtStart: string;
  loadAverageAtEnd: string;
  /** Each part is absent when `--only` left it out. */
  startup?: StartupReport | undefined;
  load?: LoadReport | undefined;
  burst?: BurstReport | undefined;
}

export type Skipped = { skipped: string };

export interface StartupReport {
  cli: StartupResult;
  serve: ServeStartsResult;
}

/** The load sessions: every Chat latency, every repeat; the ceiling once per repeat. */
export interface LoadReport {
  plan: SessionPlan;
  /** Empty for `--only rss`, which does not measure the ceiling. */
  ceilings: CeilingResult[];
  ours: SessionResult[];
  tutorial: SessionResult[] | Skipped;
}

/** The burst: every run of each adapter. */
export interface BurstReport {
  ours: BurstResult[];
  tutorial: BurstResult[] | Skipped;
}

export function isSkipped<T>(value: T | Skipped): value is Skipped {
  return typeof value === "object" && value !== null && "skipped" in value;
}
