import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { usageError } from "../errors.js";
import { createOutput, type OutputStreams } from "../output.js";
import { MAX_PREVIOUS_SECRET_MS } from "../serve-options.js";

/**
 * `rotate-secret`: a new signing secret from Vast.ai, stored at once. Vast.ai signs with the new
 * one from the moment it answers and refuses the old one, so the previous secret stays accepted here
 * only while a delivery signed before the rotation can still be valid (MAX_PREVIOUS_SECRET_MS), and
 * `--grace 0` refuses it at once, for a secret that leaked. A running adapter sees the change within
 * a second (secret-refresh.ts) and removes the previous secret when its grace ends.
 */
export interface RotateOptions extends GlobalOptions {
  grace?: string;
}

export interface RotateContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

export interface Grace {
  ms: number;
  /** What was asked, when it was longer than the bound and cut to it. */
  cutFrom?: string;
}

/**
 * `--grace`: `90s`, `2m`, or a bare number of minutes (what --grace took before, so scripts that
 * pass `--grace 0` or `--grace 5` keep their meaning). More than the bound is cut to it: a longer
 * grace protects no delivery and keeps a leaked secret useful.
 */
export function parseGrace(value: string | undefined): Grace {
  if (value === undefined) return { ms: MAX_PREVIOUS_SECRET_MS };
  const match = /^(\d+(?:\.\d+)?|\.\d+)\s*(s|m|)$/.exec(value.trim());
  if (!match) {
    throw usageError(
      `--grace must be a duration such as 90s or 2m (a bare number is minutes), or 0, not "${value}".`,
    );
  }
  const ms = Math.round(Number(match[1]) * (match[2] === "s" ? 1000 : 60_000));
  if (ms > MAX_PREVIOUS_SECRET_MS) return { ms: MAX_PREVIOUS_SECRET_MS, cutFrom: value };
  return { ms };
}

export async function rotateSecret(
  options: RotateOptions,
  context: RotateContext,
): Promise<number> {
  const out = createOutput(context, options);
  const grace = parseGrace(options.grace);
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

  // Counted from Vast.ai's answer: the last delivery signed with the old secret is older than that.
  const expiresAt = Date.now() + grace.ms;
  const keepPrevious = previous !== undefined && grace.ms > 0;
  // In this order, so that a serve reading the store between two writes always accepts the old
  // secret or the new one, and never an older previous one: the old secret as the previous one,
  // its expiry, the new secret, then the marker cleared. Each settings write is also what a
  // keychain-backed serve watches (the keychain has no file).
  if (keepPrevious) {
    config.secrets.set("previousWebhookSecret", previous);
    config.settings.update({ previousSecretExpiresAt: expiresAt });
  } else {
    config.secrets.delete("previousWebhookSecret");
    config.settings.update({ previousSecretExpiresAt: undefined });
  }
  config.secrets.set("webhookSecret", rotated.webhook_secret);
  config.settings.update({ rotationStartedAt: undefined });

  if (grace.cutFrom !== undefined) {
    out.warn(
      `--grace ${grace.cutFrom} is longer than a delivery signed with the old secret stays valid: it is accepted for ${seconds(MAX_PREVIOUS_SECRET_MS)} instead.`,
    );
  }
  if (context.env.VAST_WEBHOOK_SECRET) {
    out.warn("VAST_WEBHOOK_SECRET is set: it overrides the stored secret, so update or unset it.");
  }
  if (context.env.VAST_WEBHOOK_SECRET_PREVIOUS) {
    out.warn(
      `VAST_WEBHOOK_SECRET_PREVIOUS is set: a running adapter accepts it for at most ${seconds(MAX_PREVIOUS_SECRET_MS)} after it starts; remove it.`,
    );
  }
  out.result({
    ok: true,
    webhook_id: id,
    grace_seconds: keepPrevious ? grace.ms / 1000 : 0,
    previous_accepted_until: keepPrevious ? new Date(expiresAt).toISOString() : null,
  });
  out.line(`New secret stored in ${config.secrets.location}.`);
  if (keepPrevious) {
    out.line(
      `The previous secret stays accepted until ${new Date(expiresAt).toLocaleTimeString()} (${seconds(grace.ms)}), for deliveries Vast.ai signed before the rotation; then a running adapter removes it.`,
    );
  } else {
    out.line(
      "The previous secret is refused from now on; a running adapter drops it within a second.",
    );
  }
  return 0;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
