import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { deliveryHeaders } from "../delivery-headers.js";
import { type DeliveryOutcome, deliveryOutcome } from "../delivery-outcome.js";
import { sampleEvent } from "../sample-events.js";
import { outOfEmulatorReach, targetRefusal } from "./delivery-target.js";

/**
 * Delivers events to a webhook's URL as Vast.ai does: a JSON body signed afresh at every attempt,
 * duplicates on request (delivery is at least once), retries of what Vast.ai retries, a 10 s
 * timeout, redirects never followed. close() ends every wait and every request in flight.
 */
export interface DeliverOptions {
  /** Slug, default "webhook_test"; any slug is allowed. */
  type?: string;
  subject?: string;
  message?: string;
  /** Full override of the JSON body. */
  body?: Record<string, unknown>;
  /** Sends the same event this many times, each with a fresh timestamp and signature. Default 1. */
  attempts?: number;
  /** More attempts after a 408/429/5xx, a timeout or a connection error. Default 0. */
  maxRetries?: number;
  /** Default 100. */
  retryDelayMs?: number;
  /** Default 10 s, Vast.ai's delivery timeout. */
  timeoutMs?: number;
}

export interface DeliveryAttempt {
  attempt: number;
  status?: number;
  error?: string;
  answer?: unknown;
}

export interface DeliveryReport {
  eventId: string;
  body: Record<string, unknown>;
  attempts: DeliveryAttempt[];
  /** Some attempt got a 2xx. */
  delivered: boolean;
  /** How the last attempt ended: a failure Vast.ai would retry, or one it gives up on. */
  outcome: DeliveryOutcome;
}

/** What a delivery needs of its webhook. */
export interface WebhookForDelivery {
  user_id: number;
  webhook_url: string;
  secret: string;
}

export interface DeliveryEngineOptions {
  /**
   * The webhook as it is now, or undefined once deleted. Read at every attempt, so a rotated
   * secret or an edited URL applies to the very next one.
   */
  webhookById(id: number): WebhookForDelivery | undefined;
  /** Deliver to plain-http loopback receivers, which Vast.ai refuses (tests, demo). */
  allowLoopbackHttp: boolean;
  /** Milliseconds clock, for event times and signature timestamps. */
  now: () => number;
}

/** Vast.ai waits this long for an answer (docs/tunnels.md). */
const DELIVERY_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_DELAY_MS = 100;

export class DeliveryEngine {
  /** Aborted by close(): ends waits between retries and requests in flight. */
  private readonly lifetime = new AbortController();
  private readonly inFlight = new Set<AbortController>();
  // Deliveries use their own connection pool, closed with the emulator; redirects are never
  // followed (undici's request does not follow them unless told to).
  private readonly agent = new Agent();
  /** Deliveries still to be "acknowledged elsewhere" (dropNext). */
  private toDrop = 0;

  constructor(private readonly options: DeliveryEngineOptions) {}

  /**
   * A test control, not Vast.ai behaviour one can ask for: the next `count` deliveries are answered
   * 200 without reaching the webhook's URL, as if something else there had acknowledged them (an
   * old tunnel's URL now serving another adapter, a proxy). So `/test/` answers 200 for an event
   * the adapter never sees.
   */
  dropNext(count: number): void {
    this.toDrop += count;
  }

  /**
   * Sends `attempts` copies of one event (duplicates, as at-least-once delivery makes them), and
   * retries a copy that failed with a retryable answer while `maxRetries` lasts. A permanent
   * failure, or running out of retries, ends the delivery as it would end Vast's.
   */
  async deliver(webhookId: number, options: DeliverOptions = {}): Promise<DeliveryReport> {
    const webhook = this.options.webhookById(webhookId);
    if (!webhook) throw new Error(`Vast emulator: no webhook ${webhookId}`);
    const body =
      options.body ??
      sampleEvent(options.type ?? "webhook_test", {
        subject: options.subject,
        message: options.message,
        userId: webhook.user_id,
        now: new Date(this.options.now()),
      });
    // The body's bytes are fixed once: a retry changes only the headers.
    const raw = Buffer.from(JSON.stringify(body), "utf8");
    const eventId = typeof body.event_id === "string" ? body.event_id : newEventId();
    const timeoutMs = options.timeoutMs ?? DELIVERY_TIMEOUT_MS;
    const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    if (this.toDrop > 0) {
      this.toDrop--;
      const attempts = [{ attempt: 1, status: 200, answer: "acknowledged elsewhere (dropped)" }];
      return { eventId, body, attempts, delivered: true, outcome: "success" };
    }
    let copiesLeft = Math.max(1, options.attempts ?? 1);
    let retriesLeft = Math.max(0, options.maxRetries ?? 0);
    const attempts: DeliveryAttempt[] = [];
    let delivered = false;
    let last: DeliveryOutcome = "permanent";
    while (copiesLeft > 0) {
      const { result, outcome } = await this.attemptOnce(
        webhookId,
        attempts.length + 1,
        { eventId, raw },
        timeoutMs,
      );
      attempts.push(result);
      last = outcome;
      if (outcome === "success") {
        delivered = true;
        copiesLeft--;
      } else if (outcome === "retry" && retriesLeft > 0 && !this.closed) {
        retriesLeft--;
        await sleep(retryDelayMs, undefined, { signal: this.lifetime.signal }).catch(
          () => undefined,
        );
      } else {
        break;
      }
    }
    return { eventId, body, attempts, delivered, outcome: last };
  }

  /** Ends every delivery: no more attempts, waits cut short, requests in flight aborted. */
  async close(): Promise<void> {
    this.lifetime.abort();
    for (const controller of this.inFlight) controller.abort(new Error("emulator closed"));
    await this.agent.close();
  }

  private get closed(): boolean {
    return this.lifetime.signal.aborted;
  }

  private async attemptOnce(
    webhookId: number,
    attempt: number,
    event: { eventId: string; raw: Buffer },
    timeoutMs: number,
  ): Promise<{ result: DeliveryAttempt; outcome: DeliveryOutcome }> {
    // URL and secret are read at each attempt: a rotation or an edit applies at once.
    const webhook = this.options.webhookById(webhookId);
    if (!webhook) return { result: { attempt, error: "webhook deleted" }, outcome: "permanent" };
    const refusal = targetRefusal(webhook.webhook_url, this.options.allowLoopbackHttp);
    if (refusal) return { result: { attempt, error: refusal }, outcome: "permanent" };
    const unreachable = outOfEmulatorReach(webhook.webhook_url);
    if (unreachable) {
      return { result: { attempt, error: unreachable }, outcome: deliveryOutcome("no answer") };
    }
    if (this.closed) {
      return { result: { attempt, error: "emulator closed" }, outcome: "permanent" };
    }
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const response = await request(webhook.webhook_url, {
        method: "POST",
        dispatcher: this.agent,
        signal: controller.signal,
        // A fresh connection per attempt, as a separate delivery would; also keeps a receiver's
        // keep-alive timeout from failing an attempt that never reached it.
        reset: true,
        headers: deliveryHeaders({
          secret: webhook.secret,
          body: event.raw,
          eventId: event.eventId,
          attempt,
          timestampSeconds: Math.floor(this.options.now() / 1000),
        }),
        body: event.raw,
      });
      const answer = parseAnswer(await response.body.text());
      const status = response.statusCode;
      return { result: { attempt, status, answer }, outcome: deliveryOutcome(status) };
    } catch (error) {
      // An abort's own reason (timeout or close) says more than undici's generic abort error.
      const reason = errorText(controller.signal.aborted ? controller.signal.reason : error);
      // Once the emulator closes, nothing is retried; before, a timeout or a cut connection is.
      const outcome = this.closed ? "permanent" : deliveryOutcome("no answer");
      return { result: { attempt, error: reason }, outcome };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}

/** For a body without one: 32 hex digits, the shape of the sample events' ids. */
function newEventId(): string {
  return randomUUID().replaceAll("-", "");
}

/** The receiver's answer, parsed when it is JSON, for the report. */
function parseAnswer(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return typeof code === "string" ? `${code}: ${error.message}${cause}` : error.message + cause;
}
