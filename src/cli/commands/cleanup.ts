import { WEBHOOK_NAME_MARK, type Webhook } from "../../vast/api-types.js";
import { openConfig } from "../config-context.js";
import { createOutput, type OutputStreams } from "../output.js";
import type { GlobalOptions } from "../program.js";
import { createPrompter } from "../prompter.js";

/**
 * `cleanup`: the webhook deleted on Vast.ai (already gone is fine), the stored secrets and
 * settings removed, and each thing removed named. `--all` also offers the other webhooks whose
 * name marks them as made by vast-gchat.
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
  });
  const webhookId = config.settings.read().webhookId;
  const needsApi = webhookId !== undefined || options.all;
  const client = needsApi ? config.client() : undefined;

  const what =
    webhookId === undefined
      ? "the stored settings and secrets"
      : `webhook ${webhookId} and the stored settings and secrets`;
  if (!(await ask.confirm(`Delete ${what}?`, { flag: "--yes", default: true }))) {
    out.line("Nothing was changed.");
    return 0;
  }

  const deleted: number[] = [];
  if (client && webhookId !== undefined) {
    const existed = await out.step(
      `Deleting webhook ${webhookId}`,
      () => client.deleteWebhookIfPresent(webhookId),
      (gone) => (gone ? `Deleted webhook ${webhookId}` : `Webhook ${webhookId} was already gone`),
    );
    if (existed) deleted.push(webhookId);
  }
  if (client && options.all) {
    const ours = (await client.listWebhooks()).filter(
      (webhook) => webhook.id !== webhookId && (webhook.name ?? "").startsWith(WEBHOOK_NAME_MARK),
    );
    for (const webhook of ours) {
      if (
        await ask.confirm(`Also delete ${describe(webhook)}?`, { flag: "--yes", default: true })
      ) {
        if (await client.deleteWebhookIfPresent(webhook.id)) deleted.push(webhook.id);
        out.line(`Deleted ${describe(webhook)}`);
      }
    }
  }

  const secrets = config.secrets.clear();
  const settings = config.settings.clear();
  out.result({
    ok: true,
    deleted_webhooks: deleted,
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
  return 0;
}

function describe(webhook: Webhook): string {
  return `webhook ${webhook.id} "${webhook.name ?? ""}" (${webhook.webhook_url})`;
}
