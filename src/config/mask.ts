/**
 * Secrets as they may be shown to people: enough to recognise which one is stored, never enough to
 * use it (SPEC.md: nothing secret is ever printed).
 */

/** Shown for a secret too short to reveal any of it; the same for every length. */
export const FULLY_MASKED = "••••";
const ELLIPSIS = "…";

/**
 * `abcd…wxyz`: the first and last few characters. Secrets under 12 characters are shown as `••••`
 * (their length hidden too); under 24 characters only two at each end are shown, so at least two
 * thirds of any secret stays hidden.
 */
export function maskSecret(value: string): string {
  const chars = Array.from(value); // code points, so no surrogate pair is split
  if (chars.length < 12) return FULLY_MASKED;
  const shown = chars.length < 24 ? 2 : 4;
  return `${chars.slice(0, shown).join("")}${ELLIPSIS}${chars.slice(-shown).join("")}`;
}

const CHAT_HOST = "chat.googleapis.com";
/** On a host other than Google Chat's, a path segment this long may be a token: it gets masked. */
const LONG_SEGMENT = 16;

/**
 * A Google Chat webhook URL with its `key` and `token` values hidden and the space id kept:
 * `https://chat.googleapis.com/v1/spaces/AAAA/messages?key=…&token=…`. Every query value is hidden
 * whatever its name, so are a user name, password or fragment; on another host, long path
 * segments are masked as secrets too. Input that is not a URL is masked as a plain secret.
 */
export function maskChatUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return maskSecret(url);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return maskSecret(url);

  const userInfo = parsed.username || parsed.password ? `${ELLIPSIS}@` : "";
  const path =
    parsed.hostname === CHAT_HOST
      ? parsed.pathname
      : parsed.pathname
          .split("/")
          .map((segment) => (segment.length >= LONG_SEGMENT ? maskSecret(segment) : segment))
          .join("/");
  const query = parsed.search
    ? `?${parsed.search
        .slice(1)
        .split("&")
        .filter((part) => part !== "")
        .map(maskQueryPart)
        .join("&")}`
    : "";
  const fragment = parsed.hash ? `#${ELLIPSIS}` : "";
  return `${parsed.protocol}//${userInfo}${parsed.host}${path}${query}${fragment}`;
}

/** `name=value` -> `name=…`; a part without `=` could itself be a secret, so it is hidden whole. */
function maskQueryPart(part: string): string {
  const equals = part.indexOf("=");
  return equals === -1 ? ELLIPSIS : `${part.slice(0, equals)}=${ELLIPSIS}`;
}
