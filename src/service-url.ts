/**
 * The URL rule of SPEC.md for every service vast-gchat talks to (the Vast.ai API, a Chat webhook,
 * a public URL): https, or plain http only on a loopback host, for local testing. Used by the
 * Vast.ai, Chat and tunnel sides alike, so it belongs to none of them.
 */
const LOOPBACK_HOSTS = new Set(["localhost", "[::1]", "::1"]);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** An error sentence, or undefined when the URL is acceptable. */
export function checkServiceUrl(url: URL): string | undefined {
  if (url.username || url.password) return "it must not contain a user name or password";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  if (url.protocol === "http:") return "it must use https:// (plain http is only for 127.0.0.1)";
  return "it must be an https:// URL";
}
