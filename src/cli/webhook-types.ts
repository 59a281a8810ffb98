import type { Route } from "../config/routes.js";
import { VastApiError, type VastClient } from "../vast/api-client.js";
import type { NotificationType } from "../vast/api-types.js";
import { sameSubscription, subscriptionOf } from "../vast/routing.js";
import { slugOf } from "../vast/type-selection.js";
import type { ConfigContext } from "./config-context.js";
import type { Output } from "./output.js";

/**
 * The Vast.ai webhook's event types kept to what the routes need (vast/routing.ts,
 * subscriptionOf: the types `init` chose and every type a route names), after a route is added or
 * removed. Never an empty list. A set-up without a webhook here, or without an API key, is told so
 * and goes on: the route is stored either way.
 */
export type WebhookTypesOutcome =
  | { kind: "updated"; id: number; before: string[]; after: string[] }
  | { kind: "unchanged"; id: number; types: string[] }
  | { kind: "no-webhook" }
  | { kind: "no-api-key"; id: number; wanted: string[] }
  | { kind: "gone"; id: number };

/**
 * The account's catalogue when an API key is here: undefined without a key, or (with a warning)
 * when a scoped key may not read it; then the types vast-gchat knows stand in.
 */
export async function catalogueIfKey(
  config: ConfigContext,
  out: Pick<Output, "step" | "warn">,
): Promise<NotificationType[] | undefined> {
  if (!config.findApiKey()) return undefined;
  const client = config.client();
  try {
    return await out.step("Fetching notification types", () => client.listNotificationTypes());
  } catch (error) {
    if (!(error instanceof VastApiError && error.reason === "unauthorized")) throw error;
    out.warn(`${error.message} Checking the types against those vast-gchat knows.`);
    return undefined;
  }
}

export async function updateWebhookTypes(
  config: ConfigContext,
  routes: readonly Route[],
  catalogue: NotificationType[] | undefined,
  out: Pick<Output, "step">,
): Promise<WebhookTypesOutcome> {
  const settings = config.settings.read();
  const id = settings.webhookId;
  if (id === undefined) return { kind: "no-webhook" };
  if (!config.findApiKey()) {
    return {
      kind: "no-api-key",
      id,
      wanted: subscriptionOf(routes, catalogue, settings.eventTypes ?? []),
    };
  }
  const client: VastClient = config.client();
  const webhook = await client.findWebhook(id);
  if (!webhook) return { kind: "gone", id };
  // What init chose; a set-up that never stored it keeps what the webhook has.
  const base = settings.eventTypes ?? webhook.event_types;
  const wanted = subscriptionOf(routes, catalogue, base);
  if (wanted.length === 0 || sameSubscription(wanted, webhook.event_types)) {
    return { kind: "unchanged", id, types: webhook.event_types };
  }
  const updated = await out.step(
    `Updating the event types of webhook ${id}`,
    () => client.updateWebhook(id, { event_types: wanted }),
    () => `Updated the event types of webhook ${id}`,
  );
  return { kind: "updated", id, before: webhook.event_types, after: updated.event_types };
}

/** For people: what changed, e.g. "+billing_failed, +payment_receipt, -machine_error". */
export function describeChange(before: readonly string[], after: readonly string[]): string {
  const was = new Set(before.map(slugOf));
  const now = new Set(after.map(slugOf));
  const added = [...now].filter((slug) => !was.has(slug)).map((slug) => `+${slug}`);
  const removed = [...was].filter((slug) => !now.has(slug)).map((slug) => `-${slug}`);
  return [...added, ...removed].join(", ");
}

/** One sentence a command prints for each outcome; `warn` when the user must act. */
export function reportWebhookTypes(
  outcome: WebhookTypesOutcome,
  out: Pick<Output, "line" | "warn">,
): void {
  switch (outcome.kind) {
    case "updated":
      out.line(
        `Webhook ${outcome.id} now subscribes to ${outcome.after.length} event types (${describeChange(outcome.before, outcome.after)}).`,
      );
      return;
    case "unchanged":
      out.line(`Webhook ${outcome.id} already subscribes to every type the routes need.`);
      return;
    case "no-webhook":
      out.warn(
        "No Vast.ai webhook is set up here, so none was updated: `vast-gchat init` creates one that subscribes to what the routes need.",
      );
      return;
    case "no-api-key":
      out.warn(
        `No Vast.ai API key here, so webhook ${outcome.id} was not updated; the routes need ${outcome.wanted.map(slugOf).join(", ")}. With VAST_API_KEY set, \`vast-gchat init --existing update\` (or the next \`route add\` or \`route remove\`) updates it.`,
      );
      return;
    case "gone":
      out.warn(
        `Webhook ${outcome.id} no longer exists on Vast.ai, so none was updated: \`vast-gchat init\` sets up a new one.`,
      );
      return;
  }
}

/** The outcome for --json: what the webhook subscribes to now, or why it was not updated. */
export function webhookTypesJson(outcome: WebhookTypesOutcome): Record<string, unknown> {
  switch (outcome.kind) {
    case "updated":
      return { id: outcome.id, updated: true, event_types: outcome.after };
    case "unchanged":
      return { id: outcome.id, updated: false, event_types: outcome.types };
    case "no-api-key":
      return { id: outcome.id, updated: false, reason: "no_api_key", needed: outcome.wanted };
    case "gone":
      return { id: outcome.id, updated: false, reason: "webhook_gone" };
    case "no-webhook":
      return { id: null, updated: false, reason: "no_webhook" };
  }
}
