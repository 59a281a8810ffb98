import { checkServiceUrl } from "../service-url.js";
import { UserError } from "../user-error.js";
/**
 * Google Chat incoming-webhook URLs: `https://chat.googleapis.com/v1/spaces/{SPACE}/messages?key=..&token=..`.
 * Anyone holding the URL can post into the space, so it is a secret: only its space id is shown.
 */
export const CHAT_HOST = "chat.googleapis.com";

export interface ParsedChatUrl {
  url: URL;
  /** Safe to print: the space id, or the host for a non-Google endpoint. */
  label: string;
  /** Set when the URL is accepted but looks unusual (not Google's host). */
  warning?: string;
}

/**
 * A label for a Chat webhook URL that is safe to print and to use as a metric label: the space id
 * (the path segment after /v1/spaces/), never the key/token query; a URL without a space path (a
 * non-Google endpoint) is labelled by its host.
 */
export function chatSpaceLabel(url: URL): string {
  return spaceOf(url) ?? url.host;
}

function spaceOf(url: URL): string | undefined {
  return /^\/v1\/spaces\/([^/]+)\/messages\/?$/.exec(url.pathname)?.[1];
}

/** A Chat URL the user must fix: a usage error. */
export class ChatUrlError extends UserError {
  override name = "ChatUrlError";

  constructor(message: string) {
    super(message, { kind: "usage" });
  }
}

export function parseChatUrl(raw: string): ParsedChatUrl {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ChatUrlError("The Google Chat URL is not a URL.");
  }
  const problem = checkServiceUrl(url);
  if (problem) throw new ChatUrlError(`The Google Chat URL is not usable: ${problem}.`);
  const space = spaceOf(url);
  if (url.hostname === CHAT_HOST) {
    if (!space || !url.searchParams.get("key") || !url.searchParams.get("token")) {
      throw new ChatUrlError(
        "The Google Chat URL is incomplete: expected .../v1/spaces/SPACE/messages?key=...&token=... (copy it again from the space's Apps & integrations > Webhooks).",
      );
    }
    return { url, label: `spaces/${space}` };
  }
  const label = space ? `spaces/${space} at ${url.host}` : url.host;
  return {
    url,
    label,
    warning: `The Google Chat URL's host is ${url.host}, not ${CHAT_HOST}; messages will go there.`,
  };
}

/**
 * The space a webhook URL posts to, as a key: its origin and path, without the key and token.
 * Two URLs with the same key post to one space (which Chat paces as one).
 */
export function chatSpaceKey(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** For error messages: never the query string (key/token), never credentials. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search ? "?…" : ""}`;
}
