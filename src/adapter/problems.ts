/**
 * What is wrong with the chain right now (issue 18, "silence you can trust"): a quiet Chat space
 * must mean that nothing happened, so whatever keeps Vast.ai's events from reaching it is a
 * problem, told once when it begins and once when it ends. Pure: no timers, no I/O; the clock is
 * passed in, and whoever listens (the alerts, the log, the runtime state) decides what to do.
 */
export const PROBLEM_KINDS = [
  "webhook_missing",
  "self_test_failed",
  "tunnel_unreachable",
  "chat_refusing",
] as const;

export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export interface Problem {
  kind: ProblemKind;
  /** When the cause began (ms since epoch): a threshold problem began before it was opened. */
  since: number;
  /** A few words: what kind of trouble ("The Vast.ai webhook is gone"). */
  title: string;
  /** What is wrong, one or two sentences for a person (may quote Vast.ai's or Chat's words). */
  summary: string;
  /** What to run or check, for a person. */
  action: string;
}

export type ProblemChange =
  | { change: "opened"; problem: Problem }
  | { change: "resolved"; problem: Problem; at: number };

export interface ProblemReport {
  title: string;
  summary: string;
  action: string;
  /** When it began; default: now. */
  since?: number;
}

export class ProblemTracker {
  private readonly open = new Map<ProblemKind, Problem>();
  private readonly listeners = new Set<(change: ProblemChange) => void>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Calls `listener` at each opening and resolution; returns the unsubscribe. */
  subscribe(listener: (change: ProblemChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reports the problem as present. The first report opens it (listeners hear "opened"); while it
   * stays open, later reports only refresh its words, silently: no repeats.
   */
  report(kind: ProblemKind, report: ProblemReport): boolean {
    const current = this.open.get(kind);
    if (current) {
      current.title = report.title;
      current.summary = report.summary;
      current.action = report.action;
      return false;
    }
    const problem: Problem = {
      kind,
      since: report.since ?? this.now(),
      title: report.title,
      summary: report.summary,
      action: report.action,
    };
    this.open.set(kind, problem);
    this.emit({ change: "opened", problem: { ...problem } });
    return true;
  }

  /** Reports the problem as gone: listeners hear "resolved" once, if it was open. */
  resolve(kind: ProblemKind): boolean {
    const problem = this.open.get(kind);
    if (!problem) return false;
    this.open.delete(kind);
    this.emit({ change: "resolved", problem: { ...problem }, at: this.now() });
    return true;
  }

  isOpen(kind: ProblemKind): boolean {
    return this.open.has(kind);
  }

  /** The open problems, oldest first (copies). */
  list(): Problem[] {
    return [...this.open.values()]
      .sort((a, b) => a.since - b.since)
      .map((problem) => ({ ...problem }));
  }

  private emit(change: ProblemChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }
}
