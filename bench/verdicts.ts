import { median } from "./format.js";
import type { ReportInput } from "./report-input.js";

/**
 * The project's targets and whether a run met them. A latency or rate target is judged on the
 * median of the repeats; a correctness target (nothing acknowledged is lost, no burst event is
 * lost) must hold in every single run.
 */
export const TARGETS = {
  /** `vast-gchat --help` at most this many times a bare `node -e 0`. */
  helpVsBareNode: 2.5,
  /** Ack latency p99 at the fixed rate, for every Chat latency. */
  ackP99Ms: 10,
  /** Accepted events/s at saturation, for every Chat latency. */
  acceptedPerS: 2000,
  missingAfterKill: 0,
  burstLost: 0,
};

export interface Verdict {
  /** For the table's rows: "help", "ackP99:5", "accepted:300", "durable", "burst". */
  key: string;
  /** e.g. "ack p99 < 10 ms, Chat 5 ms". */
  name: string;
  pass: boolean;
  /** A failed correctness target makes the bench exit 1; the others are reported. */
  correctness: boolean;
}

export function helpRatio(input: ReportInput): number | undefined {
  const cli = input.startup?.cli;
  if (!cli) return undefined;
  const help = median(cli.helpMs);
  const bare = median(cli.bareNodeMs);
  return help === undefined || bare === undefined || bare === 0 ? undefined : help / bare;
}

export function verdicts(input: ReportInput): Verdict[] {
  const result: Verdict[] = [];
  const add = (key: string, name: string, pass: boolean, correctness = false) =>
    result.push({ key, name, pass, correctness });

  const help = helpRatio(input);
  if (help !== undefined) {
    add(
      "help",
      `\`--help\` ≤ ${TARGETS.helpVsBareNode}× \`node -e 0\``,
      help <= TARGETS.helpVsBareNode,
    );
  }

  const load = input.load;
  if (load) {
    for (const delay of input.config.chatDelaysMs) {
      const sessions = load.ours.filter((s) => s.chatDelayMs === delay);
      if (load.plan.fixedRate) {
        const p99 = median(sessions.map((s) => s.fixed?.p99Ms));
        add(
          `ackP99:${delay}`,
          `ack p99 < ${TARGETS.ackP99Ms} ms at ${input.config.rate}/s, Chat ${delay} ms`,
          p99 !== undefined && p99 < TARGETS.ackP99Ms,
        );
      }
      const accepted = median(sessions.map((s) => s.saturation.acceptedPerS));
      add(
        `accepted:${delay}`,
        `≥ ${TARGETS.acceptedPerS} accepted events/s, Chat ${delay} ms`,
        accepted !== undefined && accepted >= TARGETS.acceptedPerS,
      );
    }
    const kills = load.ours.flatMap((s) => (s.kill ? [s.kill.durability] : []));
    if (kills.length > 0) {
      add(
        "durable",
        "nothing acknowledged lost to kill -9",
        kills.every((k) => k.missing === TARGETS.missingAfterKill && k.acknowledged > 0),
        true,
      );
    }
  }

  const burst = input.burst;
  if (burst) {
    add(
      "burst",
      "no burst event lost",
      burst.ours.every((r) => r.lost === TARGETS.burstLost && r.allVisibleS !== undefined),
      true,
    );
  }
  return result;
}

/** Whether every correctness target held (the exit code). */
export function correct(all: readonly Verdict[]): boolean {
  return all.every((v) => v.pass || !v.correctness);
}

export function byKey(all: readonly Verdict[], key: string): Verdict | undefined {
  return all.find((v) => v.key === key);
}
