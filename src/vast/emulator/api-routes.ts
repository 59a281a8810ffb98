import { API_PREFIX, type NotificationType } from "../api-types.js";
import { ApiError, invalid } from "./api-error.js";
import type { DeliverOptions, DeliveryReport } from "./delivery-engine.js";
import { parseObject } from "./webhook-input.js";
import type { WebhookRegistry } from "./webhook-registry.js";

/**
 * The routes of Vast.ai's API the emulator answers, each with the reply Vast.ai publishes for it
 * (docs/vast-api.md). A route sees an authorized call; authentication, limits and the error shape
 * are the server's (api-server.ts).
 */
export interface Call {
  userId: number;
  /** The numeric id in the path, when the route has one. */
  id: number;
  raw: Buffer;
}

export interface Reply {
  status?: number;
  body: unknown;
}

export interface Route {
  method: string;
  /** Matched against the path after /api/v0, with its trailing slash. */
  pattern: RegExp;
  /**
   * The route access a scoped key lacks here: the routes docs/vast-api.md says a scoped key may be
   * refused (the text is unpublished).
   */
  deniedToScopedKey?: string;
  handle(call: Call): Reply | Promise<Reply>;
}

export interface ApiRoutesOptions {
  registry: WebhookRegistry;
  catalogue: readonly NotificationType[];
  /**
   * What `/test/` answers on success: the backend spec's `{success, webhook_id, event_id}` or
   * the merged spec's `{success, msg}`.
   */
  testAnswer: "backend" | "merged";
  deliver(webhookId: number, options: DeliverOptions): Promise<DeliveryReport>;
}

export function createApiRoutes(options: ApiRoutesOptions): Route[] {
  const { registry } = options;

  /**
   * One test event, never retried; the answer comes once the delivery is over (published): 200
   * when the receiver acknowledged it, 400 "not deliverable" for a permanent failure (3xx, a 4xx
   * other than 408/429, or a target Vast.ai refuses: unpublished for that last case), 502 for a
   * transient one (408, 429, 5xx, a timeout, no connection).
   */
  const testWebhook = async ({ userId, id }: Call): Promise<Reply> => {
    const webhook = registry.own(userId, id);
    const report = await options.deliver(webhook.id, { type: "webhook_test", maxRetries: 0 });
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

  return [
    {
      method: "GET",
      pattern: /^\/notification-types\/$/,
      deniedToScopedKey: "api.notification-types",
      handle: () => ({
        body: { success: true, notification_types: structuredClone(options.catalogue) },
      }),
    },
    {
      method: "GET",
      pattern: /^\/webhooks\/$/,
      handle: ({ userId }) => ({ body: { success: true, webhooks: registry.ownedBy(userId) } }),
    },
    {
      method: "POST",
      pattern: /^\/webhooks\/$/,
      handle: ({ userId, raw }) => {
        const webhook = registry.create(userId, parseObject(raw));
        return {
          body: {
            success: true,
            // Only create and rotate-secret reveal the secret; every other reply leaves it out.
            webhook: { ...registry.view(webhook), webhook_secret: webhook.secret },
            enabled_notification_preferences: [...webhook.event_types],
          },
        };
      },
    },
    {
      method: "PUT",
      pattern: /^\/webhooks\/(\d+)\/$/,
      handle: ({ userId, id, raw }) => {
        const webhook = registry.update(userId, id, parseObject(raw));
        return {
          body: {
            success: true,
            webhook: registry.view(webhook),
            enabled_notification_preferences: [...webhook.event_types],
          },
        };
      },
    },
    {
      method: "DELETE",
      pattern: /^\/webhooks\/(\d+)\/$/,
      handle: ({ userId, id }) => {
        registry.delete(userId, id);
        return { body: { success: true } };
      },
    },
    {
      method: "POST",
      pattern: /^\/webhooks\/(\d+)\/rotate-secret\/$/,
      deniedToScopedKey: "api.webhooks.rotate-secret",
      handle: ({ userId, id }) => {
        const webhook = registry.rotateSecret(userId, id);
        return {
          body: {
            success: true,
            webhook: { ...registry.view(webhook), webhook_secret: webhook.secret },
          },
        };
      },
    },
    {
      method: "POST",
      pattern: /^\/webhooks\/(\d+)\/test\/$/,
      deniedToScopedKey: "api.webhooks.test",
      handle: testWebhook,
    },
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
}

/**
 * The routes whose pattern matches this path (one per method), and the id in it; undefined when
 * no route has this path.
 */
export function findRoutes(
  routes: readonly Route[],
  path: string,
): { routes: Route[]; id: number } | undefined {
  if (!path.startsWith(`${API_PREFIX}/`)) return undefined;
  // Vast's published paths all end in "/". What the service does with one that does not is not
  // published (docs/vast-api.md), so the stand-in refuses it: a client that drops the slash is
  // caught here rather than in front of the real service.
  const rest = path.slice(API_PREFIX.length);
  const matching = routes.flatMap((route) => {
    const match = route.pattern.exec(rest);
    return match ? [{ route, id: Number(match[1] ?? 0) }] : [];
  });
  const first = matching[0];
  return first ? { routes: matching.map((m) => m.route), id: first.id } : undefined;
}
