import { type FSWatcher, statSync, watch } from "node:fs";
import { basename } from "node:path";
import { type SecretStore, secretsFilePath } from "../config/secret-store.js";
import type { SettingsStore } from "../config/settings.js";
import {
  MAX_PREVIOUS_SECRET_MS,
  readStoredServeValues,
  resolveSecrets,
  type StoredServeValues,
} from "./serve-options.js";

/**
 * The signing secrets a running `serve` accepts, kept in step with what `rotate-secret` stores
 * without waiting for a request: a rotation must revoke the old secret on a quiet account too.
 *
 * `rotate-secret` is another process, so serve watches the config directory (fs.watch) and, since
 * fs.watch misses changes on some filesystems (network mounts, some containers), also looks at the
 * files' identity, size and times every SECRET_POLL_MS. The secret store is read only when one of
 * them changed, never per request. A keychain-backed store has no file of its own: every rotation
 * also rewrites config.json (its rotation marker is set, then cleared with the new expiry), and that
 * is the change serve sees.
 *
 * The previous secret is dropped from memory the moment its grace ends (each call compares the
 * clock) and, within a poll, removed from storage.
 */

/** How often the stored state is looked at when fs.watch says nothing: well under the second promised. */
export const SECRET_POLL_MS = 500;
/** A rotation marker older than this was left by a rotate-secret that died: ignore it. */
export const ROTATION_WINDOW_MS = 2 * 60_000;

export interface SecretRefreshLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface SecretRefreshOptions {
  env: NodeJS.ProcessEnv;
  /** The stored configuration; undefined when the environment alone configures serve. */
  config?: { configDir: string; secrets: SecretStore; settings: SettingsStore } | undefined;
  log: SecretRefreshLog;
  /** The clock (tests move it); Date.now by default. */
  now?: () => number;
  pollMs?: number;
}

export interface SecretRefresh {
  /** The secrets accepted now. No I/O: called for every delivery. */
  secrets(): readonly string[];
  /**
   * Whether a signature mismatch may be a delivery signed with a secret we do not hold yet (503,
   * retried by Vast.ai) rather than a bad one (401, final). Called only on a mismatch.
   */
  rotating(): boolean;
  /** Looks at the stored state now (what the poll does). */
  refresh(): void;
  close(): void;
}

export function startSecretRefresh(options: SecretRefreshOptions): SecretRefresh {
  const { env, config, log } = options;
  const now = options.now ?? Date.now;
  // VAST_WEBHOOK_SECRET_PREVIOUS has no rotation time to count from: the user set it for a rotation
  // made before this serve started, so the same bound counted from the start is at least as long
  // as the grace that rotation needs, and never minutes more.
  const envPreviousUntil = now() + MAX_PREVIOUS_SECRET_MS;
  const files = config ? [config.settings.path, secretsFilePath(config.configDir)] : [];

  // An expiry further away than the bound (a rotation by an older version, whose grace was 10
  // minutes or more, or a hand edit) is cut to the bound, counted from when serve first saw it.
  let bounded: { expiresAt: number; until: number } | undefined;
  const previousUntil = (values: StoredServeValues): number | undefined => {
    const expiresAt = values.previousSecretExpiresAt;
    if (expiresAt === undefined) return undefined;
    if (bounded?.expiresAt !== expiresAt) {
      bounded = { expiresAt, until: Math.min(expiresAt, now() + MAX_PREVIOUS_SECRET_MS) };
    }
    return bounded.until;
  };
  const effective = (values: StoredServeValues): StoredServeValues => {
    const until = previousUntil(values);
    return { ...values, previousSecretExpiresAt: until };
  };

  const fingerprint = (): string =>
    files
      .map((file) => {
        try {
          const stats = statSync(file, { throwIfNoEntry: false });
          // A file replaced by rename has a new inode, so even a same-size rewrite in the same
          // millisecond is seen.
          return stats ? `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}` : "-";
        } catch (error) {
          return `!${(error as NodeJS.ErrnoException).code ?? "?"}`;
        }
      })
      .join("|");

  const read = () => readStoredServeValues(config);

  // The files are looked at before they are read, so a change made meanwhile is seen next time.
  let seen = fingerprint();
  let failedAt: string | undefined;
  // Throws, as serve's start must, when the stored secret is missing or damaged.
  let stored = read();
  resolveSecrets(env, stored, now(), envPreviousUntil);
  let current = effective(stored);

  const isRotating = (values: StoredServeValues) =>
    (values.rotationStartedAt ?? 0) > now() - ROTATION_WINDOW_MS;

  /** Re-reads the store when its files changed; true when it did. */
  const check = (): boolean => {
    if (!config) return false;
    // The fingerprint is taken before the read, so a change made during the read is seen next time.
    const print = fingerprint();
    if (print === seen) return false;
    let next: StoredServeValues;
    try {
      next = read();
      resolveSecrets(env, next, now(), envPreviousUntil);
    } catch (error) {
      // Half-written by hand, removed by `cleanup` under a running adapter, a keychain locked for
      // a moment: keep the last good secrets, say so once per state of the files, and try again
      // at the next look (a rotation that could not be read must not be missed for good).
      if (failedAt !== print) {
        failedAt = print;
        log.warn(
          { reason: (error as Error).message },
          "the stored signing secrets cannot be read; keeping the last good ones",
        );
      }
      return false;
    }
    seen = print;
    failedAt = undefined;
    const before = accepted();
    const wasRotating = isRotating(stored);
    stored = next;
    current = effective(next);
    const after = accepted();
    if (!wasRotating && isRotating(next)) log.info({}, "secret rotation under way");
    if (before.length !== after.length || before.some((secret, i) => secret !== after[i])) {
      const until = current.previousSecretExpiresAt;
      log.info(
        {
          accepted: after.length,
          previous_until: after.length > 1 && until ? new Date(until).toISOString() : null,
        },
        "signing secrets reloaded",
      );
    }
    return true;
  };

  const accepted = () => resolveSecrets(env, current, now(), envPreviousUntil);

  let envPreviousDropped = false;
  let sweepFailed = false;
  /** The previous secret, once its grace has ended, goes from storage too. */
  const sweep = () => {
    if (env.VAST_WEBHOOK_SECRET_PREVIOUS && env.VAST_WEBHOOK_SECRET && !envPreviousDropped) {
      if (now() >= envPreviousUntil) {
        envPreviousDropped = true;
        log.warn(
          {},
          "VAST_WEBHOOK_SECRET_PREVIOUS is no longer accepted (its grace has ended): remove it from the environment",
        );
      }
    }
    if (!config || !stored.previousWebhookSecret || isRotating(stored)) return;
    const until = current.previousSecretExpiresAt;
    if (until !== undefined && until > now()) return;
    let removed: boolean;
    try {
      removed = forgetPrevious(config, stored, now());
      sweepFailed = false;
    } catch (error) {
      if (!sweepFailed) {
        sweepFailed = true;
        log.warn(
          { reason: (error as Error).message },
          "the expired previous secret could not be removed from storage",
        );
      }
      return;
    }
    if (removed) {
      log.info({}, "previous signing secret expired: removed from storage");
      stored = { ...stored, previousWebhookSecret: undefined, previousSecretExpiresAt: undefined };
      current = effective(stored);
    }
    // Either way the store changed since it was read (a keychain entry changes no file): read it
    // again at the next look.
    seen = "";
  };

  const tick = () => {
    check();
    sweep();
  };

  if (env.VAST_WEBHOOK_SECRET && env.VAST_WEBHOOK_SECRET_PREVIOUS) {
    log.warn(
      { until: new Date(envPreviousUntil).toISOString() },
      "VAST_WEBHOOK_SECRET_PREVIOUS is accepted only until then: remove it from the environment",
    );
  }

  const timer = setInterval(tick, options.pollMs ?? SECRET_POLL_MS);
  timer.unref();
  let watcher: FSWatcher | undefined;
  if (config) {
    try {
      const names = files.map((file) => basename(file));
      watcher = watch(config.configDir, { persistent: false }, (_event, name) => {
        // The event store and its WAL live here too and change with every delivery: only our
        // files (or an event that does not say which file) are worth a look.
        const file = name?.toString();
        if (!file || names.some((ours) => file.startsWith(ours))) check();
      });
      // Not supported here, or the directory went away: the poll still runs.
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      watcher = undefined;
    }
  }
  // An expired previous secret left by a serve that was not running when its grace ended.
  sweep();

  return {
    secrets: accepted,
    rotating() {
      // The files may have changed since the last look (the poll runs every 500 ms): a delivery
      // signed with a secret stored a moment ago gets 503 and, retried, is accepted; a bad one gets
      // 503 once per change of the files, not more.
      const changed = check();
      return changed || isRotating(stored);
    },
    refresh: tick,
    close() {
      clearInterval(timer);
      watcher?.close();
    },
  };
}

/**
 * Removes the previous secret from storage, unless it is no longer the one that expired: a new
 * rotation may have replaced it since serve last read the store.
 */
function forgetPrevious(
  config: { secrets: SecretStore; settings: SettingsStore },
  seen: StoredServeValues,
  now: number,
): boolean {
  const settings = config.settings.read();
  if ((settings.rotationStartedAt ?? 0) > now - ROTATION_WINDOW_MS) return false;
  if (settings.previousSecretExpiresAt !== seen.previousSecretExpiresAt) return false;
  if (config.secrets.get("previousWebhookSecret") !== seen.previousWebhookSecret) return false;
  config.secrets.delete("previousWebhookSecret");
  if (settings.previousSecretExpiresAt !== undefined) {
    config.settings.update({ previousSecretExpiresAt: undefined });
  }
  return true;
}
