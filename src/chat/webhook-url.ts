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

const LOOPBACK_HOSTS = new Set(["localhost", "[::1]", "::1"]);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * The URL rule of SPEC.md: https, or plain http only on a loopback host (for local testing).
 * Returns an error sentence, or undefined when the URL is acceptable.
 */
export function checkServiceUrl(url: URL): string | undefined {
  if (url.username || url.password) return "it must not contain a user name or password";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  if (url.protocol === "http:") return "it must use https:// (plain http is only for 127.0.0.1)";
  return "it must be an https:// URL";
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
  const space = /^\/v1\/spaces\/([^/]+)\/messages\/?$/.exec(url.pathname)?.[1];
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

/** For error messages: never the query string (key/token), never credentials. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search ? "?…" : ""}`;
}
