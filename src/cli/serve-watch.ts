import type { RunningAdapter } from "../adapter/adapter.js";
import { AlertSender } from "../adapter/alert-sender.js";
import {
  CHAT_ALERT_AFTER_MS,
  ChainWatcher,
  SELF_TEST_WAIT_MS,
  TUNNEL_ALERT_AFTER_MS,
  type VastSide,
} from "../adapter/chain-watch.js";
import { announceProblems } from "../adapter/problem-alerts.js";
import { realScheduler } from "../adapter/scheduler.js";
import type { PostOutcome } from "../chat/post-message.js";
import type { ChatMessage, MessageFormat } from "../chat/render.js";
import type { Settings } from "../config/settings.js";
import type { ConfigContext } from "./config-context.js";
import { formatDuration } from "./duration-argument.js";
import type { Logger } from "./logger.js";
import type { Reachability } from "./serve-tunnel.js";

/**
 * `serve`'s watch on the chain (issue 18; chain-watch.ts does the watching): the flags, the seams
 * serve passes in (where an alert is posted, which types the webhook must have), the Vast.ai side
 * when a webhook is set up here, and the thresholds, which tests may shorten.
 */
export interface WatchFlags {
  /** Milliseconds (duration-argument.ts); 0 is off. */
  checkEvery?: number;
  selfTestEvery?: number;
  updateWebhook?: boolean;
}

export const DEFAULT_CHECK_EVERY_MS = 5 * 60_000;
export const DEFAULT_SELF_TEST_EVERY_MS = 6 * 60 * 60_000;

export interface WatchContext {
  adapter: RunningAdapter;
  config: ConfigContext | undefined;
  /** The settings serve started with (a webhook id set up by init, or none). */
  settings: Settings;
  env: NodeJS.ProcessEnv;
  log: Logger;
  format: MessageFormat;
  /** Posts one alert into Chat (today to the Chat URL; with routes, the `default` route). */
  postAlert(message: ChatMessage): Promise<PostOutcome>;
  /** The event types the webhook must subscribe to, read at each check. */
  wantedTypes(): readonly string[];
  /** A problem opened or resolved (serve writes the runtime state). */
  onProblemsChange(): void;
  /**
   * Replicas on a shared store (replicas.ts): the webhook's checks and self-tests are the
   * leader's alone, so that they happen once, not once per replica.
   */
  isLeader?: () => boolean;
}

export interface ServeWatch {
  /** Fed by the tunnel supervisor: each probe's verdict and each loss. */
  tunnelHealth: { ok(): void; failed(reason: string): void };
  /** Starts the periodic checks once serve is reachable. */
  start(reachable: Reachability): void;
  stop(): void;
}

/**
 * Testing knobs, not for users (like VAST_GCHAT_TUNNEL_BACKOFF_MS): the thresholds are the
 * defaults; tests shorten them to see a problem open within seconds.
 */
function knob(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = Number(env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

export function createServeWatch(flags: WatchFlags, context: WatchContext): ServeWatch {
  const { adapter, env, log } = context;
  const checkEveryMs = flags.checkEvery ?? DEFAULT_CHECK_EVERY_MS;
  const selfTestEveryMs = flags.selfTestEvery ?? DEFAULT_SELF_TEST_EVERY_MS;
  const alerts = new AlertSender({ post: context.postAlert, log, scheduler: realScheduler });
  const unsubscribe = announceProblems({
    problems: adapter.problems,
    alerts,
    format: context.format,
    log,
    onChange: context.onProblemsChange,
  });

  let reachable: Reachability | undefined;
  const vast = vastSide(flags, context, () => reachable);
  const watcher = new ChainWatcher({
    problems: adapter.problems,
    scheduler: realScheduler,
    log,
    checkEveryMs,
    selfTestEveryMs,
    ...(vast ? { vast } : {}),
    selfTest: adapter.selfTest,
    chatFailing: () => {
      const health = adapter.deliveryHealth();
      return health.failingSince === null
        ? null
        : { since: health.failingSince, reason: health.lastError ?? "unknown" };
    },
    selfTestWaitMs: knob(env, "VAST_GCHAT_SELF_TEST_WAIT_MS", SELF_TEST_WAIT_MS),
    tunnelAlertAfterMs: knob(env, "VAST_GCHAT_TUNNEL_ALERT_MS", TUNNEL_ALERT_AFTER_MS),
    chatAlertAfterMs: knob(env, "VAST_GCHAT_CHAT_ALERT_MS", CHAT_ALERT_AFTER_MS),
  });
  return {
    tunnelHealth: {
      ok: () => watcher.tunnel.ok(),
      failed: (reason) => watcher.tunnel.failed(reason),
    },
    start(running) {
      reachable = running;
      const fields = {
        check_every: formatDuration(checkEveryMs),
        self_test_every: formatDuration(selfTestEveryMs),
      };
      if (vast) log.info(fields, "watching the chain");
      else
        log.info(
          fields,
          "watching the chain without Vast.ai: no webhook set up here, so no webhook checks or self-tests",
        );
      watcher.start();
    },
    stop() {
      watcher.stop();
      unsubscribe();
      alerts.stop();
    },
  };
}

/** Vast.ai's side of the watch, when `init` set a webhook up here and an API key is at hand. */
function vastSide(
  flags: WatchFlags,
  context: WatchContext,
  reachable: () => Reachability | undefined,
): VastSide | undefined {
  const { config, settings } = context;
  if (!config || settings.webhookId === undefined || !config.findApiKey()) return undefined;
  const client = config.client();
  let webhookId = settings.webhookId;
  return {
    client,
    webhookId() {
      // Another replica leads: it checks the webhook; here there is no webhook to check.
      if (context.isLeader && !context.isLeader()) return undefined;
      // A new `init` while serve runs may have made a new webhook; a settings file that cannot be
      // read right now (being replaced, say) leaves the last id known.
      try {
        webhookId = config.settings.read().webhookId ?? webhookId;
      } catch {
        // the last id known
      }
      return webhookId;
    },
    expectedUrl: () => reachable()?.webhookTarget(),
    pointBack: async () => {
      await reachable()?.pointWebhookBack();
    },
    wantedTypes: context.wantedTypes,
    mayUpdate: flags.updateWebhook !== false,
  };
}
