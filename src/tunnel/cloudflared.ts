import { accessSync, constants, existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { tunnelChildEnv } from "./child-env.js";
import { openChildTunnel } from "./child-tunnel.js";
import { freeLoopbackPort } from "./free-port.js";
import { TunnelError, type TunnelProvider } from "./types.js";

/**
 * cloudflared quick tunnel (the user's installed binary, no account):
 * `cloudflared tunnel --url http://127.0.0.1:PORT --metrics 127.0.0.1:M`. Facts from cloudflared's
 * source (github.com/cloudflare/cloudflared) and Cloudflare's docs:
 * - The metrics server answers `GET /quicktunnel` with `{"hostname":"<random>.trycloudflare.com"}`
 *   (metrics/metrics.go, since 2021.7, TUN-4698; component-tests/util.py reads it the same way).
 *   That server starts only after the quick tunnel was created (cmd/cloudflared/tunnel/cmd.go,
 *   StartServer), so until then the port refuses connections.
 * - The URL is also logged to stderr in an ASCII box, `... INF |  https://x.trycloudflare.com  |`
 *   (cmd/cloudflared/tunnel/quick_tunnel.go, cliutil.LogTable; logger/create.go writes to stderr,
 *   uncoloured when not a terminal). The same log holds other https URLs (the disclaimer's links,
 *   `https://api.trycloudflare.com/tunnel` in a failure), so only a bare *.trycloudflare.com origin
 *   counts.
 * - A config file found in ~/.cloudflared, ~/.cloudflare-warp, ~/cloudflare-warp, /etc/cloudflared
 *   or /usr/local/etc/cloudflared (config.yml or config.yaml, config/configuration.go) is read
 *   without being asked for, and its ingress rules take precedence over --url
 *   (ingress/ingress.go, ParseIngressFromConfigAndCLI). Cloudflare's docs: "TryCloudflare quick
 *   tunnels are currently not supported if a config.yaml configuration file is present in the
 *   .cloudflared directory" (developers.cloudflare.com, Quick Tunnels).
 * - cloudflared updates itself unless stdout is a terminal, it was installed by a package manager,
 *   or --no-autoupdate is given (cmd/cloudflared/updater/update.go): our stdout is a pipe, so it
 *   is given.
 */

const INSTALL_URL =
  "https://developers.cloudflare.com/cloudflare-one/networks/connectors/cloudflare-tunnel/downloads/";
const CONFIG_FILES = ["config.yml", "config.yaml"];
const USER_CONFIG_DIRS = [".cloudflared", ".cloudflare-warp", "cloudflare-warp"];
export const SYSTEM_CONFIG_DIRS: readonly string[] = [
  "/etc/cloudflared",
  "/usr/local/etc/cloudflared",
];
const METRICS_TIMEOUT_MS = 2000;
/**
 * cloudflared's own variables passed on (the environment form of its `tunnel` flags,
 * cmd/cloudflared/tunnel/cmd.go and cliutil/logger flags): how it reaches Cloudflare's edge
 * (--protocol http2 where UDP is blocked, --edge-ip-version, --edge-bind-address, --region,
 * --post-quantum, --retries, --grace-period) and how much it logs. Not the ones that would make
 * it something other than a quick tunnel (TUNNEL_HOSTNAME, TUNNEL_NAME, TUNNEL_TOKEN) or hand it
 * account credentials (TUNNEL_ORIGIN_CERT); VAST_GCHAT_TUNNEL_ENV can still name any of them.
 */
export const CLOUDFLARED_ENV: readonly string[] = [
  "TUNNEL_TRANSPORT_PROTOCOL",
  "TUNNEL_EDGE_IP_VERSION",
  "TUNNEL_EDGE_BIND_ADDRESS",
  "TUNNEL_REGION",
  "TUNNEL_POST_QUANTUM",
  "TUNNEL_RETRIES",
  "TUNNEL_GRACE_PERIOD",
  "TUNNEL_LOGLEVEL",
  "TUNNEL_TRANSPORT_LOGLEVEL",
];

/** The config file cloudflared would pick up by itself, in its own search order, if any. */
export function findCloudflaredConfig(
  home: string,
  systemDirs: readonly string[] = SYSTEM_CONFIG_DIRS,
): string | undefined {
  const dirs = [...USER_CONFIG_DIRS.map((dir) => join(home, dir)), ...systemDirs];
  for (const dir of dirs) {
    for (const file of CONFIG_FILES) {
      const path = join(dir, file);
      if (existsSync(path)) return path;
    }
  }
  return undefined;
}

/** The quick tunnel's URL from a /quicktunnel body, or undefined while it has none. */
export function parseQuickTunnelBody(body: string): string | undefined {
  let hostname: unknown;
  try {
    hostname = (JSON.parse(body) as { hostname?: unknown }).hostname;
  } catch {
    return undefined;
  }
  if (typeof hostname !== "string" || hostname.trim() === "") return undefined;
  // quick_tunnel.go adds the scheme only when the service's hostname lacks it; accept both.
  const text = hostname.trim();
  try {
    const url = new URL(text.startsWith("https://") ? text : `https://${text}`);
    return url.origin;
  } catch {
    return undefined;
  }
}

/** Asks cloudflared's metrics server (host:port) for the quick tunnel's URL. */
export async function readQuickTunnelUrl(metricsAddress: string): Promise<string | undefined> {
  const response = await fetch(`http://${metricsAddress}/quicktunnel`, {
    signal: AbortSignal.timeout(METRICS_TIMEOUT_MS),
  });
  const body = await response.text();
  return response.ok ? parseQuickTunnelBody(body) : undefined;
}

/** The quick tunnel's URL in one stderr line, if the line has it. */
export function findTryCloudflareUrl(line: string): string | undefined {
  for (const match of line.matchAll(/https:\/\/[^\s|"'<>]+/g)) {
    let url: URL;
    try {
      url = new URL(match[0]);
    } catch {
      continue;
    }
    const quick = /^[a-z0-9-]+\.trycloudflare\.com$/.test(url.hostname);
    if (quick && url.hostname !== "api.trycloudflare.com" && url.pathname === "/" && !url.search) {
      return url.origin;
    }
  }
  return undefined;
}

/**
 * Where a program would be found: the path itself when it has a slash, else the first match on
 * PATH; only regular files this process may execute count. Checked before spawning so that a
 * missing binary is told apart from one that fails, and spawn's ENOENT stays a rare race.
 */
export function findExecutable(program: string, env: NodeJS.ProcessEnv): string | undefined {
  const runnable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return statSync(path).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes("/")) return runnable(program) ? program : undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const path = join(dir, program);
    if (runnable(path)) return path;
  }
  return undefined;
}

export interface CloudflaredOptions {
  /** serve's environment: CLOUDFLARED_PATH and HOME are read from it, the child's is picked from it. */
  env?: NodeJS.ProcessEnv;
  /** The system-wide config directories to check (tests: none). */
  systemConfigDirs?: readonly string[];
}

export function cloudflaredTunnel(options: CloudflaredOptions = {}): TunnelProvider {
  const env = options.env ?? process.env;
  return {
    name: "cloudflared",
    async open(openOptions) {
      const config = findCloudflaredConfig(env.HOME || homedir(), options.systemConfigDirs);
      if (config) {
        throw new TunnelError(
          "setup",
          `cloudflared will not serve a quick tunnel while ${config} exists (its ingress rules take the place of --url): rename that file while serve runs, or pick another tunnel with --tunnel.`,
        );
      }
      const binary = env.CLOUDFLARED_PATH || "cloudflared";
      const notInstalled = new TunnelError(
        "setup",
        env.CLOUDFLARED_PATH
          ? `cloudflared is not installed at ${binary} (CLOUDFLARED_PATH names no executable file): install it from ${INSTALL_URL} or correct CLOUDFLARED_PATH.`
          : `cloudflared is not installed (not on the PATH): install it from ${INSTALL_URL}, or set CLOUDFLARED_PATH to where it is.`,
      );
      const command = findExecutable(binary, env);
      if (!command) throw notInstalled;
      const metrics = `127.0.0.1:${await freeLoopbackPort()}`;
      return openChildTunnel(
        {
          label: "cloudflared",
          command,
          args: [
            "tunnel",
            "--no-autoupdate",
            "--metrics",
            metrics,
            "--url",
            `http://127.0.0.1:${openOptions.port}`,
          ],
          env: tunnelChildEnv(env, { names: CLOUDFLARED_ENV }),
          pollUrl: () => readQuickTunnelUrl(metrics),
          findUrl: findTryCloudflareUrl,
          notInstalled,
        },
        openOptions,
      );
    },
  };
}
