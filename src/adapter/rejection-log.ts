/**
 * Log lines for refused deliveries, rate-limited: anyone who has the public URL can send garbage,
 * and one line per request would let them fill the disk and bury everything else. The first
 * rejection of a reason is logged in full; others of that reason within the next interval are
 * counted, and one line then says how many were left out. A quiet interval ends the window.
 */
export interface RejectionFields {
  status: number;
  reason: string;
  detail?: string | undefined;
  remote?: string | undefined;
}

export interface RejectionLogTarget {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface RejectionLog {
  rejected(fields: RejectionFields): void;
  /** Says what is still uncounted, and stops the timers. */
  close(): void;
}

export const REJECTION_LOG_INTERVAL_MS = 10_000;

interface Window {
  suppressed: number;
  status: number;
  timer: NodeJS.Timeout;
}

export function createRejectionLog(
  log: RejectionLogTarget,
  intervalMs = REJECTION_LOG_INTERVAL_MS,
): RejectionLog {
  const windows = new Map<string, Window>();
  // A store that cannot keep events is the adapter's own trouble, worth an error; the rest is noise.
  const write = (reason: string, fields: object, message: string) =>
    reason === "unavailable" ? log.error(fields, message) : log.warn(fields, message);

  const summarise = (reason: string, window: Window) => {
    write(
      reason,
      {
        status: window.status,
        reason,
        suppressed: window.suppressed,
        window_s: Math.round(intervalMs / 100) / 10,
      },
      "rejections not logged",
    );
  };

  const endOfInterval = (reason: string) => {
    const window = windows.get(reason);
    if (!window) return;
    if (window.suppressed === 0) {
      windows.delete(reason);
      return;
    }
    summarise(reason, window);
    window.suppressed = 0;
    window.timer = setTimeout(() => endOfInterval(reason), intervalMs).unref();
  };

  return {
    rejected(fields) {
      const window = windows.get(fields.reason);
      if (window) {
        window.suppressed += 1;
        window.status = fields.status;
        return;
      }
      write(fields.reason, fields, "rejected");
      windows.set(fields.reason, {
        suppressed: 0,
        status: fields.status,
        timer: setTimeout(() => endOfInterval(fields.reason), intervalMs).unref(),
      });
    },
    close() {
      for (const [reason, window] of windows) {
        clearTimeout(window.timer);
        if (window.suppressed > 0) summarise(reason, window);
      }
      windows.clear();
    },
  };
}
