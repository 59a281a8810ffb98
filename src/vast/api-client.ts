import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher } from "undici";
import type { z } from "zod";
import { UserError } from "../user-error.js";
import { USER_AGENT } from "../version.js";
import {
  API_PREFIX,
  type CreateWebhookInput,
  type CurrentUser,
  CurrentUserResponse,
  MAX_WEBHOOKS_PER_USER,
  MessageResponse,
  type NotificationType,
  NotificationTypesResponse,
  SecretRotatedResponse,
  TestWebhookResponse,
  type UpdateWebhookInput,
  type Webhook,
  WebhookCreatedResponse,
  WebhookListResponse,
  WebhookUpdatedResponse,
  type WebhookWithSecret,
} from "./api-types.js";

/**
 * One typed client for the Vast.ai calls vast-gchat makes (docs/vast-api.md). Every failure becomes
 * a VastApiError whose message is a sentence for the user; the API key never appears in one.
 */
export const DEFAULT_API_URL = "https://console.vast.ai";

export type VastErrorKind =
  | "unauthorized"
  /** `test`: Vast.ai could not reach the adapter (its 502: tunnel or adapter down). */
  | "adapter_unreachable"
  /** `test`: the adapter refused the test event (Vast.ai's 400: e.g. our 401 for a wrong secret). */
  | "adapter_refused"
  | "not_found"
  | "limit"
  | "invalid"
  | "rate_limited"
  | "unavailable"
  | "network"
  | "bad_response";

/** A failure of a Vast.ai call, in words for the user; `reason` says which, for callers to act on. */
export class VastApiError extends UserError {
  override name = "VastApiError";
  readonly reason: VastErrorKind;
  readonly status: number | undefined;

  constructor(
    reason: VastErrorKind,
    message: string,
    options: { status?: number; hint?: string } = {},
  ) {
    super(message, { kind: "failure", hint: options.hint });
    this.reason = reason;
    this.status = options.status;
  }
}

export interface VastClientOptions {
  apiKey: string;
  baseUrl?: string;
  /** Retries of 429, 502, 503, 504 and connection errors, as Vast's own CLI does. */
  retries?: number;
  /** First wait after a 5xx or a connection error (then x1.5, as Vast's own CLI). */
  initialBackoffMs?: number;
  /** First wait after a 429 (then doubled): Vast.ai sends no Retry-After. */
  rateLimitBackoffMs?: number;
  /** Least time between two calls of one route (Vast.ai limits each route: `x-rateLimit: 2.0`). */
  routeSpacingMs?: number;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** What Vast.ai answers when it has delivered its test event (docs/vast-api.md). */
export interface TestDelivery {
  webhookId: number | undefined;
  /** The test event's `event_id`, to follow it through the adapter's store. */
  eventId: string | undefined;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/**
 * Routes a scoped key may be refused while the webhook routes work (docs/vast-api.md, "Scoped API
 * keys"), with the permission to name when that happens.
 */
const SCOPED_ROUTES: Array<[RegExp, string]> = [
  [/^\/notification-types\/$/, "notification-types"],
  [/^\/webhooks\/\d+\/rotate-secret\/$/, "webhooks rotate-secret"],
  [/^\/webhooks\/\d+\/test\/$/, "webhooks test"],
];
const KEYS_PAGE = "https://cloud.vast.ai/manage-keys/";

/**
 * Vast.ai's error bodies: `{msg}`, `{message}`, `{error}`, or plain text (docs/vast-api.md), as
 * one line of at most 300 characters, whatever a proxy in between sent.
 */
export function apiMessage(body: string): string | undefined {
  const oneLine = (text: string) => text.replace(/\s+/g, " ").trim().slice(0, 300) || undefined;
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    for (const field of ["msg", "message", "error"]) {
      const value = parsed[field];
      if (typeof value === "string" && value.trim()) return oneLine(value);
    }
    return undefined;
  } catch {
    return oneLine(body);
  }
}

interface Call {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  body?: unknown;
  /** What the call is about, for messages: "the webhook 12". */
  subject?: string;
  /**
   * A create is not idempotent: after a 5xx or a dropped connection it may have happened, and a
   * retry would make a second webhook. Neither is a test: each call sends the adapter one event,
   * and its 502 means the adapter was not reached. Only a 429 (refused before any work) is
   * retried then.
   */
  idempotent?: boolean;
}

/** The route a path belongs to, for pacing: `/webhooks/12/` and `/webhooks/13/` are one. */
function routeOf(call: Call): string {
  return `${call.method} ${call.path.replace(/\/\d+\//g, "/{id}/")}`;
}

export class VastClient {
  private readonly apiKey: string;
  readonly baseUrl: string;
  private readonly retries: number;
  private readonly initialBackoffMs: number;
  private readonly rateLimitBackoffMs: number;
  private readonly routeSpacingMs: number;
  private readonly timeoutMs: number;
  private dispatcher: Dispatcher | undefined;
  /** When each route was last called, so bulk work (`cleanup --all`) is paced. */
  private readonly lastCallAt = new Map<string, number>();

  constructor(options: VastClientOptions) {
    this.apiKey = options.apiKey;
    this.baseUrl = (options.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, "");
    this.retries = options.retries ?? 3;
    this.initialBackoffMs = options.initialBackoffMs ?? 150;
    this.rateLimitBackoffMs = options.rateLimitBackoffMs ?? 1000;
    this.routeSpacingMs = options.routeSpacingMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.dispatcher = options.dispatcher;
  }

  /**
   * undici, loaded at the first call rather than with this module: `serve` imports the client
   * (and VastApiError) at start-up, and undici costs some 20 MB of memory that a serve which
   * never calls Vast.ai should not pay (issue 15).
   */
  private async undici(): Promise<{
    request: typeof import("undici").request;
    dispatcher: Dispatcher;
  }> {
    const { Agent, request } = await import("undici");
    const { timeoutMs } = this;
    this.dispatcher ??= new Agent({
      connectTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return { request, dispatcher: this.dispatcher };
  }

  async listNotificationTypes(): Promise<NotificationType[]> {
    const path = "/notification-types/";
    return (await this.call({ method: "GET", path }, NotificationTypesResponse)).notification_types;
  }

  async listWebhooks(): Promise<Webhook[]> {
    return (await this.call({ method: "GET", path: "/webhooks/" }, WebhookListResponse)).webhooks;
  }

  /** There is no "get one webhook" call: list and filter (docs/vast-api.md). */
  async findWebhook(id: number): Promise<Webhook | undefined> {
    return (await this.listWebhooks()).find((webhook) => webhook.id === id);
  }

  async createWebhook(input: CreateWebhookInput): Promise<WebhookWithSecret> {
    try {
      const call = { method: "POST", path: "/webhooks/", body: input, idempotent: false } as const;
      return (await this.call(call, WebhookCreatedResponse)).webhook;
    } catch (error) {
      throw await this.explainRefusedCreate(error);
    }
  }

  async updateWebhook(id: number, input: UpdateWebhookInput): Promise<Webhook> {
    const call = {
      method: "PUT",
      path: `/webhooks/${id}/`,
      body: input,
      subject: `webhook ${id}`,
    } as const;
    return (await this.call(call, WebhookUpdatedResponse)).webhook;
  }

  async deleteWebhook(id: number): Promise<void> {
    await this.call(
      { method: "DELETE", path: `/webhooks/${id}/`, subject: `webhook ${id}` },
      MessageResponse,
    );
  }

  /** True when it was there to delete; a webhook already gone is what the caller wanted anyway. */
  async deleteWebhookIfPresent(id: number): Promise<boolean> {
    try {
      await this.deleteWebhook(id);
      return true;
    } catch (error) {
      if (error instanceof VastApiError && error.reason === "not_found") return false;
      throw error;
    }
  }

  async rotateSecret(id: number): Promise<WebhookWithSecret> {
    const call = {
      method: "POST",
      path: `/webhooks/${id}/rotate-secret/`,
      subject: `webhook ${id}`,
    } as const;
    return (await this.call(call, SecretRotatedResponse)).webhook;
  }

  /**
   * Asks Vast.ai to deliver its `webhook_test` event to the webhook's URL now. Vast.ai answers once
   * the delivery is over: 200 when the adapter acknowledged it, 502 when it could not reach the
   * adapter, 400 when the adapter refused it. Neither failure is the API's, and neither is retried.
   */
  async testWebhook(id: number): Promise<TestDelivery> {
    const call = {
      method: "POST",
      path: `/webhooks/${id}/test/`,
      subject: `webhook ${id}`,
      idempotent: false,
    } as const;
    try {
      const answer = await this.call(call, TestWebhookResponse);
      return { webhookId: answer.webhook_id, eventId: answer.event_id };
    } catch (error) {
      throw explainFailedTest(error);
    }
  }

  async currentUser(): Promise<CurrentUser> {
    return this.call({ method: "GET", path: "/users/current/" }, CurrentUserResponse);
  }

  private async call<T extends z.ZodType>(call: Call, schema: T): Promise<z.infer<T>> {
    const url = `${this.baseUrl}${API_PREFIX}${call.path}`;
    for (let attempt = 0; ; attempt++) {
      let status: number;
      let text: string;
      await this.pace(call);
      const { request, dispatcher } = await this.undici();
      try {
        const response = await request(url, {
          method: call.method,
          dispatcher,
          headers: {
            authorization: `Bearer ${this.apiKey}`,
            accept: "application/json",
            "user-agent": USER_AGENT,
            ...(call.body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
        });
        status = response.statusCode;
        text = await response.body.text();
      } catch (error) {
        if (attempt < this.retries && call.idempotent !== false) {
          await sleep(this.initialBackoffMs * 1.5 ** attempt);
          continue;
        }
        const code = (error as { code?: string }).code ?? "network error";
        throw new VastApiError(
          "network",
          `Could not reach the Vast.ai API at ${this.baseUrl} (${code}).`,
          {
            hint: "Check your network connection, or VAST_API_URL if you set it.",
          },
        );
      }
      const retryable = call.idempotent === false ? status === 429 : RETRYABLE_STATUS.has(status);
      if (retryable && attempt < this.retries) {
        // Vast.ai sends no Retry-After. Its limits count per second, so a 429 waits seconds
        // (1, 2, 4 s); a 5xx waits as Vast's own CLI does (0.15 s, x1.5).
        await sleep(
          status === 429
            ? this.rateLimitBackoffMs * 2 ** attempt
            : this.initialBackoffMs * 1.5 ** attempt,
        );
        continue;
      }
      if (status >= 200 && status < 300) return this.parse(schema, text, call);
      throw this.failure(status, text, call);
    }
  }

  private parse<T extends z.ZodType>(schema: T, text: string, call: Call): z.infer<T> {
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = undefined;
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) return parsed.data;
    throw new VastApiError(
      "bad_response",
      `The Vast.ai API answered ${call.method} ${call.path} with something unexpected.`,
      {
        hint: "Vast.ai may have changed its API; please report this with DEBUG=vast-gchat output.",
      },
    );
  }

  private failure(status: number, text: string, call: Call): VastApiError {
    const said = apiMessage(text);
    const quoted = said ? ` Vast.ai said: "${said}".` : "";
    if (status === 401 || status === 403) {
      const route = SCOPED_ROUTES.find(([pattern]) => pattern.test(call.path))?.[1];
      if (route) {
        return new VastApiError(
          "unauthorized",
          `Vast.ai refused the API key for the ${route} route (${status}).${quoted}`,
          {
            status,
            hint: `A scoped key needs the "${route}" permission: add it to the key, or create a key with it at ${KEYS_PAGE}`,
          },
        );
      }
      return new VastApiError("unauthorized", `Vast.ai refused the API key (${status}).${quoted}`, {
        status,
        hint: `Check the key, or create one at ${KEYS_PAGE}`,
      });
    }
    if (status === 404 && call.subject) {
      return new VastApiError("not_found", `The ${call.subject} no longer exists on Vast.ai.`, {
        status,
        hint: "Run `vast-gchat init` to create a new one.",
      });
    }
    if (status === 429 || status >= 500) {
      const kind = status === 429 ? "rate_limited" : "unavailable";
      return new VastApiError(
        kind,
        `The Vast.ai API is not answering right now (${status}).${quoted}`,
        {
          status,
          hint: "Try again in a minute.",
        },
      );
    }
    return new VastApiError(
      "invalid",
      `Vast.ai refused ${call.method} ${call.path} (${status}).${quoted}`,
      {
        status,
      },
    );
  }

  /** A refused create at the limit: name the limit and the webhooks that take it up. */
  private async explainRefusedCreate(error: unknown): Promise<unknown> {
    if (!(error instanceof VastApiError) || error.reason !== "invalid") return error;
    let existing: Webhook[];
    try {
      existing = await this.listWebhooks();
    } catch {
      return error;
    }
    if (existing.length < MAX_WEBHOOKS_PER_USER) return error;
    const list = existing.map((w) => `${w.id} "${w.name ?? "(no name)"}"`).join(", ");
    return new VastApiError(
      "limit",
      `Vast.ai allows ${MAX_WEBHOOKS_PER_USER} webhooks per account and this one has ${existing.length}: ${list}. ${error.message}`,
      {
        ...(error.status === undefined ? {} : { status: error.status }),
        hint: "Delete one (`vast-gchat cleanup --all` removes the ones vast-gchat made), then run init again.",
      },
    );
  }

  /** Waits until the route's last call is `routeSpacingMs` old, then notes this one. */
  private async pace(call: Call): Promise<void> {
    const route = routeOf(call);
    const wait = (this.lastCallAt.get(route) ?? Number.NEGATIVE_INFINITY) + this.routeSpacingMs;
    const now = Date.now();
    if (wait > now) await sleep(wait - now);
    this.lastCallAt.set(route, Math.max(now, wait));
  }
}

/**
 * The test route's failures are about the adapter, not the API (docs/vast-api.md): a 502 is a
 * delivery that failed for a moment (no connection, a timeout, a 5xx: adapter or tunnel down),
 * a 400 one the adapter refused for good.
 */
function explainFailedTest(error: unknown): unknown {
  if (!(error instanceof VastApiError)) return error;
  const said = error.message.match(/ Vast\.ai said: ".*"\.$/)?.[0] ?? "";
  if (error.status === 502) {
    return new VastApiError(
      "adapter_unreachable",
      `Vast.ai could not reach the adapter with its test event (502).${said}`,
      {
        status: 502,
        hint: "Is `vast-gchat serve` running, and its tunnel up? `vast-gchat status` shows both.",
      },
    );
  }
  if (error.status === 400) {
    return new VastApiError(
      "adapter_refused",
      `The adapter refused Vast.ai's test event (400).${said}`,
      {
        status: 400,
        hint: "Most likely the signing secret does not match: if VAST_WEBHOOK_SECRET is set, check it; else run `vast-gchat rotate-secret` and restart `vast-gchat serve`.",
      },
    );
  }
  return error;
}
