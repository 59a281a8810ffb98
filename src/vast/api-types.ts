import { randomBytes } from "node:crypto";
import { z } from "zod";

/**
 * The shapes of the Vast.ai notification-webhooks API (docs/vast-api.md, "Calls"), shared by the
 * client, which validates what comes back, and the emulator, which produces it. Objects are loose:
 * a field Vast.ai adds later must not break us.
 */
export const API_PREFIX = "/api/v0";

export const NotificationTypeSchema = z.looseObject({
  key: z.string(),
  slug: z.string(),
  context: z.string(),
  topic: z.string().nullable().optional(),
  category: z.string().nullable().optional(),
  display_name: z.string(),
  default_preferences: z
    .looseObject({ email: z.boolean().optional(), webhooks: z.boolean().optional() })
    .optional(),
  mandatory_email: z.boolean().optional(),
});
export type NotificationType = z.infer<typeof NotificationTypeSchema>;

export const WebhookSchema = z.looseObject({
  id: z.number().int(),
  user_id: z.number().int().optional(),
  name: z.string().nullable().optional(),
  webhook_url: z.string(),
  event_types: z.array(z.string()),
  created_at: z.number().optional(),
  updated_at: z.number().optional(),
});
export type Webhook = z.infer<typeof WebhookSchema>;

/** Only create and rotate-secret return the secret, and only then (docs/vast-api.md). */
export const WebhookWithSecretSchema = WebhookSchema.extend({ webhook_secret: z.string().min(1) });
export type WebhookWithSecret = z.infer<typeof WebhookWithSecretSchema>;

export const NotificationTypesResponse = z.looseObject({
  notification_types: z.array(NotificationTypeSchema),
});
export const WebhookListResponse = z.looseObject({ webhooks: z.array(WebhookSchema) });
export const WebhookCreatedResponse = z.looseObject({
  webhook: WebhookWithSecretSchema,
  enabled_notification_preferences: z.array(z.string()).optional(),
});
export const WebhookUpdatedResponse = z.looseObject({
  webhook: WebhookSchema,
  enabled_notification_preferences: z.array(z.string()).optional(),
});
export const SecretRotatedResponse = z.looseObject({ webhook: WebhookWithSecretSchema });
export const TestWebhookResponse = z.looseObject({
  success: z.boolean().optional(),
  webhook_id: z.number().int().optional(),
  event_id: z.string().optional(),
});
export const MessageResponse = z.looseObject({
  success: z.boolean().optional(),
  msg: z.string().optional(),
});
export const CurrentUserResponse = z.looseObject({
  id: z.number().int(),
  email: z.string().nullable().optional(),
  username: z.string().nullable().optional(),
});
export type CurrentUser = z.infer<typeof CurrentUserResponse>;

export interface CreateWebhookInput {
  name?: string;
  webhook_url: string;
  event_types: string[];
}
export type UpdateWebhookInput = Partial<CreateWebhookInput>;

/** Published limits (docs/vast-api.md, "Limits and validation"). */
export const MAX_WEBHOOKS_PER_USER = 4;
export const MAX_WEBHOOK_NAME_LENGTH = 120;
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** The tutorial's six client events: the default subscription. */
export const DEFAULT_EVENT_TYPES = [
  "client:low_credit",
  "client:instance_created",
  "client:instance_started",
  "client:instance_stopped",
  "client:outbid",
  "client:upcoming_downtime",
] as const;

/**
 * Where a webhook points until `serve` has a public URL. Vast.ai accepts any https URL at creation
 * but refuses one another webhook already holds ("This webhook URL is already registered"; whether
 * per account or across Vast.ai is unpublished), so each placeholder carries its own random part.
 */
export const PLACEHOLDER_URL_PREFIX = "https://example.com/vast-gchat-placeholder";

export function newPlaceholderUrl(): string {
  return `${PLACEHOLDER_URL_PREFIX}/${randomBytes(8).toString("hex")}`;
}

/** True for any placeholder vast-gchat made, including the fixed one earlier versions used. */
export function isPlaceholderUrl(url: string): boolean {
  return url === PLACEHOLDER_URL_PREFIX || url.startsWith(`${PLACEHOLDER_URL_PREFIX}/`);
}

/** Webhooks whose name starts with this were made by vast-gchat (`cleanup --all` finds them). */
export const WEBHOOK_NAME_MARK = "vast-gchat";
