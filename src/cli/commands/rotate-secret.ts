import { openConfig } from "../config-context.js";
import { usageError } from "../errors.js";
import { createOutput, type OutputStreams } from "../output.js";
import type { GlobalOptions } from "../program.js";

/**
 * `rotate-secret`: a new signing secret from Vast.ai, stored at once. The previous one stays
 * accepted for a grace period, because deliveries already signed with it may still be on their
 * way (Vast.ai retries). A running adapter picks the new one up on its first delivery.
 */
export interface RotateOptions extends GlobalOptions {
  grace?: string;
}

export interface RotateContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

export async function rotateSecret(
  options: RotateOptions,
  context: RotateContext,
): Promise<number> {
  const out = createOutput(context, options);
  const graceMinutes = Number(options.grace ?? 10);
  if (!Number.isFinite(graceMinutes) || graceMinutes < 0) {
    throw usageError(`--grace must be a number of minutes (0 or more), not "${options.grace}".`);
  }
  const config = openConfig(options, context.env);
  const id = config.webhookId();
  const client = config.client();
  const previous = config.secrets.get("webhookSecret");
  const rotated = await out.step(`Rotating the signing secret of webhook ${id}`, () =>
    client.rotateSecret(id),
  );

  const expiresAt = Date.now() + graceMinutes * 60_000;
  config.secrets.set("webhookSecret", rotated.webhook_secret);
  if (previous && graceMinutes > 0) config.secrets.set("previousWebhookSecret", previous);
  else config.secrets.delete("previousWebhookSecret");
  config.settings.update({ previousSecretExpiresAt: graceMinutes > 0 ? expiresAt : undefined });

  if (context.env.VAST_WEBHOOK_SECRET) {
    out.warn("VAST_WEBHOOK_SECRET is set: it overrides the stored secret, so update or unset it.");
  }
  out.result({
    ok: true,
    webhook_id: id,
    previous_accepted_until:
      graceMinutes > 0 && previous ? new Date(expiresAt).toISOString() : null,
  });
  out.line(`New secret stored in ${config.secrets.location}.`);
  if (previous && graceMinutes > 0) {
    out.line(
      `The previous secret stays accepted until ${new Date(expiresAt).toLocaleTimeString()} (${graceMinutes} min).`,
    );
  }
  return 0;
}
