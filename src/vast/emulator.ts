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
import { defaultNotificationTypes } from "./emulator-types.js";
import { sampleEvent } from "./sample-events.js";
import { signPayload } from "./signature.js";

/**
 * A local Vast.ai: the notification-webhooks API and its deliveries, as docs/vast-api.md describes
 * them. The `demo` command runs against it, and so does every test of a command that talks to
 * Vast.ai. What the docs leave open is marked "inferred".
 */
export interface EmulatorOptions {
  host?: string;
  port?: number;
  /** Accept and deliver to plain-http loopback webhook URLs (tests, demo). Default false: https only, as Vast.ai. */
  allowLoopbackHttp?: boolean;
  /** API keys it accepts, each for a user; default one key "emulator-key" for user id 4242. */
  apiKeys?: Record<string, { userId: number; scoped?: boolean }>;
  notificationTypes?: NotificationType[];
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
  requests: Array<{ method: string; path: string; authorized: boolean }>;
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
  /** A scoped key has been seen to get 401 here (docs/vast-api.md, "Errors"). */
  deniedToScopedKeys?: boolean;
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
  const knownKeys = new Set(catalogue.map((type) => type.key));
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

  const ownWebhook = (userId: number, id: number): StoredWebhook => {
    const webhook = store.get(id);
    // Another user's webhook answers exactly like a missing one: ids reveal nothing.
    if (!webhook || webhook.user_id !== userId) throw notFound();
    return webhook;
  };

  const createWebhook = ({ userId, raw }: Call): Reply => {
    const input = parseObject(raw);
    const webhook_url = checkWebhookUrl(input.webhook_url, allowLoopbackHttp);
    const event_types = checkEventTypes(input.event_types, knownKeys);
    const name = checkName(input.name);
    const owned = [...store.values()].filter((webhook) => webhook.user_id === userId).length;
    if (owned >= MAX_WEBHOOKS_PER_USER) {
      // Inferred: the docs say a fifth is refused, not how; 400 like other refusals.
      throw invalid(
        `Webhook limit reached: at most ${MAX_WEBHOOKS_PER_USER} webhooks per user. Delete one first.`,
      );
    }
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
        webhook: { ...publicView(webhook), webhook_secret: webhook.secret },
        enabled_notification_preferences: [...webhook.event_types],
      },
    };
  };

  const updateWebhook = ({ userId, id, raw }: Call): Reply => {
    const webhook = ownWebhook(userId, id);
    const input = parseObject(raw);
    if (!("name" in input) && !("webhook_url" in input) && !("event_types" in input)) {
      throw invalid("Nothing to update: send name, webhook_url or event_types.");
    }
    // Everything is checked before anything changes, so a refused update changes nothing.
    const changes: Partial<StoredWebhook> = {};
    if ("name" in input) changes.name = checkName(input.name);
    if ("webhook_url" in input) {
      changes.webhook_url = checkWebhookUrl(input.webhook_url, allowLoopbackHttp);
    }
    if ("event_types" in input) changes.event_types = checkEventTypes(input.event_types, knownKeys);
    Object.assign(webhook, changes, { updated_at: seconds() });
    return {
      body: {
        success: true,
        webhook: publicView(webhook),
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
      body: { success: true, webhook: { ...publicView(webhook), webhook_secret: webhook.secret } },
    };
  };

  const testWebhook = async ({ userId, id }: Call): Promise<Reply> => {
    const webhook = ownWebhook(userId, id);
    const refusal = targetRefusal(webhook.webhook_url, allowLoopbackHttp);
    if (refusal) throw invalid(refusal);
    // The test event is not retried (docs/vast-api.md). The real API may answer before the
    // delivery ends; answering after it keeps tests deterministic.
    const report = await deliver(webhook.id, { type: "webhook_test", maxRetries: 0 });
    const last = report.attempts.at(-1);
    if (!report.delivered) {
      // Inferred: the docs list 400 for /test/ without its text.
      const why = last?.error ?? `the receiver answered HTTP ${last?.status ?? "nothing"}`;
      throw new ApiError(400, "delivery_failed", `Test webhook delivery failed: ${why}`);
    }
    return { body: { success: true, msg: "Test webhook delivered" } };
  };

  const routes: Route[] = [
    {
      method: "GET",
      pattern: /^\/notification-types\/$/,
      deniedToScopedKeys: true,
      handle: () => ({ body: { success: true, notification_types: structuredClone(catalogue) } }),
    },
    {
      method: "GET",
      pattern: /^\/webhooks\/$/,
      handle: ({ userId }) => ({
        body: {
          success: true,
          webhooks: [...store.values()].filter((w) => w.user_id === userId).map(publicView),
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
        // Inferred: a few of the fields Vast.ai's user object has; `id` is the one that matters.
        body: {
          id: userId,
          username: `user${userId}`,
          email: `user${userId}@example.com`,
          fullname: null,
          credit: 25,
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

  const handleApi = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://emulator.invalid").pathname;
    const found = findRoutes(routes, path);
    const route = found?.routes.find((r) => r.method === method);
    const account = accounts.get(bearerKey(req.headers.authorization) ?? "");
    const scopedOut = account?.scoped === true && route?.deniedToScopedKeys === true;
    requests.push({ method, path, authorized: account !== undefined && !scopedOut });

    const failure = takeFailure(path);
    if (failure) return sendInjected(res, failure.status);
    if (raw === undefined) {
      throw new ApiError(413, "payload_too_large", "Request body is too large");
    }
    if (!found) throw new ApiError(404, "not_found", `No API route ${path}`);
    if (!route) {
      res.setHeader("allow", found.routes.map((r) => r.method).join(", "));
      throw new ApiError(405, "method_not_allowed", `Method ${method} not allowed on ${path}`);
    }
    if (!account) throw new ApiError(401, "unauthorized", "Invalid API key");
    if (scopedOut) {
      throw new ApiError(
        401,
        "unauthorized",
        "API key lacks the api.notification-types route access",
      );
    }
    const reply = await route.handle({ userId: account.userId, id: found.id, raw });
    sendJson(res, reply.status ?? 200, reply.body);
  };

  const server: Server = createServer((req, res) => {
    handleApi(req, res).catch((error: unknown) => {
      if (res.headersSent) return;
      if (error instanceof ApiError) {
        sendJson(res, error.status, { success: false, error: error.code, msg: error.message });
      } else {
        sendJson(res, 500, { success: false, error: "internal", msg: String(error) });
      }
    });
  });

  const attemptOnce = async (
    webhookId: number,
    attempt: number,
    event: { eventId: string; raw: Buffer },
    timeoutMs: number,
  ): Promise<{ result: DeliveryAttempt; outcome: Outcome }> => {
    // URL and secret are read at each attempt: a rotation or an edit applies at once.
    const webhook = store.get(webhookId);
    if (!webhook) return { result: { attempt, error: "webhook deleted" }, outcome: "permanent" };
    const refusal = targetRefusal(webhook.webhook_url, allowLoopbackHttp);
    if (refusal) return { result: { attempt, error: refusal }, outcome: "permanent" };
    if (closed()) return { result: { attempt, error: "emulator closed" }, outcome: "permanent" };
    const controller = new AbortController();
    inFlight.add(controller);
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const timestamp = String(Math.floor(now() / 1000));
      const response = await request(webhook.webhook_url, {
        method: "POST",
        dispatcher: agent,
        signal: controller.signal,
        // A fresh connection per attempt, as a separate delivery would; also keeps a receiver's
        // keep-alive timeout from failing an attempt that never reached it.
        reset: true,
        headers: {
          "content-type": "application/json",
          "x-vast-event-id": event.eventId,
          "x-vast-delivery-attempt": String(attempt),
          "x-vast-timestamp": timestamp,
          "x-vast-signature-256": signPayload(webhook.secret, timestamp, event.raw),
        },
        body: event.raw,
      });
      const answer = parseAnswer(await response.body.text());
      const status = response.statusCode;
      return { result: { attempt, status, answer }, outcome: classify(status) };
    } catch (error) {
      // An abort's own reason (timeout or close) says more than undici's generic abort error.
      const reason = errorText(controller.signal.aborted ? controller.signal.reason : error);
      // A timeout and a connection error are retried (docs/vast-api.md, "Delivery semantics").
      return { result: { attempt, error: reason }, outcome: closed() ? "permanent" : "retry" };
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
    while (copiesLeft > 0) {
      const { result, outcome } = await attemptOnce(
        webhookId,
        attempts.length + 1,
        { eventId, raw },
        timeoutMs,
      );
      attempts.push(result);
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
    return { eventId, body, attempts, delivered };
  };

  server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    webhooks: () => [...store.values()].sort((a, b) => a.id - b.id).map(publicView),
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

type Outcome = "success" | "retry" | "permanent";

/** docs/vast-api.md, "Delivery semantics": 2xx done; 408, 429, 5xx retried; the rest final. */
function classify(status: number): Outcome {
  if (status >= 200 && status < 300) return "success";
  if (status === 408 || status === 429 || status >= 500) return "retry";
  return "permanent";
}

function publicView(webhook: StoredWebhook): Webhook {
  const { secret: _secret, ...rest } = webhook;
  return { ...rest, event_types: [...rest.event_types] };
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

/** docs/vast-api.md, "Limits and validation": https, a host name, at most 2,048 characters. */
function checkWebhookUrl(value: unknown, allowLoopbackHttp: boolean): string {
  if (typeof value !== "string" || value === "") throw invalid("webhook_url is required");
  if (value.length > MAX_WEBHOOK_URL_LENGTH) {
    throw invalid(`webhook_url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid("webhook_url is not a valid URL");
  }
  const loopbackHttp =
    allowLoopbackHttp && url.protocol === "http:" && isLoopbackHost(url.hostname);
  if (url.protocol !== "https:" && !loopbackHttp) throw invalid("webhook_url must use https://");
  if (url.hostname === "") throw invalid("webhook_url must have a host name");
  // Private and loopback targets are refused at delivery time, not here: placeholders pass.
  return value;
}

function checkName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw invalid("name must be a string or null");
  if (value.length > MAX_WEBHOOK_NAME_LENGTH) {
    throw invalid(`name must be at most ${MAX_WEBHOOK_NAME_LENGTH} characters`);
  }
  return value;
}

function checkEventTypes(value: unknown, known: ReadonlySet<string>): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid("event_types must be a non-empty list of notification type keys");
  }
  const unknown = value.filter((key) => typeof key !== "string" || !known.has(key));
  if (unknown.length > 0) {
    throw invalid(
      `Unknown event type(s): ${unknown.map(String).join(", ")}. Use full keys from ` +
        "/notification-types/, such as client:low_credit",
    );
  }
  return [...new Set(value as string[])];
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
function sendInjected(res: ServerResponse, status: number): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(status === 429 ? RATE_LIMIT_TEXT : (STATUS_CODES[status] ?? "Error"));
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
