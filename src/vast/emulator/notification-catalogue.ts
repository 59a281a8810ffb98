import type { NotificationType } from "../api-types.js";

/**
 * The emulator's default catalogue for GET /notification-types/: every key docs/vast-api.md has
 * seen, in the documented shape (`key`, `slug`, `context`, `topic`, `category`, `display_name`,
 * `default_preferences`, `mandatory_email`). Only "Low balance notifications" is a published display
 * name; the others follow its style. `webhook_test` is not here: it is what `/test/` sends, not
 * something a webhook can subscribe to.
 */
type Row = [
  context: "client" | "host",
  slug: string,
  category: "billing" | "instance" | "account" | "host",
  displayName: string,
];

const ROWS: Row[] = [
  ["client", "low_credit", "billing", "Low balance notifications"],
  ["client", "billing_failed", "billing", "Failed payment notifications"],
  ["client", "payment_receipt", "billing", "Payment receipts"],
  ["client", "outbid", "instance", "Outbid notifications"],
  ["client", "instance_created", "instance", "Instance created notifications"],
  ["client", "instance_started", "instance", "Instance started notifications"],
  ["client", "instance_stopped", "instance", "Instance stopped notifications"],
  ["client", "instance_offline", "instance", "Instance offline notifications"],
  ["client", "instance_online", "instance", "Instance back online notifications"],
  ["client", "upcoming_downtime", "instance", "Upcoming downtime notifications"],
  ["host", "machine_offline", "host", "Machine offline notifications"],
  ["host", "machine_online", "host", "Machine back online notifications"],
  ["host", "machine_error", "host", "Machine error notifications"],
  ["host", "maintenance_scheduled", "host", "Scheduled maintenance notifications"],
];

/** Inferred: a failed payment is the one notice a user cannot opt out of by e-mail. */
const MANDATORY_EMAIL = new Set(["billing_failed"]);

/** A fresh copy each call, so a test that edits its catalogue cannot change another's. */
export function defaultNotificationTypes(): NotificationType[] {
  return ROWS.map(([context, slug, category, displayName]) => ({
    key: `${context}:${slug}`,
    slug,
    context,
    topic: null,
    category,
    display_name: displayName,
    // The documented defaults: e-mail on, webhooks off until a webhook subscribes.
    default_preferences: { email: true, webhooks: false },
    mandatory_email: MANDATORY_EMAIL.has(slug),
  }));
}
