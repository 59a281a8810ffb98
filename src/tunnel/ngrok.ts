import type { OpenTunnel, TunnelExit, TunnelProvider } from "./types.js";
import { TunnelError } from "./types.js";

/**
 * ngrok through `@ngrok/ngrok` (an optional dependency: a native addon shipped in the npm
 * package, so it may be missing where no prebuilt binary fits). It runs in the adapter's own
 * process, because it never exits the process: it reports through promises and callbacks. Facts from its index.d.ts / index.js (1.7.0) and src/ (github.com/ngrok/ngrok-javascript):
 * - `forward(config)` connects a session and a listener and forwards to `addr`; it keeps one
 *   session per process (src/connect.rs, SESSION) and `kill()` closes every listener and that
 *   session (connect.rs, disconnect(None)). So open() starts from kill() (a fresh session that
 *   carries our callbacks) and close() ends with it; the adapter runs one tunnel at a time.
 * - `onStatusChange(status)`: "closed" when the session's connection is lost, "connected" when it
 *   is (re)established (index.d.ts; index.js maps the session's connect/disconnect handlers onto
 *   it; src/session.rs calls them around each connection attempt). ngrok reconnects by itself,
 *   so "closed" is not final: the tunnel counts as ended only when no "connected" follows within
 *   a grace period. That period is short: while the session is down the URL answers 404
 *   (ERR_NGROK_3200, docs/tunnels.md), which Vast.ai does not retry; and ngrok-rust's own retries
 *   (github.com/ngrok/ngrok-rust ngrok/src/session.rs, accept_incoming, since commit c98a4e1:
 *   tokio-retry's ExponentialBackoff::from_millis(50), each wait the base to the n-th power) come
 *   after 50 ms and 2.5 s, then only after 125 s. A session still down after the first two is
 *   ended and replaced, and the webhook pointed at the new URL.
 * - `authtoken` / NGROK_AUTHTOKEN is required; `domain` asks for a domain reserved on the account,
 *   so the URL survives restarts.
 * - A failure carries `errorCode` (ERR_NGROK_…) parsed from its message (index.js,
 *   populateErrorCode). The ones below need the user (ngrok.com/docs/errors): 105 malformed
 *   authtoken, 107 invalid (reset or revoked) authtoken, 4018 an account and authtoken required,
 *   320 domain reserved by another account, 326 invalid domain (ngrok-javascript's own tests).
 */

const TOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken";
const SETUP_CODES = new Set([
  "ERR_NGROK_105",
  "ERR_NGROK_107",
  "ERR_NGROK_4018",
  "ERR_NGROK_320",
  "ERR_NGROK_326",
]);
const DEFAULT_TIMEOUT_MS = 30_000;
/** Room for ngrok's two quick reconnects (50 ms, then 2.5 s later) and the time they take. */
const DEFAULT_RECONNECT_GRACE_MS = 5000;

/** The slice of @ngrok/ngrok's API used here (see its index.d.ts: Config, forward, kill). */
export interface NgrokForwardConfig {
  addr: string;
  authtoken: string;
  domain?: string;
  onStatusChange: (status: string) => void;
  onLogEvent: (data: string) => void;
}
export interface NgrokListenerLike {
  url(): string | null;
}
export interface NgrokModule {
  forward(config: NgrokForwardConfig): Promise<NgrokListenerLike>;
  kill(): Promise<void>;
}

/** Loads @ngrok/ngrok on first use only (a CommonJS addon: its API is the default export). */
export async function loadNgrok(): Promise<NgrokModule> {
  // A variable specifier keeps TypeScript from needing the optional package's types.
  const specifier = "@ngrok/ngrok";
  const namespace = (await import(specifier)) as { default?: unknown } & Record<string, unknown>;
  const api = (namespace.default ?? namespace) as Partial<NgrokModule>;
  if (typeof api.forward !== "function" || typeof api.kill !== "function") {
    throw new Error("the package has no forward() and kill()");
  }
  return api as NgrokModule;
}

export interface NgrokOptions {
  /** A domain reserved on the user's ngrok account (--tunnel-domain). */
  domain?: string;
  /** Where NGROK_AUTHTOKEN is read from. */
  env?: NodeJS.ProcessEnv;
  /** How the package is loaded (tests: a stand-in, or a failure). */
  load?: () => Promise<NgrokModule>;
  /** How long a lost session may take to reconnect before the tunnel counts as ended. */
  reconnectGraceMs?: number;
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]?.trim() || "unknown error";
}

/** ngrok quotes a refused token back ("Your authtoken: TOKEN", ERR_NGROK_105/107): not in logs. */
function redact(text: string, authtoken: string): string {
  return text.replaceAll(authtoken, "[NGROK_AUTHTOKEN]");
}

function openError(error: unknown, domain: string | undefined, authtoken: string): TunnelError {
  const code = (error as { errorCode?: unknown } | undefined)?.errorCode;
  const reason = redact(reasonOf(error), authtoken);
  if (typeof code === "string" && SETUP_CODES.has(code)) {
    const what =
      code === "ERR_NGROK_320" || code === "ERR_NGROK_326"
        ? `the domain ${domain}`
        : "NGROK_AUTHTOKEN";
    return new TunnelError("setup", `ngrok refused ${what} (${code}): ${reason}`);
  }
  return new TunnelError("failed", `ngrok could not open a tunnel: ${reason}`);
}

export function ngrokTunnel(options: NgrokOptions = {}): TunnelProvider {
  const env = options.env ?? process.env;
  const load = options.load ?? loadNgrok;
  const graceMs = options.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS;
  // ngrok keeps one session per process: an old open() must not kill a newer one's.
  let opens = 0;
  return {
    name: "ngrok",
    async open(openOptions): Promise<OpenTunnel> {
      const authtoken = env.NGROK_AUTHTOKEN?.trim();
      if (!authtoken) {
        throw new TunnelError(
          "setup",
          `ngrok needs an authtoken: copy yours from ${TOKEN_URL} and set it in the environment as NGROK_AUTHTOKEN.`,
        );
      }
      let ngrok: NgrokModule;
      try {
        ngrok = await load();
      } catch (error) {
        throw new TunnelError(
          "setup",
          `ngrok support needs the @ngrok/ngrok package, which could not be loaded (${reasonOf(error)}): reinstall vast-gchat with its optional dependencies (npm install -g vast-gchat --include=optional), or pick another tunnel with --tunnel.`,
        );
      }

      let live = true;
      let graceTimer: NodeJS.Timeout | undefined;
      let settle: (exit: TunnelExit) => void = () => {};
      const ended = new Promise<TunnelExit>((resolve) => {
        settle = resolve;
      });
      const onStatusChange = (status: string) => {
        if (!live) return;
        openOptions.onOutput?.(`ngrok session ${redact(status, authtoken)}`);
        if (status === "connected") {
          clearTimeout(graceTimer);
          graceTimer = undefined;
        } else if (status === "closed" && graceTimer === undefined) {
          graceTimer = setTimeout(() => {
            settle({
              reason: `the ngrok session lost its connection and did not reconnect within ${graceMs / 1000} s`,
            });
          }, graceMs);
          graceTimer.unref();
        }
      };
      const config: NgrokForwardConfig = {
        addr: `127.0.0.1:${openOptions.port}`,
        authtoken,
        ...(options.domain ? { domain: options.domain } : {}),
        onStatusChange,
        onLogEvent: (data) => {
          if (live) openOptions.onOutput?.(redact(data, authtoken));
        },
      };

      const thisOpen = ++opens;
      // Start from no session: a stale one would keep the callbacks of an earlier open().
      await ngrok.kill().catch(() => {});
      const forwarding = ngrok.forward(config);
      const timeoutMs = openOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new TunnelError("failed", `ngrok gave no public URL within ${timeoutMs / 1000} s.`),
            ),
          timeoutMs,
        );
      });
      let url: string | null;
      try {
        url = (await Promise.race([forwarding, timedOut])).url();
      } catch (error) {
        live = false;
        clearTimeout(graceTimer);
        // A forward() that succeeds after all must not leave a session behind, unless a newer
        // open() has started since: the session is then that one's (and its kill() ended ours).
        forwarding.then(() => (opens === thisOpen ? ngrok.kill() : undefined)).catch(() => {});
        await ngrok.kill().catch(() => {});
        throw error instanceof TunnelError ? error : openError(error, options.domain, authtoken);
      } finally {
        clearTimeout(timer);
      }
      if (!url) {
        live = false;
        await ngrok.kill().catch(() => {});
        throw new TunnelError("failed", "ngrok opened a listener without a URL.");
      }

      let closing: Promise<void> | undefined;
      return {
        url: new URL(url).origin,
        ended,
        close() {
          closing ??= (async () => {
            live = false;
            clearTimeout(graceTimer);
            await ngrok.kill().catch(() => {});
            settle({ reason: "the ngrok tunnel was closed" });
          })();
          return closing;
        },
      };
    },
  };
}
