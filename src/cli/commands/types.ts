import chalk from "chalk";
import type { NotificationType } from "../../vast/api-types.js";
import { GROUP_ORDER, groupOfType } from "../../vast/event-types.js";
import { slugOf, subscribedSlugs } from "../../vast/type-selection.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { createOutput, type OutputStreams } from "../output.js";

/** `types`: what the account can subscribe to, by group, marking the configured webhook's. */
export interface TypesContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

function channels(type: NotificationType): string {
  const defaults = type.default_preferences ?? {};
  const on = Object.entries(defaults)
    .filter(([, enabled]) => enabled === true)
    .map(([channel]) => channel);
  return on.length ? on.join(", ") : "none";
}

export async function types(options: GlobalOptions, context: TypesContext): Promise<number> {
  const out = createOutput(context, options);
  const config = openConfig(options, context.env);
  const client = config.client();
  const catalogue = await out.step("Fetching notification types", () =>
    client.listNotificationTypes(),
  );

  // What the webhook really subscribes to, when there is one; else what init stored. Vast.ai
  // may name them by key or by slug: compare by slug.
  const settings = config.settings.read();
  const webhookId = settings.webhookId;
  const webhook = webhookId === undefined ? undefined : await client.findWebhook(webhookId);
  const subscribed = subscribedSlugs(webhook?.event_types ?? settings.eventTypes ?? []);

  const rows = catalogue.map((type) => ({
    key: type.key,
    name: type.display_name,
    group: groupOfType(type),
    default_channels: channels(type),
    subscribed: subscribed.has(slugOf(type.key)),
  }));
  if (out.json) {
    out.result({ webhook_id: webhook?.id ?? null, types: rows });
    return 0;
  }
  const keyWidth = Math.max(...rows.map((row) => row.key.length), 3);
  const nameWidth = Math.max(...rows.map((row) => row.name.length), 4);
  for (const group of GROUP_ORDER) {
    const inGroup = rows.filter((row) => row.group === group);
    if (!inGroup.length) continue;
    out.line(chalk.bold(`\n${group}`));
    for (const row of inGroup) {
      const mark = row.subscribed ? chalk.green("✓") : " ";
      out.line(
        `  ${mark} ${row.key.padEnd(keyWidth)}  ${row.name.padEnd(nameWidth)}  ${chalk.dim(`default: ${row.default_channels}`)}`,
      );
    }
  }
  out.line(
    webhook
      ? `\n✓ = webhook ${webhook.id} subscribes to it.`
      : "\nNo webhook is set up yet: `vast-gchat init` subscribes one.",
  );
  return 0;
}
