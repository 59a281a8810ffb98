import { TunnelError } from "./types.js";

/**
 * The environment a tunnel's child process starts with: an allow-list, never serve's own. serve's
 * environment may hold vast-gchat's secrets (VAST_API_KEY, VAST_WEBHOOK_SECRET, GOOGLE_CHAT_URL
 * with its token, a PostgreSQL password in VAST_GCHAT_STORE), another provider's token
 * (NGROK_AUTHTOKEN) and whatever else the user's shell or unit exports. A tunnel program talks to
 * a third party and may log, crash-report or pass on its environment, so it gets only what any
 * program needs to run and to reach the internet, what its own provider documents, and what the
 * user names in VAST_GCHAT_TUNNEL_ENV.
 *
 * This does not keep a hostile program of the same user from the secrets: it could read the
 * config directory or /proc/<serve's pid>/environ. It keeps an honest program from carrying them
 * anywhere by accident.
 */

/** What every program may need: where things are, who runs it, the locale, the clock. */
const BASE_NAMES = ["PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LANGUAGE"];
/** The locale's categories (LC_ALL, LC_CTYPE, LC_MESSAGES, ...). */
const BASE_PREFIXES = ["LC_"];
/**
 * How this machine reaches the internet: the proxy variables (both spellings: Go reads either,
 * curl only the lower-case http_proxy), and the certificate authorities to trust behind a
 * TLS-inspecting proxy (SSL_CERT_FILE and SSL_CERT_DIR for Go and OpenSSL, NODE_EXTRA_CA_CERTS
 * for Node.js programs).
 */
const NETWORK_NAMES = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
];

/** What the user names, comma- or space-separated: NAME, or PREFIX* for every NAME it begins. */
export const TUNNEL_ENV_VARIABLE = "VAST_GCHAT_TUNNEL_ENV";

/**
 * vast-gchat's own secrets: never handed to a tunnel, even when named (no tunnel needs them, and
 * VAST_GCHAT_TUNNEL_ENV=VAST_* must not hand them over by accident).
 */
export const OWN_SECRETS: readonly string[] = [
  "VAST_API_KEY",
  "VAST_WEBHOOK_SECRET",
  "VAST_WEBHOOK_SECRET_PREVIOUS",
  "VAST_WEBHOOK_SECRET_FILE",
  "GOOGLE_CHAT_URL",
  "GOOGLE_CHAT_URL_FILE",
  "VAST_GCHAT_STORE",
  // libpq's own: a shared store's password, were it given that way.
  "PGPASSWORD",
];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

/** The names and prefixes in VAST_GCHAT_TUNNEL_ENV; a setup error for anything else. */
export function namedVariables(env: NodeJS.ProcessEnv): { names: string[]; prefixes: string[] } {
  const names: string[] = [];
  const prefixes: string[] = [];
  for (const item of (env[TUNNEL_ENV_VARIABLE] ?? "").split(/[\s,]+/)) {
    if (!item) continue;
    if (!NAME.test(item)) {
      throw new TunnelError(
        "setup",
        `${TUNNEL_ENV_VARIABLE} holds "${item.slice(0, 40)}", which is not a variable name: list names (or PREFIX*) separated by commas.`,
      );
    }
    if (OWN_SECRETS.includes(item)) {
      throw new TunnelError(
        "setup",
        `${TUNNEL_ENV_VARIABLE} names ${item}, one of vast-gchat's own secrets: no tunnel program is given it. Remove it from ${TUNNEL_ENV_VARIABLE}.`,
      );
    }
    if (item.endsWith("*")) prefixes.push(item.slice(0, -1));
    else names.push(item);
  }
  return { names, prefixes };
}

/**
 * The environment for a tunnel child: from `source` (serve's environment), the base allow-list,
 * the provider's own `names`, and what the user named; then `own` (our inputs to the child).
 * Variables that are not set stay unset.
 */
export function tunnelChildEnv(
  source: NodeJS.ProcessEnv,
  provider: { names?: readonly string[] } = {},
  own: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const named = namedVariables(source);
  const names = new Set([
    ...BASE_NAMES,
    ...NETWORK_NAMES,
    ...(provider.names ?? []),
    ...named.names,
  ]);
  const prefixes = [...BASE_PREFIXES, ...named.prefixes];
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || OWN_SECRETS.includes(name)) continue;
    if (names.has(name) || prefixes.some((prefix) => name.startsWith(prefix))) env[name] = value;
  }
  return { ...env, ...own };
}
