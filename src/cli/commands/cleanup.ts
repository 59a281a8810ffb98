import { routeSecretName } from "../../config/routes.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import { VastApiError, type VastClient } from "../../vast/api-client.js";
import { WEBHOOK_NAME_MARK, type Webhook } from "../../vast/api-types.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { createOutput, type OutputStreams } from "../output.js";
import { createPrompter } from "../prompter.js";
import { readRoutes } from "../route-config.js";

/**
 * `cleanup`: the webhook deleted on Vast.ai (already gone is fine), the stored secrets and
 * settings removed, and each thing removed named. `--all` also offers the other webhooks whose
 * name marks them as made by vast-gchat. Every question is asked before anything is deleted.
 */
export interface CleanupOptions extends GlobalOptions {
  yes?: boolean;
  all?: boolean;
}

export interface CleanupContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
  stdin: { isTTY?: boolean };
}

export async function cleanup(options: CleanupOptions, context: CleanupContext): Promise<number> {
  const out = createOutput(context, options);
  const config = openConfig(options, context.env);
  const ask = createPrompter({
    interactive: Boolean(context.stdin.isTTY && context.stdout.isTTY),
    yes: Boolean(options.yes),
    interrupted: "Clean-up interrupted; nothing was changed.",
  });
  const webhookId = config.settings.read().webhookId;
  const client = webhookId !== undefined || options.all ? config.client() : undefined;

  const what =
    webhookId === undefined
      ? "the stored settings and secrets"
      : `webhook ${webhookId} and the stored settings and secrets`;
  if (!(await ask.confirm(`Delete ${what}?`, { flag: "--yes", default: true }))) {
    out.line("Nothing was changed.");
    return 0;
  }
  const others: Webhook[] = [];
  if (client && options.all) {
    const ours = (await client.listWebhooks()).filter(
      (webhook) => webhook.id !== webhookId && (webhook.name ?? "").startsWith(WEBHOOK_NAME_MARK),
    );
    for (const webhook of ours) {
      if (
        await ask.confirm(`Also delete ${describe(webhook)}?`, { flag: "--yes", default: true })
      ) {
        others.push(webhook);
      }
    }
  }

  const runtime = readRuntimeState(config.configDir);
  if (runtime) {
    out.warn(
      `An adapter is still running here (pid ${runtime.pid}); stop it, it has nothing left to receive.`,
    );
  }

  const deleted: number[] = [];
  const failed: number[] = [];
  for (const id of [...(webhookId === undefined ? [] : [webhookId]), ...others.map((w) => w.id)]) {
    if (!client) break;
    const outcome = await deleteWebhook(client, id);
    if (outcome === "deleted") deleted.push(id);
    if (outcome === "failed") failed.push(id);
    out.line(
      outcome === "deleted"
        ? `Deleted webhook ${id}`
        : outcome === "gone"
          ? `Webhook ${id} was already gone`
          : `Webhook ${id} could not be deleted`,
    );
  }

  // A keychain cannot be listed: the routes' Chat URLs are named (the file goes whole anyway).
  const routes = readRoutes(config.settings);
  const secrets = config.secrets.clear(routes.map((route) => routeSecretName(route.name)));
  const settings = config.settings.clear();
  out.result({
    ok: failed.length === 0,
    deleted_webhooks: deleted,
    not_deleted_webhooks: failed,
    removed_secrets: secrets,
    removed_settings: settings,
  });
  out.line(
    secrets.length
      ? `Removed the stored ${secrets.join(", ")} from ${config.secrets.location}.`
      : "No stored secrets to remove.",
  );
  out.line(
    settings.length
      ? `Removed the settings ${settings.join(", ")}.`
      : "No stored settings to remove.",
  );
  out.line("The event history (events.db) stays in the config directory; it holds no secrets.");
  if (failed.length && client) {
    out.warn(
      `Vast.ai still has webhook${failed.length > 1 ? "s" : ""} ${failed.join(", ")}. Delete ${failed.length > 1 ? "them" : "it"} in the console, or with:\n` +
        failed
          .map(
            (id) =>
              `  curl -X DELETE ${client.baseUrl}/api/v0/webhooks/${id}/ -H "Authorization: Bearer $VAST_API_KEY"`,
          )
          .join("\n"),
    );
    return 1;
  }
  return 0;
}

function describe(webhook: Webhook): string {
  return `webhook ${webhook.id} "${webhook.name ?? ""}" (${webhook.webhook_url})`;
}

/**
 * A webhook Vast.ai will not delete (key refused, API down) does not stop the local clean-up: the
 * user asked for the secrets to go, and is told which webhook is left and how to remove it.
 */
async function deleteWebhook(
  client: VastClient,
  id: number,
): Promise<"deleted" | "gone" | "failed"> {
  try {
    return (await client.deleteWebhookIfPresent(id)) ? "deleted" : "gone";
  } catch (error) {
    if (error instanceof VastApiError) return "failed";
    throw error;
  }
}
