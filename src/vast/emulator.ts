import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { type AddressInfo, BlockList, isIP } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { isLoopbackHost } from "../chat/webhook-url.js";
import {
  API_PREFIX,
  MAX_WEBHOOK_NAME_LENGTH,
  MAX_WEBHOOK_URL_LENGTH,
  MAX_WEBHOOKS_PER_USER,
  type NotificationType,
  type Webhook,
} from "./api-types.js";
import { deliveryHeaders } from "./delivery-headers.js";
import { type DeliveryOutcome, deliveryOutcome } from "./delivery-outcome.js";
import { defaultNotificationTypes } from "./emulator-types.js";
import { sampleEvent } from "./sample-events.js";
import { slugOf } from "./type-selection.js";

/**
 * A local Vast.ai: the notification-webhooks API and its deliveries, as Vast.ai publishes them
 * (docs/vast-api.md; the published facts it is checked against are test/fixtures/
 * vast-published-api.json, which names its sources). The `demo` command runs against it, and so
 * does every test of a command that talks to Vast.ai. Where the published files are silent it takes
 * the strictest reading, marked "unpublished". It only ever connects to loopback addresses: any
 * other webhook host is unreachable from here, as a connection error.
 */
export interface EmulatorOptions {
  host?: string;
  port?: number;
  /** Accept and deliver to plain-http loopback webhook URLs (tests, demo). Default false: https only, as Vast.ai. */
  allowLoopbackHttp?: boolean;
  /**
   * API keys it accepts, each for a user; default one key "emulator-key" for user id 4242. A
   * scoped key is refused on notification-types, rotate-secret and test, the routes docs/vast-api.md
   * says a scoped key may lack.
   */
  apiKeys?: Record<string, { userId: number; scoped?: boolean }>;
  notificationTypes?: NotificationType[];
  /**
   * How replies name event types: full keys (`client:low_credit`, the merged spec) or slugs
   * (`low_credit`, the backend's spec). Requests are accepted in both forms either way.
   */
  typeNaming?: "key" | "slug";
  /**
   * What `/test/` answers on success: the backend spec's `{success, webhook_id, event_id}` (default)
   * or the merged spec's `{success, msg}`.
   */
  testAnswer?: "backend" | "merged";
  /**
   * "This webhook URL is already registered": across every account (default, the strictest
   * reading; the scope is unpublished) or within one account.
   */
  urlUniqueness?: "global" | "account";
  /**
   * The least time between two calls of one route by one key; a call sooner gets 429 in plain
   * text without Retry-After (published: "a minimum interval between requests for a given endpoint
   * and identity", `x-rateLimit: 2.0`, unit unpublished). Default 0: no limit.
   */
  minIntervalMs?: number;
  /** Milliseconds clock, for created_at/updated_at, event times and signature timestamps. */
  now?: () => number;
}

export interface VastEmulator {
  /** Base URL, e.g. http://127.0.0.1:PORT (use as VAST_API_URL). */
  url: string;
  /** Current state, for assertions (no secrets). */
  webhooks(): Webhook[];
  /** For tests only. */
  secretOf(id: number): string | undefined;
  /** Delivers a signed event to a webhook's URL as Vast.ai would. */
  deliver(webhookId: number, options?: DeliverOptions): Promise<DeliveryReport>;
  /** Makes the next `count` API calls whose path matches answer `status`. */
  failNext(pathPattern: RegExp, status: number, count?: number): void;
  /** API call log (no secrets). */
  requests: Array<{
    method: string;
    path: string;
    authorized: boolean;
    userAgent: string | undefined;
    status: number;
  }>;
  close(): Promise<void>;
}

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

const DEFAULT_API_KEYS: NonNullable<EmulatorOptions["apiKeys"]> = {
  "emulator-key": { userId: 4242 },
};
const DELIVERY_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_DELAY_MS = 100;
const MAX_REQUEST_BYTES = 256 * 1024;
/** The published rate-limit answer: plain text, no Retry-After (docs/vast-api.md). */
const RATE_LIMIT_TEXT = "API requests too frequent";

interface StoredWebhook {
  id: number;
  user_id: number;
  name: string | null;
  webhook_url: string;
  event_types: string[];
  created_at: number;
  updated_at: number;
  secret: string;
}

interface Account {
  userId: number;
  scoped: boolean;
}

/** An API answer that is not a success; its body has the usual error shape. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (msg: string) => new ApiError(400, "invalid_args", msg);
const notFound = () => new ApiError(404, "not_found", "Webhook not found");
/** Routes a scoped key may be refused on, and the route access it lacks (text unpublished). */
const SCOPED_ROUTES: Array<[RegExp, string]> = [
  [/^\/notification-types\/$/, "api.notification-types"],
  [/^\/webhooks\/\d+\/rotate-secret\/$/, "api.webhooks.rotate-secret"],
  [/^\/webhooks\/\d+\/test\/$/, "api.webhooks.test"],
];

interface Reply {
  status?: number;
  body: unknown;
}

interface Call {
  userId: number;
  /** The numeric id in the path, when the route has one. */
  id: number;
  raw: Buffer;
}

interface Route {
  method: string;
  /** Matched against the path after /api/v0, with its trailing slash. */
  pattern: RegExp;
  handle(call: Call): Reply | Promise<Reply>;
}

interface Failure {
  pattern: RegExp;
  status: number;
  left: number;
}

export async function startVastEmulator(options: EmulatorOptions = {}): Promise<VastEmulator> {
  const now = options.now ?? Date.now;
  const allowLoopbackHttp = options.allowLoopbackHttp ?? false;
  const accounts = new Map<string, Account>(
    Object.entries(options.apiKeys ?? DEFAULT_API_KEYS).map(([key, value]) => [
      key,
      { userId: value.userId, scoped: value.scoped ?? false },
    ]),
  );
  const catalogue = options.notificationTypes ?? defaultNotificationTypes();
  const keyOfSlug = new Map(catalogue.map((type) => [slugOf(type.key), type.key]));
  const naming = options.typeNaming ?? "key";
  const named = (keys: readonly string[]) => (naming === "slug" ? keys.map(slugOf) : [...keys]);
  const urlUniqueness = options.urlUniqueness ?? "global";
  const minIntervalMs = options.minIntervalMs ?? 0;
  const lastCallAt = new Map<string, number>();
  const store = new Map<number, StoredWebhook>();
  const failures: Failure[] = [];
  const requests: VastEmulator["requests"] = [];
  let nextId = 1;
  // Aborted by close(): ends waits between retries and requests in flight.
  const lifetime = new AbortController();
  const closed = () => lifetime.signal.aborted;
  // Deliveries use their own connection pool, closed with the emulator; redirects are never
  // followed (undici's request does not follow them unless told to).
  const agent = new Agent();
  const inFlight = new Set<AbortController>();
  const seconds = () => now() / 1000;
  const view = (webhook: StoredWebhook) => publicView(webhook, named);

  const ownWebhook = (userId: number, id: number): StoredWebhook => {
    const webhook = store.get(id);
    // Another user's webhook answers exactly like a missing one: ids reveal nothing.
    if (!webhook || webhook.user_id !== userId) throw notFound();
    return webhook;
  };

  /**
   * Published for create and update. Whether a webhook's own URL counts is unpublished: the
   * strictest reading (it does) is taken, so a client must not PUT the URL a webhook already has.
   */
  const refuseRegisteredUrl = (userId: number, url: string) => {
    const taken = [...store.values()].some(
      (webhook) =>
        webhook.webhook_url === url && (urlUniqueness === "global" || webhook.user_id === userId),
    );
    if (taken) throw invalid("This webhook URL is already registered");
  };

  const createWebhook = ({ userId, raw }: Call): Reply => {
    const input = parseObject(raw);
    const webhook_url = checkWebhookUrl(input.webhook_url, allowLoopbackHttp);
    const event_types = checkEventTypes(input.event_types, keyOfSlug);
    const name = checkName(input.name);
    const owned = [...store.values()].filter((webhook) => webhook.user_id === userId).length;
    if (owned >= MAX_WEBHOOKS_PER_USER) {
      throw invalid(`Maximum of ${MAX_WEBHOOKS_PER_USER} webhooks per user`);
    }
    refuseRegisteredUrl(userId, webhook_url);
    const at = seconds();
    const webhook: StoredWebhook = {
      id: nextId++,
      user_id: userId,
      name,
      webhook_url,
      event_types,
      created_at: at,
      updated_at: at,
      secret: newSecret(),
    };
    store.set(webhook.id, webhook);
    return {
      body: {
        success: true,
        webhook: { ...view(webhook), webhook_secret: webhook.secret },
        enabled_notification_preferences: [...webhook.event_types],
      },
    };
  };

  const updateWebhook = ({ userId, id, raw }: Call): Reply => {
    const webhook = ownWebhook(userId, id);
    const input = parseObject(raw);
    if (!("name" in input) && !("webhook_url" in input) && !("event_types" in input)) {
      throw invalid("At least one of webhook_url, event_types, or name is required");
    }
    // Everything is checked before anything changes, so a refused update changes nothing.
    const changes: Partial<StoredWebhook> = {};
    if ("name" in input) changes.name = checkName(input.name);
    if ("webhook_url" in input) {
      changes.webhook_url = checkWebhookUrl(input.webhook_url, allowLoopbackHttp);
      refuseRegisteredUrl(userId, changes.webhook_url);
    }
    if ("event_types" in input) changes.event_types = checkEventTypes(input.event_types, keyOfSlug);
    Object.assign(webhook, changes, { updated_at: seconds() });
    return {
      body: {
        success: true,
        webhook: view(webhook),
        enabled_notification_preferences: [...webhook.event_types],
      },
    };
  };

  const deleteWebhook = ({ userId, id }: Call): Reply => {
    ownWebhook(userId, id);
    store.delete(id);
    return { body: { success: true } };
  };

  const rotateSecret = ({ userId, id }: Call): Reply => {
    const webhook = ownWebhook(userId, id);
    // Deliveries read the secret at each attempt, so the old one is never used again.
    webhook.secret = newSecret();
    webhook.updated_at = seconds();
    return {
      body: { success: true, webhook: { ...view(webhook), webhook_secret: webhook.secret } },
    };
  };

  /**
   * One test event, never retried; the answer comes once the delivery is over (published): 200
   * when the receiver acknowledged it, 400 "not deliverable" for a permanent failure (3xx, a 4xx
   * other than 408/429, or a target Vast.ai refuses: unpublished for that last case), 502 for a
   * transient one (408, 429, 5xx, a timeout, no connection).
   */
  const testWebhook = async ({ userId, id }: Call): Promise<Reply> => {
    const webhook = ownWebhook(userId, id);
    const report = await deliver(webhook.id, { type: "webhook_test", maxRetries: 0 });
    if (!report.delivered) {
      if (report.outcome === "retry") {
        throw new ApiError(502, "delivery_failed", "Webhook delivery failed");
      }
      throw invalid("Webhook URL is not deliverable");
    }
    if (options.testAnswer === "merged") {
      return { body: { success: true, msg: "Test webhook delivered" } };
    }
    return { body: { success: true, webhook_id: webhook.id, event_id: report.eventId } };
  };

  const routes: Route[] = [
    {
      method: "GET",
      pattern: /^\/notification-types\/$/,
      handle: () => ({ body: { success: true, notification_types: structuredClone(catalogue) } }),
    },
    {
      method: "GET",
      pattern: /^\/webhooks\/$/,
      handle: ({ userId }) => ({
        body: {
          success: true,
          webhooks: [...store.values()].filter((w) => w.user_id === userId).map(view),
        },
      }),
    },
    { method: "POST", pattern: /^\/webhooks\/$/, handle: createWebhook },
    { method: "PUT", pattern: /^\/webhooks\/(\d+)\/$/, handle: updateWebhook },
    { method: "DELETE", pattern: /^\/webhooks\/(\d+)\/$/, handle: deleteWebhook },
    { method: "POST", pattern: /^\/webhooks\/(\d+)\/rotate-secret\/$/, handle: rotateSecret },
    { method: "POST", pattern: /^\/webhooks\/(\d+)\/test\/$/, handle: testWebhook },
    {
      method: "GET",
      pattern: /^\/users\/current\/$/,
      handle: ({ userId }) => ({
        // The published fields (show_user.yaml); `id` is the one the client reads.
        body: {
          id: userId,
          key_id: 1,
          email: `user${userId}@example.com`,
          balance: 25,
          ssh_key: null,
          sid: null,
        },
      }),
    },
  ];

  /** Takes one injected failure for this path, if any is left. */
  const takeFailure = (path: string): Failure | undefined => {
    // String.search ignores a /g pattern's lastIndex, so the same RegExp matches every time.
    const failure = failures.find((f) => f.left > 0 && path.search(f.pattern) !== -1);
    if (failure) failure.left--;
    return failure;
  };

  /** True when this key called this route less than `minIntervalMs` ago; notes the call. */
  const tooSoon = (key: string, method: string, path: string): boolean => {
    if (minIntervalMs <= 0) return false;
    const route = `${key} ${method} ${path.replace(/\/\d+\//g, "/{id}/")}`;
    const at = now();
    const last = lastCallAt.get(route);
    lastCallAt.set(route, at);
    return last !== undefined && at - last < minIntervalMs;
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const raw = await readBody(req);
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://emulator.invalid").pathname;
    const found = findRoutes(routes, path);
    const route = found?.routes.find((r) => r.method === method);
    const key = bearerKey(req.headers.authorization) ?? "";
    const account = accounts.get(key);

    const failure = takeFailure(path);
    if (failure) return sendInjected(res, failure.status);
    if (tooSoon(key, method, path)) return sendInjected(res, 429);
    if (raw === undefined) {
      throw new ApiError(413, "payload_too_large", "Request body is too large");
    }
    if (!found) throw new ApiError(404, "not_found", `No API route ${path}`);
    if (!route) {
      res.setHeader("allow", found.routes.map((r) => r.method).join(", "));
      throw new ApiError(405, "method_not_allowed", `Method ${method} not allowed on ${path}`);
    }
    if (!account) throw new ApiError(401, "unauthorized", "Invalid API key");
    const rest = path.slice(API_PREFIX.length).replace(/\/?$/, "/");
    const lacking = account.scoped
      ? SCOPED_ROUTES.find(([pattern]) => pattern.test(rest))?.[1]
      : undefined;
    if (lacking) {
      throw new ApiError(401, "unauthorized", `API key lacks the ${lacking} route access`);
    }
    const reply = await route.handle({ userId: account.userId, id: found.id, raw });
    const status = reply.status ?? 200;
    sendJson(res, status, reply.body);
    return status;
  };

  const server: Server = createServer((req, res) => {
    const logged = {
      method: req.method ?? "GET",
      path: new URL(req.url ?? "/", "http://emulator.invalid").pathname,
      authorized: false,
      userAgent: req.headers["user-agent"],
      status: 0,
    };
    requests.push(logged);
    handleApi(req, res)
      .then((status) => {
        logged.status = status;
        logged.authorized = status < 400;
      })
      .catch((error: unknown) => {
        const apiError =
          error instanceof ApiError ? error : new ApiError(500, "internal", String(error));
        logged.status = apiError.status;
        logged.authorized = apiError.status !== 401;
        if (res.headersSent) return;
        sendJson(res, apiError.status, {
          success: false,
          error: apiError.code,
          msg: apiError.message,
        });
      });
  });

  const attemptOnce = async (
    webhookId: number,
    attempt: number,
    event: { eventId: string; raw: Buffer },
    timeoutMs: number,
  ): Promise<{ result: DeliveryAttempt; outcome: DeliveryOutcome }> => {
    // URL and secret are read at each attempt: a rotation or an edit applies at once.
    const webhook = store.get(webhookId);
    if (!webhook) return { result: { attempt, error: "webhook deleted" }, outcome: "permanent" };
    const refusal = targetRefusal(webhook.webhook_url, allowLoopbackHttp);
    if (refusal) return { result: { attempt, error: refusal }, outcome: "permanent" };
    if (!isLoopbackHost(new URL(webhook.webhook_url).hostname)) {
      // Tests and the demo never leave the machine: any other host is out of reach from here.
      const error = `cannot reach ${new URL(webhook.webhook_url).host} from the emulator (loopback only)`;
      return { result: { attempt, error }, outcome: deliveryOutcome("no answer") };
    }
    if (closed()) return { result: { attempt, error: "emulator closed" }, outcome: "permanent" };
    const controller = new AbortController();
    inFlight.add(controller);
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const response = await request(webhook.webhook_url, {
        method: "POST",
        dispatcher: agent,
        signal: controller.signal,
        // A fresh connection per attempt, as a separate delivery would; also keeps a receiver's
        // keep-alive timeout from failing an attempt that never reached it.
        reset: true,
        headers: deliveryHeaders({
          secret: webhook.secret,
          body: event.raw,
          eventId: event.eventId,
          attempt,
          timestampSeconds: Math.floor(now() / 1000),
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
      const outcome = closed() ? "permanent" : deliveryOutcome("no answer");
      return { result: { attempt, error: reason }, outcome };
    } finally {
      clearTimeout(timer);
      inFlight.delete(controller);
    }
  };

  /**
   * Sends `attempts` copies of one event (duplicates, as at-least-once delivery makes them), and
   * retries a copy that failed with a retryable answer while `maxRetries` lasts. A permanent
   * failure, or running out of retries, ends the delivery as it would end Vast's.
   */
  const deliver = async (
    webhookId: number,
    options: DeliverOptions = {},
  ): Promise<DeliveryReport> => {
    const webhook = store.get(webhookId);
    if (!webhook) throw new Error(`Vast emulator: no webhook ${webhookId}`);
    const body =
      options.body ??
      sampleEvent(options.type ?? "webhook_test", {
        subject: options.subject,
        message: options.message,
        userId: webhook.user_id,
        now: new Date(now()),
      });
    // The body's bytes are fixed once: a retry changes only the headers.
    const raw = Buffer.from(JSON.stringify(body), "utf8");
    const eventId = typeof body.event_id === "string" ? body.event_id : newEventId();
    const timeoutMs = options.timeoutMs ?? DELIVERY_TIMEOUT_MS;
    const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    let copiesLeft = Math.max(1, options.attempts ?? 1);
    let retriesLeft = Math.max(0, options.maxRetries ?? 0);
    const attempts: DeliveryAttempt[] = [];
    let delivered = false;
    let last: DeliveryOutcome = "permanent";
    while (copiesLeft > 0) {
      const { result, outcome } = await attemptOnce(
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
      } else if (outcome === "retry" && retriesLeft > 0 && !closed()) {
        retriesLeft--;
        await sleep(retryDelayMs, undefined, { signal: lifetime.signal }).catch(() => undefined);
      } else {
        break;
      }
    }
    return { eventId, body, attempts, delivered, outcome: last };
  };

  server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    webhooks: () => [...store.values()].sort((a, b) => a.id - b.id).map(view),
    secretOf: (id) => store.get(id)?.secret,
    deliver,
    failNext(pathPattern, status, count = 1) {
      failures.push({ pattern: pathPattern, status, left: count });
    },
    requests,
    close() {
      closing ??= (async () => {
        lifetime.abort();
        for (const controller of inFlight) controller.abort(new Error("emulator closed"));
        server.closeAllConnections();
        server.close();
        await once(server, "close");
        await agent.close();
      })();
      return closing;
    },
  };
}

function publicView(webhook: StoredWebhook, named: (keys: readonly string[]) => string[]): Webhook {
  const { secret: _secret, ...rest } = webhook;
  return { ...rest, event_types: named(rest.event_types) };
}

function newSecret(): string {
  return randomBytes(32).toString("hex");
}

function newEventId(): string {
  return randomUUID().replaceAll("-", "");
}

function findRoutes(routes: Route[], path: string): { routes: Route[]; id: number } | undefined {
  if (!path.startsWith(`${API_PREFIX}/`)) return undefined;
  // Vast's paths end in "/"; a client that leaves it off is still understood.
  let rest = path.slice(API_PREFIX.length);
  if (!rest.endsWith("/")) rest += "/";
  const matching = routes.flatMap((route) => {
    const match = route.pattern.exec(rest);
    return match ? [{ route, id: Number(match[1] ?? 0) }] : [];
  });
  const first = matching[0];
  return first ? { routes: matching.map((m) => m.route), id: first.id } : undefined;
}

function bearerKey(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/** The whole body, or undefined when it is larger than any real call sends. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk as Buffer);
  }
  return size <= MAX_REQUEST_BYTES ? Buffer.concat(chunks) : undefined;
}

function parseObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = raw.length === 0 ? {} : JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalid("Request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** The published create validation, messages verbatim (test/fixtures/vast-published-api.json). */
function checkWebhookUrl(value: unknown, allowLoopbackHttp: boolean): string {
  if (typeof value !== "string" || value === "") {
    throw invalid("webhook_url is required and must be a string");
  }
  if (value.length > MAX_WEBHOOK_URL_LENGTH) {
    throw invalid(`webhook_url exceeds maximum length of ${MAX_WEBHOOK_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // A port out of range makes the URL unparsable; anything else unparsable has no https scheme.
    if (/^https:\/\/[^/?#]*:[^/?#\]]*$|^https:\/\/[^/?#]*:[^/?#\]]*[/?#]/i.test(value)) {
      throw invalid("webhook_url has an invalid port");
    }
    throw invalid("webhook_url must use HTTPS");
  }
  if (url.port === "0") throw invalid("webhook_url has an invalid port");
  const loopbackHttp =
    allowLoopbackHttp && url.protocol === "http:" && isLoopbackHost(url.hostname);
  if (url.protocol !== "https:" && !loopbackHttp) throw invalid("webhook_url must use HTTPS");
  if (url.hostname === "") throw invalid("webhook_url must include a hostname");
  // Private and loopback targets are refused at delivery time, not here: placeholders pass.
  return value;
}

function checkName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  // Unpublished texts: the guide says at most 120 characters and no control characters.
  if (typeof value !== "string") throw invalid("name must be a string");
  if (value.length > MAX_WEBHOOK_NAME_LENGTH) {
    throw invalid(`name must be at most ${MAX_WEBHOOK_NAME_LENGTH} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw invalid("name must not contain control characters");
  return value;
}

/**
 * Keys or slugs, each type once (published: "Unknown event type: <slug>", "Duplicate event type:
 * <slug>"); stored as keys, named in replies as `typeNaming` says.
 */
function checkEventTypes(value: unknown, keyOfSlug: ReadonlyMap<string, string>): string[] {
  if (!Array.isArray(value)) throw invalid("event_types must be a list");
  if (value.length === 0) throw invalid("event_types must contain at least one event type");
  const keys = new Map<string, string>();
  for (const item of value) {
    const slug = typeof item === "string" ? slugOf(item) : String(item);
    const key = keyOfSlug.get(slug);
    // A key whose context is wrong (`host:low_credit`) names no type either.
    if (key === undefined || (typeof item === "string" && item !== slug && item !== key)) {
      throw invalid(`Unknown event type: ${slug}`);
    }
    if (keys.has(slug)) throw invalid(`Duplicate event type: ${slug}`);
    keys.set(slug, key);
  }
  return [...keys.values()];
}

/**
 * Address ranges Vast.ai will not deliver to. Only literal addresses are checked (inferred: the
 * real service presumably also checks what a name resolves to).
 */
const PRIVATE_RANGES = (() => {
  const ranges = new BlockList();
  for (const [address, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.168.0.0", 16],
  ] as const) {
    ranges.addSubnet(address, prefix, "ipv4");
  }
  for (const [address, prefix] of [
    ["::", 127],
    ["::ffff:0:0", 96],
    ["fc00::", 7],
    ["fe80::", 10],
  ] as const) {
    ranges.addSubnet(address, prefix, "ipv6");
  }
  return ranges;
})();

/** Why Vast.ai would refuse to deliver to this URL, or undefined when it would deliver. */
function targetRefusal(rawUrl: string, allowLoopback: boolean): string | undefined {
  const hostname = new URL(rawUrl).hostname;
  const bare = hostname.replace(/^\[(.*)\]$/, "$1");
  if (allowLoopback && isLoopbackHost(hostname)) return undefined;
  const family = isIP(bare);
  const isPrivate =
    bare === "localhost" ||
    bare.endsWith(".localhost") ||
    (family !== 0 && PRIVATE_RANGES.check(bare, family === 6 ? "ipv6" : "ipv4"));
  return isPrivate
    ? `webhook_url points to a private or loopback address (${hostname}); such targets are refused`
    : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** An injected failure: 429 as published, anything else as a proxy's plain-text page. */
function sendInjected(res: ServerResponse, status: number): number {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(status === 429 ? RATE_LIMIT_TEXT : (STATUS_CODES[status] ?? "Error"));
  return status;
}

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
