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
  // Vast.ai signs with the new secret from the moment it answers, before it is stored here: until
  // then a running adapter answers a mismatch with 503, which Vast.ai retries, rather than 401.
  config.settings.update({ rotationStartedAt: Date.now() });
  let rotated: Awaited<ReturnType<typeof client.rotateSecret>>;
  try {
    rotated = await out.step(`Rotating the signing secret of webhook ${id}`, () =>
      client.rotateSecret(id),
    );
  } catch (error) {
    config.settings.update({ rotationStartedAt: undefined });
    throw error;
  }

  const expiresAt = Date.now() + graceMinutes * 60_000;
  const keepPrevious = previous !== undefined && graceMinutes > 0;
  // The old secret first, then the new one: at every moment one of them is accepted.
  if (keepPrevious) config.secrets.set("previousWebhookSecret", previous);
  else config.secrets.delete("previousWebhookSecret");
  config.secrets.set("webhookSecret", rotated.webhook_secret);
  config.settings.update({
    previousSecretExpiresAt: keepPrevious ? expiresAt : undefined,
    rotationStartedAt: undefined,
  });

  if (context.env.VAST_WEBHOOK_SECRET) {
    out.warn("VAST_WEBHOOK_SECRET is set: it overrides the stored secret, so update or unset it.");
  }
  out.result({
    ok: true,
    webhook_id: id,
    previous_accepted_until: keepPrevious ? new Date(expiresAt).toISOString() : null,
  });
  out.line(`New secret stored in ${config.secrets.location}.`);
  if (keepPrevious) {
    out.line(
      `The previous secret stays accepted until ${new Date(expiresAt).toLocaleTimeString()} (${graceMinutes} min).`,
    );
  }
  return 0;
}
