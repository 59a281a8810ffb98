import { formatLasted } from "../chat/render-alert.js";
import { type TestDelivery, VastApiError } from "../vast/api-client.js";
import type { UpdateWebhookInput, Webhook } from "../vast/api-types.js";
import { slugOf } from "../vast/type-selection.js";
import type { AdapterLog } from "./adapter.js";
import type { ProblemKind, ProblemTracker } from "./problems.js";
import type { Scheduler } from "./scheduler.js";
import type { SelfTestGate } from "./self-test-gate.js";

/**
 * Watching the chain from Vast.ai to Chat while serve runs (issue 18), so that a quiet Chat space
 * can be trusted to mean that nothing happened:
 * - every `checkEveryMs`, the webhook: it still exists (else the problem `webhook_missing`: only
 *   `init` can make a new one, since a new webhook has a new secret), points at serve's public URL
 *   (else it is pointed back, with a log line: the fix is at hand, so it is no problem) and
 *   subscribes to every type wanted (else the missing ones are added back, also logged);
 * - every `selfTestEveryMs`, Vast.ai's test event, expected back within `selfTestWaitMs` of the
 *   call (`self_test_failed` when Vast.ai answers 502 or 400, or it never comes);
 * - the tunnel's end-to-end probe failing for over `tunnelAlertAfterMs` (`tunnel_unreachable`), and
 *   Chat failing every post for over `chatAlertAfterMs` (`chat_refusing`), read on a timer.
 * Each check runs after the previous one has finished, so checks never overlap, whatever the API's
 * latency. A check that cannot ask Vast.ai (network, 429, 5xx) is a warning in the log, not a
 * problem: the chain may well be fine. stop() cancels every timer and any wait.
 */
export interface VastSide {
  client: {
    findWebhook(id: number): Promise<Webhook | undefined>;
    updateWebhook(id: number, input: UpdateWebhookInput): Promise<Webhook>;
    testWebhook(id: number): Promise<TestDelivery>;
  };
  /** The webhook this adapter serves, read afresh (a new `init` may change it while serve runs). */
  webhookId(): number | undefined;
  /** Where the webhook should point (public URL and path); undefined while serve has no public URL. */
  expectedUrl(): string | undefined;
  /** Points the webhook back at serve's public URL (the code serve points it with at start). */
  pointBack(): Promise<void>;
  /** The types the webhook must subscribe to, keys or slugs (today the settings'; later the routes'). */
  wantedTypes(): readonly string[];
  /** False with `--no-update-webhook`: a difference is logged, never written. */
  mayUpdate: boolean;
}

export interface ChainWatchOptions {
  problems: ProblemTracker;
  scheduler: Scheduler;
  log: AdapterLog;
  /** 0: off. */
  checkEveryMs: number;
  /** 0: off. */
  selfTestEveryMs: number;
  /** Vast.ai's side; absent when no webhook is set up here (serve on the environment alone). */
  vast?: VastSide;
  /** Recognises the self-test's event at the receiver. */
  selfTest?: SelfTestGate;
  /** Since when every post to Chat has failed, and why; null while it works. */
  chatFailing(): { since: number; reason: string } | null;
  selfTestWaitMs?: number;
  tunnelAlertAfterMs?: number;
  chatAlertAfterMs?: number;
  /** The next self-test after a failed one comes after at most this (default 5 min). */
  selfTestRetryMs?: number;
}

/** "expects it back through the public URL within a minute" (issue 18). */
export const SELF_TEST_WAIT_MS = 60_000;
export const TUNNEL_ALERT_AFTER_MS = 2 * 60_000;
export const CHAT_ALERT_AFTER_MS = 10 * 60_000;
const SELF_TEST_RETRY_MS = 5 * 60_000;

/** Since when something has failed without a success in between. */
export class FailingSince {
  private state: { since: number; reason: string } | null = null;

  constructor(private readonly now: () => number) {}

  failed(reason: string): void {
    if (this.state) this.state.reason = reason;
    else this.state = { since: this.now(), reason };
  }

  ok(): void {
    this.state = null;
  }

  read(): { since: number; reason: string } | null {
    return this.state && { ...this.state };
  }
}

export class ChainWatcher {
  /** The tunnel's probes and losses, as the supervisor reports them (serve-tunnel.ts). */
  readonly tunnel: FailingSince;
  private readonly options: ChainWatchOptions;
  private readonly cancels = new Set<() => void>();
  private stopped = false;
  /** What a `--no-update-webhook` serve last said about, so it says it once. */
  private toldElsewhere: string | undefined;
  private toldMissingTypes: string | undefined;

  constructor(options: ChainWatchOptions) {
    this.options = options;
    this.tunnel = new FailingSince(() => options.scheduler.now());
  }

  start(): void {
    const { options } = this;
    if (options.vast && options.checkEveryMs > 0) {
      this.every(options.checkEveryMs, () => this.checkWebhook());
    }
    if (options.vast && options.selfTest && options.selfTestEveryMs > 0) {
      const retryMs = Math.min(
        options.selfTestEveryMs,
        options.selfTestRetryMs ?? SELF_TEST_RETRY_MS,
      );
      this.every(
        options.selfTestEveryMs,
        () => this.selfTest(),
        // Sooner after a failure, so its resolution is not hours away.
        () => (options.problems.isOpen("self_test_failed") ? retryMs : options.selfTestEveryMs),
      );
    }
    this.watchThreshold(
      "tunnel_unreachable",
      options.tunnelAlertAfterMs ?? TUNNEL_ALERT_AFTER_MS,
      () => this.tunnel.read(),
      (failing, afterMs) => ({
        title: "The tunnel does not reach the adapter",
        summary: `Requests through the public URL have not reached this adapter for more than ${formatLasted(afterMs)} (last: ${failing.reason}). Vast.ai's deliveries meanwhile fail: behind ngrok or tunnelmole they are lost.`,
        action:
          "serve keeps reopening the tunnel and gives up after six failures in a row. Check this machine's network, and `vast-gchat status` for the tunnel's last probe.",
      }),
    );
    this.watchThreshold(
      "chat_refusing",
      options.chatAlertAfterMs ?? CHAT_ALERT_AFTER_MS,
      () => options.chatFailing(),
      (failing, afterMs) => ({
        title: "Google Chat refuses every post",
        summary: `Every post to Google Chat has failed for more than ${formatLasted(afterMs)} (last: ${failing.reason}). Events wait in the store and are retried.`,
        action:
          "Check the Chat URL with `vast-gchat status`; `vast-gchat events` shows what waits.",
      }),
    );
  }

  /**
   * Cancels every timer and wait. A call to Vast.ai under way is not waited for (a test call lasts
   * as long as Vast.ai's delivery to this very adapter, which is stopping): whatever it answers is
   * ignored.
   */
  stop(): void {
    this.stopped = true;
    for (const cancel of [...this.cancels]) cancel();
    this.cancels.clear();
  }

  /** One webhook check now (also what the timer runs). */
  async checkWebhook(): Promise<void> {
    const vast = this.options.vast;
    const id = vast?.webhookId();
    if (!vast || id === undefined) return;
    const { log, problems } = this.options;
    let webhook: Webhook | undefined;
    try {
      webhook = await vast.client.findWebhook(id);
    } catch (error) {
      if (!this.stopped) {
        log.warn({ webhook_id: id, reason: (error as Error).message }, "webhook check failed");
      }
      return;
    }
    if (this.stopped) return;
    if (!webhook) {
      this.reportMissing(id);
      return;
    }
    problems.resolve("webhook_missing");
    await this.checkUrl(vast, webhook);
    if (this.stopped) return;
    await this.checkTypes(vast, webhook);
  }

  /** One self-test now (also what the timer runs). */
  async selfTest(): Promise<void> {
    const { vast, selfTest: gate, log, problems, scheduler } = this.options;
    const id = vast?.webhookId();
    if (!vast || !gate || id === undefined) return;
    const url = vast.expectedUrl();
    if (url === undefined) {
      log.debug({}, "self-test skipped: serve has no public URL");
      return;
    }
    const waitMs = this.options.selfTestWaitMs ?? SELF_TEST_WAIT_MS;
    const startedAt = scheduler.now();
    const run = gate.begin();
    let delivery: TestDelivery;
    try {
      delivery = await vast.client.testWebhook(id);
    } catch (error) {
      run.close();
      if (!this.stopped) this.selfTestFailed(id, error);
      return;
    }
    let endWait = () => {};
    const deadline = new Promise<void>((resolve) => {
      const cancel = scheduler.after(startedAt + waitMs - scheduler.now(), resolve);
      endWait = () => {
        cancel();
        resolve();
      };
      this.cancels.add(endWait);
    });
    const arrived = await run.arrival(delivery.eventId, deadline);
    endWait();
    this.cancels.delete(endWait);
    run.close();
    if (this.stopped) return;
    if (arrived) {
      const latency = scheduler.now() - startedAt;
      log.info(
        { webhook_id: id, event_id: delivery.eventId ?? null, latency_ms: latency },
        "self-test ok",
      );
      problems.resolve("self_test_failed");
      return;
    }
    const event = delivery.eventId ? ` (event ${delivery.eventId})` : "";
    log.warn(
      { webhook_id: id, event_id: delivery.eventId ?? null },
      "self-test event did not arrive",
    );
    problems.report("self_test_failed", {
      title: "Vast.ai's test event did not arrive",
      summary: `Vast.ai says it delivered its test event${event} to ${url}, but it did not reach this adapter within ${formatLasted(waitMs)}: that URL may lead to another adapter, or an old tunnel.`,
      action:
        "Run `vast-gchat status` on this machine: it shows where the webhook points and where this adapter is.",
    });
  }

  private reportMissing(id: number): void {
    this.options.log.warn({ webhook_id: id }, "webhook missing");
    this.options.problems.report("webhook_missing", {
      title: "The Vast.ai webhook is gone",
      summary: `Webhook ${id} no longer exists on Vast.ai (deleted in the console, or by a cleanup elsewhere), so Vast.ai sends this adapter nothing.`,
      action:
        "Run `vast-gchat init` on the adapter's machine: it creates a new webhook, with a new signing secret, which the running serve takes within a second.",
    });
  }

  private async checkUrl(vast: VastSide, webhook: Webhook): Promise<void> {
    const expected = vast.expectedUrl();
    const found = webhook.webhook_url;
    if (expected === undefined || found === expected) {
      this.toldElsewhere = undefined;
      return;
    }
    const fields = { webhook_id: webhook.id, found, url: expected };
    if (!vast.mayUpdate) {
      if (this.toldElsewhere !== found) {
        this.options.log.warn(fields, "webhook points elsewhere (left alone: --no-update-webhook)");
      }
      this.toldElsewhere = found;
      return;
    }
    this.options.log.warn(fields, "webhook pointed elsewhere: pointing it back");
    try {
      await vast.pointBack();
    } catch (error) {
      this.options.log.error(
        { ...fields, reason: (error as Error).message },
        "could not point the webhook back",
      );
    }
  }

  private async checkTypes(vast: VastSide, webhook: Webhook): Promise<void> {
    const wanted = vast.wantedTypes();
    const has = new Set(webhook.event_types.map(slugOf));
    const missing = wanted.filter((type) => !has.has(slugOf(type)));
    if (missing.length === 0) {
      this.toldMissingTypes = undefined;
      return;
    }
    const fields = { webhook_id: webhook.id, missing: missing.map(slugOf) };
    if (!vast.mayUpdate) {
      const told = missing.join(",");
      if (this.toldMissingTypes !== told) {
        this.options.log.warn(fields, "webhook lacks types (left alone: --no-update-webhook)");
      }
      this.toldMissingTypes = told;
      return;
    }
    // What it has is kept (someone may have added a type in the console); each type once, by
    // slug, since Vast.ai refuses "Duplicate event type".
    const types = new Map(webhook.event_types.map((type) => [slugOf(type), type]));
    for (const type of wanted) if (!types.has(slugOf(type))) types.set(slugOf(type), type);
    try {
      await vast.client.updateWebhook(webhook.id, { event_types: [...types.values()] });
      this.options.log.warn(fields, "webhook types restored");
    } catch (error) {
      this.options.log.error(
        { ...fields, reason: (error as Error).message },
        "could not restore the webhook's types",
      );
    }
  }

  private selfTestFailed(id: number, error: unknown): void {
    const { log, problems } = this.options;
    const reason = (error as Error).message;
    if (error instanceof VastApiError && error.reason === "not_found") {
      this.reportMissing(id);
      return;
    }
    if (error instanceof VastApiError && error.reason === "adapter_unreachable") {
      log.warn({ webhook_id: id, reason }, "self-test failed");
      problems.report("self_test_failed", {
        title: "Vast.ai cannot reach the adapter",
        summary: `${reason} Vast.ai's deliveries fail the same way: they are retried for a while, then lost.`,
        action:
          "Run `vast-gchat status` on this machine: it shows the tunnel's last probe and where the webhook points. Restarting `vast-gchat serve` opens a new tunnel.",
      });
      return;
    }
    if (error instanceof VastApiError && error.reason === "adapter_refused") {
      log.warn({ webhook_id: id, reason }, "self-test failed");
      problems.report("self_test_failed", {
        title: "The adapter refuses Vast.ai's events",
        summary: `${reason} Every event Vast.ai sends is refused the same way, and lost: most likely the signing secret does not match.`,
        action:
          "If VAST_WEBHOOK_SECRET is set for serve, check it; otherwise run `vast-gchat rotate-secret` (a running serve takes the new secret within a second).",
      });
      return;
    }
    // The API itself did not answer (network, 429, 5xx), or refused the key: no verdict on the chain.
    log.warn({ webhook_id: id, reason }, "self-test could not run");
  }

  /** Runs `task` every `periodMs` (or what `next()` says), each run after the previous one ends. */
  private every(periodMs: number, task: () => Promise<void>, next = () => periodMs): void {
    const schedule = (ms: number) => {
      if (this.stopped) return;
      const cancel = this.options.scheduler.after(ms, () => {
        this.cancels.delete(cancel);
        if (this.stopped) return;
        void task()
          .catch((error: unknown) => {
            this.options.log.error({ reason: (error as Error).message }, "chain check failed");
          })
          .then(() => schedule(next()));
      });
      this.cancels.add(cancel);
    };
    schedule(periodMs);
  }

  /**
   * Opens `kind` once `read()` has said "failing" for `afterMs`, with `since` when it began; resolves
   * it once `read()` says it works. Looked at ten times per threshold, at most every 30 s.
   */
  private watchThreshold(
    kind: ProblemKind,
    afterMs: number,
    read: () => { since: number; reason: string } | null,
    describe: (
      failing: { since: number; reason: string },
      afterMs: number,
    ) => { title: string; summary: string; action: string },
  ): void {
    const { problems, scheduler } = this.options;
    const pollMs = Math.min(30_000, Math.max(50, afterMs / 10));
    const look = () => {
      const failing = read();
      if (!failing) {
        problems.resolve(kind);
      } else if (scheduler.now() - failing.since >= afterMs) {
        problems.report(kind, { since: failing.since, ...describe(failing, afterMs) });
      }
    };
    const schedule = () => {
      if (this.stopped) return;
      const cancel = scheduler.after(pollMs, () => {
        this.cancels.delete(cancel);
        look();
        schedule();
      });
      this.cancels.add(cancel);
    };
    schedule();
  }
}
