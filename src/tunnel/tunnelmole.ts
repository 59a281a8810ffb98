import { createRequire } from "node:module";
import { tunnelChildEnv } from "./child-env.js";
import { type ChildTunnelSpec, openChildTunnel } from "./child-tunnel.js";
import { TunnelError, type TunnelProvider } from "./types.js";

/**
 * tunnelmole (the tutorial's tunnel, and the default): the npm package `tunnelmole` exports
 * `tunnelmole({ port }) -> Promise<url>`, but it is not fit to run inside the adapter. Read in its
 * source (tunnelmole 2.4.0, src/):
 * - it calls `process.exit` from library code: tunnelmole.ts when nothing listens on the port,
 *   message-handlers/client-disconnect.ts when the service says goodbye,
 *   message-handlers/hostname-already-taken.ts, identity/api-key-service.ts;
 * - it sends telemetry unless `TUNNELMOLE_TELEMETRY=0` (telemetry/send-message.ts,
 *   cjs/bin/postinstall.js);
 * - its promise never settles when the service cannot be reached (it only logs the websocket
 *   error, websocket/connect.ts);
 * - it reconnects only for a custom (paid) domain (websocket/setup-auto-reconnect.ts).
 * So it runs in a child process of its own, watched by openChildTunnel: a small inline ES module
 * imports the package, awaits the URL and prints it on one line of ours. Nothing else keeps that
 * child alive but tunnelmole's own websocket, so when the connection closes (and, without a paid
 * domain, tunnelmole gives up on it) the child exits and the supervisor opens a new tunnel at once.
 */

/** The line our child prints: this prefix, then the public URL. */
export const TUNNELMOLE_URL_PREFIX = "vast-gchat-tunnel-url ";

/**
 * The child's program. Its inputs come in the environment (not argv: `node -e` would read a
 * leading dash as an option of its own). It also leaves by itself when the adapter that started it
 * is gone (process.ppid changes when a child is re-parented), since an adapter killed with
 * SIGKILL cannot stop it; that check is unref'd so it never keeps the child alive on its own.
 */
const CHILD_SCRIPT = `
const { pathToFileURL } = await import("node:url");
const parent = Number(process.env.VAST_GCHAT_PARENT_PID);
const orphaned = () => parent > 0 && process.ppid !== parent;
if (orphaned()) process.exit(0);
setInterval(() => { if (orphaned()) process.exit(0); }, 1000).unref();
const { tunnelmole } = await import(pathToFileURL(process.env.VAST_GCHAT_TUNNELMOLE_MODULE).href);
const url = await tunnelmole({ port: Number(process.env.VAST_GCHAT_TUNNEL_PORT) });
console.log(${JSON.stringify(TUNNELMOLE_URL_PREFIX)} + url);
`;

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC.
const ANSI = /\u001b\[[0-9;]*m/g;
/**
 * What tunnelmole itself prints once the service assigned a hostname
 * (src/message-handlers/hostname-assigned.ts): since 2.3.5 (commit eea1903 "Colorize output with
 * chalk", Feb 2025) `https://HOST ⟶   http://localhost:PORT`, in colour on a terminal; before that
 * `https://HOST is forwarding to localhost:PORT`. Its other https lines ("Share to Reddit:
 * https://dashboard.tunnelmole.com/share/...") are not the tunnel's URL.
 */
const FORWARDING = /^\s*(https:\/\/\S+)\s+(?:⟶|is forwarding to\b)/;

/** The public URL in one line of the child's output: ours first, tunnelmole's own as a fallback. */
export function tunnelmoleLineUrl(line: string): string | undefined {
  const plain = line.replace(ANSI, "").trim();
  const candidate = plain.startsWith(TUNNELMOLE_URL_PREFIX)
    ? plain.slice(TUNNELMOLE_URL_PREFIX.length).trim()
    : FORWARDING.exec(plain)?.[1];
  if (!candidate) return undefined;
  try {
    const url = new URL(candidate);
    return url.protocol === "https:" ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/** Where the installed package's entry point is, resolved from this file (src/ or dist/). */
export function resolveTunnelmoleModule(): string {
  try {
    return createRequire(import.meta.url).resolve("tunnelmole");
  } catch {
    throw new TunnelError(
      "setup",
      "The tunnelmole package is missing from this install of vast-gchat: reinstall vast-gchat (npm install -g vast-gchat), or pick another tunnel with --tunnel.",
    );
  }
}

export interface TunnelmoleOptions {
  /** The environment the child starts from (telemetry is turned off whatever it says). */
  env?: NodeJS.ProcessEnv;
  /** The module to import instead of the installed package (tests: a stand-in). */
  modulePath?: string;
}

/** How the child is started, for openChildTunnel (exported for tests). */
export function tunnelmoleChildSpec(
  port: number,
  modulePath: string,
  env: NodeJS.ProcessEnv = process.env,
): ChildTunnelSpec {
  return {
    label: "tunnelmole",
    command: process.execPath,
    args: ["--input-type=module", "-e", CHILD_SCRIPT],
    env: tunnelChildEnv(
      env,
      { names: ["TUNNELMOLE_DEBUG", "TUNNELMOLE_QUIET_MODE"] },
      {
        TUNNELMOLE_TELEMETRY: "0",
        // chalk (supports-color) leaves colour off for FORCE_COLOR=0 even if the caller forced it.
        FORCE_COLOR: "0",
        VAST_GCHAT_TUNNELMOLE_MODULE: modulePath,
        VAST_GCHAT_TUNNEL_PORT: String(port),
        VAST_GCHAT_PARENT_PID: String(process.pid),
      },
    ),
    findUrl: tunnelmoleLineUrl,
    notInstalled: new TunnelError(
      "setup",
      `Node.js could not be started again from ${process.execPath} to run tunnelmole.`,
    ),
  };
}

export function tunnelmoleTunnel(options: TunnelmoleOptions = {}): TunnelProvider {
  return {
    name: "tunnelmole",
    async open(openOptions) {
      const modulePath = options.modulePath ?? resolveTunnelmoleModule();
      return openChildTunnel(
        tunnelmoleChildSpec(openOptions.port, modulePath, options.env),
        openOptions,
      );
    },
  };
}
