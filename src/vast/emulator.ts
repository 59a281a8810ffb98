import type { NotificationType, Webhook } from "./api-types.js";
import { createApiRoutes } from "./emulator/api-routes.js";
import { type ApiAccount, type ApiCallRecord, startApiServer } from "./emulator/api-server.js";
import {
  type DeliverOptions,
  DeliveryEngine,
  type DeliveryReport,
} from "./emulator/delivery-engine.js";
import { defaultNotificationTypes } from "./emulator/notification-catalogue.js";
import { WebhookRegistry } from "./emulator/webhook-registry.js";

export type { ApiCallRecord } from "./emulator/api-server.js";
export type {
  DeliverOptions,
  DeliveryAttempt,
  DeliveryReport,
} from "./emulator/delivery-engine.js";

/**
 * A local Vast.ai: the notification-webhooks API and its deliveries, as Vast.ai publishes them
 * (docs/vast-api.md; the published facts it is checked against are test/fixtures/
 * vast-published-api.json, which names its sources). The `demo` command runs against it, and so
 * does every test of a command that talks to Vast.ai. Where the published files are silent it takes
 * the strictest reading, marked "unpublished". It only ever connects to loopback addresses: any
 * other webhook host is unreachable from here, as a connection error.
 *
 * This module assembles three parts, each readable alone (src/vast/emulator/): the accounts'
 * webhooks and the rules a change must pass (webhook-registry.ts, webhook-input.ts), the HTTP API
 * over them (api-server.ts, api-routes.ts) and the delivery engine (delivery-engine.ts,
 * delivery-target.ts).
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
  /**
   * Test controls for what a user can do in Vast.ai's web console, which has no API route of ours:
   * change a webhook (checked by the same rules as the API's PUT) or delete it.
   */
  consoleUpdate(id: number, changes: { webhook_url?: string; event_types?: string[] }): void;
  consoleDelete(id: number): void;
  /**
   * A test control: the next `count` deliveries are answered 200 without reaching the webhook's
   * URL, as if something else there had acknowledged them (delivery-engine.ts, dropNext).
   */
  dropNextDeliveries(count?: number): void;
  /** API call log (no secrets). */
  requests: ApiCallRecord[];
  close(): Promise<void>;
}

const DEFAULT_API_KEYS: NonNullable<EmulatorOptions["apiKeys"]> = {
  "emulator-key": { userId: 4242 },
};

export async function startVastEmulator(options: EmulatorOptions = {}): Promise<VastEmulator> {
  const now = options.now ?? Date.now;
  const allowLoopbackHttp = options.allowLoopbackHttp ?? false;
  const catalogue = options.notificationTypes ?? defaultNotificationTypes();
  const registry = new WebhookRegistry({
    catalogue,
    typeNaming: options.typeNaming ?? "key",
    urlUniqueness: options.urlUniqueness ?? "global",
    allowLoopbackHttp,
    now,
  });
  const deliveries = new DeliveryEngine({
    webhookById: (id) => registry.get(id),
    allowLoopbackHttp,
    now,
  });
  const deliver = (webhookId: number, deliverOptions: DeliverOptions = {}) =>
    deliveries.deliver(webhookId, deliverOptions);
  const accounts = new Map<string, ApiAccount>(
    Object.entries(options.apiKeys ?? DEFAULT_API_KEYS).map(([key, value]) => [
      key,
      { userId: value.userId, scoped: value.scoped ?? false },
    ]),
  );
  const api = await startApiServer({
    routes: createApiRoutes({
      registry,
      catalogue,
      testAnswer: options.testAnswer ?? "backend",
      deliver,
    }),
    accounts,
    minIntervalMs: options.minIntervalMs ?? 0,
    now,
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
  });

  let closing: Promise<void> | undefined;
  return {
    url: api.url,
    webhooks: () => registry.all(),
    secretOf: (id) => registry.get(id)?.secret,
    deliver,
    failNext: (pathPattern, status, count = 1) => api.failNext(pathPattern, status, count),
    consoleUpdate(id, changes) {
      const webhook = registry.get(id);
      if (!webhook) throw new Error(`Vast emulator: no webhook ${id}`);
      registry.update(webhook.user_id, id, { ...changes });
    },
    consoleDelete(id) {
      const webhook = registry.get(id);
      if (!webhook) throw new Error(`Vast emulator: no webhook ${id}`);
      registry.delete(webhook.user_id, id);
    },
    dropNextDeliveries: (count = 1) => deliveries.dropNext(count),
    requests: api.requests,
    close() {
      closing ??= (async () => {
        // Deliveries stop first, so no attempt starts or waits on while the server closes.
        const deliveriesClosed = deliveries.close();
        await api.close();
        await deliveriesClosed;
      })();
      return closing;
    },
  };
}
