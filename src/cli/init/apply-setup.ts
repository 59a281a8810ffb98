import type { ParsedChatUrl } from "../../chat/webhook-url.js";
import { type Route, routeSecretName, routesOf } from "../../config/routes.js";
import type { SecretName } from "../../config/secret-store.js";
import type { TunnelChoice } from "../../config/settings.js";
import { DEFAULT_ROUTE } from "../../route-syntax.js";
import { DEFAULT_API_URL, type VastClient } from "../../vast/api-client.js";
import { newPlaceholderUrl, type Webhook } from "../../vast/api-types.js";
import type { ConfigContext } from "../config-context.js";
import { CliError } from "../errors.js";
import type { Output } from "../output.js";

/**
 * What `init` does to the account once every question is answered: create, update or replace the
 * webhook, store the secrets and settings, and undo the create if nothing could be stored. It never
 * asks anything: the plan holds every answer, so tests drive it against the emulator directly.
 */
export interface SetupAnswers {
  apiKey: string;
  /** The `default` route's Chat URL. */
  chat: ParsedChatUrl;
  /** The types chosen (`--events`): stored, and always part of the webhook's subscription. */
  eventTypes: string[];
  /**
   * What the webhook subscribes to: `eventTypes` and whatever the routes name
   * (vast/routing.ts, subscriptionOf). `eventTypes` when absent.
   */
  subscription?: string[];
  /** Routes besides `default` added in the wizard ("Add another Chat space?"). */
  extraRoutes?: RouteAnswer[];
  name: string;
  tunnel: TunnelChoice;
  tunnelCommand: string | undefined;
  publicUrl: string | undefined;
  port: number;
}

/** A route and its Chat URL, checked (and proved, unless --no-chat-check) when it was asked. */
export interface RouteAnswer {
  route: Route;
  chat: ParsedChatUrl;
}

export type SetupPlan = {
  answers: SetupAnswers;
  /** Where the webhook should point; undefined until `serve` has a tunnel (a placeholder waits). */
  webhookUrl: string | undefined;
} & ({ action: "create" } | { action: "update" | "keep" | "replace"; existing: Webhook });

export interface SetupDependencies {
  client: VastClient;
  config: ConfigContext;
  /** Where each step and warning goes: the command's output. */
  out: Pick<Output, "step" | "warn">;
}

export interface SetupResult {
  /** The webhook as Vast.ai last described it: the new, updated or kept one. */
  webhook: Webhook;
  /** Where the stored signing secret came from: a create, a rotation, or the one already kept. */
  secret: "created" | "rotated" | "kept";
  /** For a replace: whether the old webhook is gone (else the user was told how to delete it). */
  oldDeleted?: boolean;
}

/** Every secret a save may write (and the routes' Chat URLs): a failed save puts each back. */
const SAVED_SECRETS: readonly SecretName[] = [
  "webhookSecret",
  "previousWebhookSecret",
  "apiKey",
  "chatUrl",
];
type SecretsSnapshot = Map<SecretName, string | undefined>;

export async function applySetup(
  plan: SetupPlan,
  { client, config, out }: SetupDependencies,
): Promise<SetupResult> {
  // Read before anything changes: if the store cannot even be read, stop while nothing is made.
  const { answers, webhookUrl } = plan;
  const snapshot = snapshotSecrets(config, [
    ...SAVED_SECRETS,
    ...(answers.extraRoutes ?? []).map(({ route }) => routeSecretName(route.name)),
  ]);
  const eventTypes = answers.subscription ?? answers.eventTypes;
  const existing = plan.action === "create" ? undefined : plan.existing;

  let webhook: Webhook;
  let secret: string | undefined;
  if (plan.action === "create" || plan.action === "replace") {
    // A replaced webhook still holds its URL, and Vast.ai refuses a URL already registered: the
    // new one waits at a placeholder of its own until the old one is gone.
    const heldByOld = existing?.webhook_url === webhookUrl;
    const created = await out.step(
      "Creating the Vast.ai webhook",
      () =>
        client.createWebhook({
          name: answers.name,
          webhook_url: webhookUrl && !heldByOld ? webhookUrl : newPlaceholderUrl(),
          event_types: eventTypes,
        }),
      (w) => `Created webhook ${w.id} "${w.name ?? answers.name}"`,
    );
    webhook = created;
    secret = created.webhook_secret;
  } else {
    const old = plan.existing;
    webhook =
      plan.action === "keep"
        ? old
        : await out.step(
            `Updating webhook ${old.id}`,
            () =>
              client.updateWebhook(old.id, {
                name: answers.name,
                event_types: eventTypes,
                // Only a new URL: the one it holds could be refused as "already registered".
                ...(webhookUrl && webhookUrl !== old.webhook_url
                  ? { webhook_url: webhookUrl }
                  : {}),
              }),
            (w) => `Updated webhook ${w.id}`,
          );
    secret = await secretIfMissing(config, client, webhook.id, out);
  }

  try {
    saveConfiguration(config, answers, webhook, secret);
  } catch (error) {
    if (webhook.id !== existing?.id) await undoCreate(client, webhook.id, out);
    restoreSecrets(config, snapshot);
    throw new CliError(`Could not store the configuration: ${(error as Error).message}`, {
      hint: `Check that ${config.configDir} is writable, then run init again.`,
    });
  }

  const made = plan.action === "create" || plan.action === "replace";
  const result: SetupResult = {
    webhook,
    secret: secret === undefined ? "kept" : made ? "created" : "rotated",
  };
  if (plan.action === "replace") {
    result.oldDeleted = await deleteReplaced(client, plan.existing.id, out);
    if (result.oldDeleted && webhookUrl && webhook.webhook_url !== webhookUrl) {
      result.webhook = await pointAtUrl(client, webhook, webhookUrl, out);
    }
  }
  return result;
}

/**
 * A kept or updated webhook whose secret is not stored here (another machine set it up, or the
 * keychain was lost) cannot be verified: rotate it, since Vast.ai shows a secret only then.
 */
async function secretIfMissing(
  config: ConfigContext,
  client: VastClient,
  id: number,
  out: SetupDependencies["out"],
): Promise<string | undefined> {
  if (config.secrets.get("webhookSecret") || config.env.VAST_WEBHOOK_SECRET) return undefined;
  const rotated = await out.step(`Getting a new signing secret for webhook ${id}`, () =>
    client.rotateSecret(id),
  );
  out.warn(
    `No signing secret of webhook ${id} was kept here, so it was rotated; the new one is stored.`,
  );
  return rotated.webhook_secret;
}

function snapshotSecrets(config: ConfigContext, names: readonly SecretName[]): SecretsSnapshot {
  return new Map(names.map((name) => [name, config.secrets.get(name)]));
}

/** Puts the secrets back as they were, so a failed init leaves the working set-up working. */
function restoreSecrets(config: ConfigContext, snapshot: SecretsSnapshot): void {
  for (const [name, value] of snapshot) {
    try {
      if (value === undefined) config.secrets.delete(name);
      else config.secrets.set(name, value);
    } catch {
      // The store refuses writes; nothing more can be done here.
    }
  }
}

function saveConfiguration(
  config: ConfigContext,
  answers: SetupAnswers,
  webhook: Webhook,
  secret: string | undefined,
): void {
  if (secret !== undefined) {
    config.secrets.set("webhookSecret", secret);
    config.secrets.delete("previousWebhookSecret");
  }
  config.secrets.set("apiKey", answers.apiKey);
  config.secrets.set("chatUrl", answers.chat.url.href);
  for (const { route, chat } of answers.extraRoutes ?? []) {
    config.secrets.set(routeSecretName(route.name), chat.url.href);
  }
  const apiUrl = config.apiUrl();
  config.settings.update({
    apiUrl: apiUrl === DEFAULT_API_URL ? undefined : apiUrl,
    webhookId: webhook.id,
    webhookName: webhook.name ?? answers.name,
    eventTypes: answers.eventTypes,
    routes: routesAfterSetup(routesOf(config.settings.read()), answers),
    tunnel: answers.tunnel,
    tunnelCommand: answers.tunnelCommand,
    publicUrl: answers.publicUrl,
    port: answers.port,
    chatSpace: answers.chat.label,
    ...(secret !== undefined ? { previousSecretExpiresAt: undefined } : {}),
  });
}

/**
 * The routes once init is done: `default` (types `all` when it is new; a run again keeps the types
 * and mentions it was given) in the space just checked, the routes that were there, and those
 * added in the wizard (replacing any of the same name).
 */
function routesAfterSetup(before: Route[], answers: SetupAnswers): Route[] {
  const added = new Map(
    (answers.extraRoutes ?? []).map(({ route, chat }) => [
      route.name,
      { ...route, chatSpace: chat.label },
    ]),
  );
  const routes = before.map((route) =>
    route.name === DEFAULT_ROUTE
      ? { ...route, chatSpace: answers.chat.label }
      : (added.get(route.name) ?? route),
  );
  for (const [name, route] of added) {
    if (!routes.some((existing) => existing.name === name)) routes.push(route);
  }
  return routes;
}

/** The create succeeded but nothing could be stored: take the webhook away again, or say how. */
async function undoCreate(
  client: VastClient,
  id: number,
  out: SetupDependencies["out"],
): Promise<void> {
  try {
    await client.deleteWebhookIfPresent(id);
    out.warn(`Deleted the new webhook ${id} again, so nothing is left half set up.`);
  } catch {
    out.warn(
      `The new webhook ${id} could not be deleted. Delete it with:\n  ${deleteCommand(client, id)}`,
    );
  }
}

/** True when the old webhook is gone (or was already). */
async function deleteReplaced(
  client: VastClient,
  id: number,
  out: SetupDependencies["out"],
): Promise<boolean> {
  try {
    await out.step(`Deleting the old webhook ${id}`, () => client.deleteWebhookIfPresent(id));
    return true;
  } catch (error) {
    out.warn(
      `The old webhook ${id} could not be deleted (${(error as Error).message}). Delete it with \`vast-gchat cleanup --all\` or:\n  ${deleteCommand(client, id)}`,
    );
    return false;
  }
}

/** The replacement takes the old webhook's URL once that is free; `serve` does it otherwise. */
async function pointAtUrl(
  client: VastClient,
  webhook: Webhook,
  url: string,
  out: SetupDependencies["out"],
): Promise<Webhook> {
  try {
    return await out.step(`Pointing webhook ${webhook.id} at ${url}`, () =>
      client.updateWebhook(webhook.id, { webhook_url: url }),
    );
  } catch (error) {
    out.warn(
      `Webhook ${webhook.id} still points at a placeholder (${(error as Error).message}); \`vast-gchat serve\` points it at ${url} when it starts.`,
    );
    return webhook;
  }
}

function deleteCommand(client: VastClient, id: number): string {
  return `curl -X DELETE ${client.baseUrl}/api/v0/webhooks/${id}/ -H "Authorization: Bearer $VAST_API_KEY"`;
}
