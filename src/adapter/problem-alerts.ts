import type { MessageFormat } from "../chat/render.js";
import { renderAlert } from "../chat/render-alert.js";
import type { AdapterLog } from "./adapter.js";
import type { AlertSender } from "./alert-sender.js";
import type { ProblemChange, ProblemTracker } from "./problems.js";

/**
 * What each opened or resolved problem becomes: a log line, always; a Chat alert, once when it
 * opens and once when it is resolved, except for Chat refusing posts, which Chat cannot be told
 * (the log, /metrics and `status` say it); and whatever `onChange` does (serve writes the runtime
 * state, which `status` reads).
 */
export interface ProblemAnnouncerOptions {
  problems: ProblemTracker;
  alerts: AlertSender;
  format: MessageFormat;
  log: AdapterLog;
  onChange?: () => void;
}

/** Subscribes to the tracker; returns the unsubscribe. */
export function announceProblems(options: ProblemAnnouncerOptions): () => void {
  const { log, alerts, format } = options;
  return options.problems.subscribe((change: ProblemChange) => {
    const { problem } = change;
    const fields = { kind: problem.kind, since: new Date(problem.since).toISOString() };
    if (change.change === "opened") {
      log.warn({ ...fields, summary: problem.summary, action: problem.action }, "problem");
    } else {
      const lastedS = Math.round((change.at - problem.since) / 1000);
      log.info({ ...fields, lasted_s: lastedS }, "problem resolved");
    }
    options.onChange?.();
    if (problem.kind === "chat_refusing") return;
    const message = renderAlert(
      {
        state: change.change,
        title: problem.title,
        summary: problem.summary,
        since: problem.since,
        ...(change.change === "resolved" ? { resolvedAt: change.at } : {}),
        action: problem.action,
        threadKey: `vast-gchat-alert-${problem.kind}`,
      },
      format,
    );
    alerts.send(message, `${problem.kind} ${change.change}`);
  });
}
