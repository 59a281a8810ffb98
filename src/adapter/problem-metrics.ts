import { METRIC_PREFIX } from "./metrics.js";
import { PROBLEM_KINDS, type Problem } from "./problems.js";
import { Gauge, Registry } from "./prom-client-classes.js";

/**
 * The open problems on /metrics (loopback listener only): one gauge per kind, 1 while it lasts,
 * and when it began, so an alert rule can say "for how long". Every kind is always there (0 when
 * not open), so a rule on a kind that never happened still has a series. A registry of its own,
 * rendered after the adapter's.
 */
export interface ProblemMetrics {
  render(): Promise<string>;
}

export function createProblemMetrics(problems: () => readonly Problem[]): ProblemMetrics {
  const register = new Registry();
  const registers = [register];
  const open = new Gauge({
    name: `${METRIC_PREFIX}problem`,
    help: "1 while this problem lasts (webhook missing, self-test failed, tunnel unreachable, Chat refusing), else 0.",
    labelNames: ["kind"] as const,
    registers,
  });
  const since = new Gauge({
    name: `${METRIC_PREFIX}problem_since_timestamp_seconds`,
    help: "When the open problem began (Unix seconds); 0 when it is not open.",
    labelNames: ["kind"] as const,
    registers,
  });
  return {
    render() {
      const current = new Map(problems().map((problem) => [problem.kind, problem]));
      for (const kind of PROBLEM_KINDS) {
        const problem = current.get(kind);
        open.set({ kind }, problem ? 1 : 0);
        since.set({ kind }, problem ? problem.since / 1000 : 0);
      }
      return register.metrics();
    },
  };
}
