import { type ParsedChatUrl, parseChatUrl } from "../chat/webhook-url.js";
import { MAX_SIGNATURE_AGE_SECONDS } from "../vast/signature.js";
import type { ConfigContext } from "./config-context.js";
import { usageError } from "./errors.js";
import { DEFAULT_PATH, DEFAULT_PORT } from "./serve-defaults.js";

export { DEFAULT_HOST, DEFAULT_PATH, DEFAULT_PORT } from "./serve-defaults.js";

/**
 * What `serve` and `trigger` need, from flags and the tutorial's environment variables
 * (a flag beats the environment). Until `init` stores settings, the environment is the source.
 */

export function parsePort(value: string | undefined, source: string): number {
  if (value === undefined || value === "") return DEFAULT_PORT;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 0 || port > 65535) {
    throw usageError(`${source} must be a port number from 0 to 65535, not "${value}".`);
  }
  return port;
}

export function parseWebhookPath(value: string | undefined): string {
  const path = value ?? DEFAULT_PATH;
  if (!path.startsWith("/") || /[?#\s]/.test(path)) {
    throw usageError(
      `--path must start with "/" and contain no spaces, "?" or "#", not "${path}".`,
    );
  }
  if (path === "/health" || path === "/metrics") {
    throw usageError(`--path ${path} is taken by the adapter itself; choose another path.`);
  }
  return path;
}

/**
 * A signing secret copied with a stray space or newline would fail every signature, silently;
 * catch that at start-up instead.
 */
export function checkWebhookSecret(value: string | undefined, variable: string): string {
  if (value === undefined || value === "") {
    throw usageError(
      `No webhook signing secret: run \`vast-gchat init\`, or set ${variable}.`,
      "It is the webhook_secret Vast.ai returned when the webhook was created.",
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
  if (/[\s\u0000-\u001f\u007f]/.test(value)) {
    throw usageError(
      `${variable} contains spaces, line breaks or control characters, so no signature would match.`,
      "Copy the webhook_secret again, without surrounding quotes or whitespace.",
    );
  }
  return value;
}

/** What `init` stored, for values the environment does not give. */
export interface StoredServeValues {
  webhookSecret?: string | undefined;
  previousWebhookSecret?: string | undefined;
  /** The previous secret is accepted until then (ms since epoch), after a rotation. */
  previousSecretExpiresAt?: number | undefined;
  /** Set while rotate-secret runs (see settings.ts). */
  rotationStartedAt?: number | undefined;
  chatUrl?: string | undefined;
}

/** What `init` stored that serve needs, read afresh; nothing when serve runs on the environment. */
export function readStoredServeValues(
  config: Pick<ConfigContext, "settings" | "secrets"> | undefined,
): StoredServeValues {
  if (!config) return {};
  const { previousSecretExpiresAt, rotationStartedAt } = config.settings.read();
  return {
    webhookSecret: config.secrets.get("webhookSecret"),
    previousWebhookSecret: config.secrets.get("previousWebhookSecret"),
    previousSecretExpiresAt,
    rotationStartedAt,
    chatUrl: config.secrets.get("chatUrl"),
  };
}

/** The Chat URL is a secret, so it comes from the environment or the secret store, never a flag (flags show in `ps`). */
export function resolveChatUrl(
  env: NodeJS.ProcessEnv,
  stored: StoredServeValues = {},
): ParsedChatUrl {
  const raw = env.GOOGLE_CHAT_URL || stored.chatUrl;
  if (!raw) {
    throw usageError(
      "No Google Chat URL: run `vast-gchat init`, or set GOOGLE_CHAT_URL.",
      "In the Chat space: Apps & integrations > Webhooks > Add webhook, then copy its URL.",
    );
  }
  // A URL that is not usable throws ChatUrlError, a usage error already (exit 2).
  return parseChatUrl(raw);
}

/**
 * The longest a previous secret can matter after a rotation. Vast.ai signs with the new secret from
 * the moment it answers ("the prior secret is invalidated immediately", docs/vast-api.md), so only
 * deliveries signed before then carry the old one, and we accept those only while their signed
 * timestamp is within MAX_SIGNATURE_AGE_SECONDS of our clock. Accepting it any longer protects no
 * delivery and keeps a leaked secret useful.
 */
export const MAX_SIGNATURE_AGE_MS = MAX_SIGNATURE_AGE_SECONDS * 1000;
/**
 * The 300 s count from Vast.ai's clock (the timestamp it signs), our grace from ours (when its
 * answer reached us): a Vast.ai clock ahead of ours keeps its last old-signed deliveries valid here
 * that much longer. NTP-synced clocks differ by well under a second; 30 s also covers a host left
 * unsynced for weeks and the answer's time on the network, and is not minutes.
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 30_000;
/** The default, and the most, a previous secret stays accepted: 330 s. */
export const MAX_PREVIOUS_SECRET_MS = MAX_SIGNATURE_AGE_MS + CLOCK_SKEW_ALLOWANCE_MS;

/**
 * The secrets a delivery may be signed with: VAST_WEBHOOK_SECRET (and _PREVIOUS until
 * `envPreviousUntil`) when set, else the stored secret and, until its grace period ends, the one
 * it replaced.
 */
export function resolveSecrets(
  env: NodeJS.ProcessEnv,
  stored: StoredServeValues = {},
  now = Date.now(),
  envPreviousUntil = Number.POSITIVE_INFINITY,
): [current: string, ...previous: string[]] {
  if (env.VAST_WEBHOOK_SECRET) {
    const current = checkWebhookSecret(env.VAST_WEBHOOK_SECRET, "VAST_WEBHOOK_SECRET");
    const previous = env.VAST_WEBHOOK_SECRET_PREVIOUS;
    if (!previous) return [current];
    const checked = checkWebhookSecret(previous, "VAST_WEBHOOK_SECRET_PREVIOUS");
    return envPreviousUntil > now ? [current, checked] : [current];
  }
  const current = checkWebhookSecret(stored.webhookSecret, "VAST_WEBHOOK_SECRET");
  const previous = stored.previousWebhookSecret;
  const inGrace = (stored.previousSecretExpiresAt ?? 0) > now;
  return previous && inGrace ? [current, previous] : [current];
}
