import type { EventEmitter } from "node:events";
import type { AdapterLog } from "../adapter/adapter.js";
import type { Settings, TunnelChoice } from "../config/settings.js";
import type { probeThroughTunnel } from "../tunnel/probe.js";
import { type TunnelStatus, TunnelSupervisor } from "../tunnel/supervisor.js";
import type { TunnelProvider } from "../tunnel/types.js";
import type { UserError } from "../user-error.js";
import { VastApiError } from "../vast/api-client.js";
import type { ConfigContext } from "./config-context.js";
import { usageError } from "./errors.js";
import type { ServeEvents } from "./serve-events.js";

/**
 * How `serve` becomes reachable: a supervised tunnel, the user's own public URL, or nothing; and
 * keeping the Vast.ai webhook pointed at whichever URL that is.
 */
export interface TunnelFlags {
  tunnel?: TunnelChoice;
  tunnelCommand?: string;
  tunnelDomain?: string;
  publicUrl?: string;
  updateWebhook?: boolean;
  /** Seconds, checked where commander parses it. */
  probeInterval?: number;
}

export interface Reachability {
  /** The public base URL, when there is one. */
  publicUrl: string | undefined;
  status(): TunnelStatus | undefined;
  /** Settles if the tunnel is given up on: the adapter must stop. */
  failed: Promise<UserError>;
  close(): Promise<void>;
  /** Where the webhook should point: where serve last pointed it, else the public URL and path. */
  webhookTarget(): string | undefined;
  /** Points the webhook back there, without looking first (the chain watcher found it elsewhere). */
  pointWebhookBack(): Promise<void>;
  /**
   * Points the webhook at the public URL now (when there is one): what a replica does when it
   * becomes the leader (replicas.ts).
   */
  pointAgain(): Promise<void>;
}

export interface ReachabilityContext {
  port: number;
  path: string;
  instance: string;
  settings: Settings;
  config: ConfigContext | undefined;
  env: NodeJS.ProcessEnv;
  log: AdapterLog;
  /** Where the tunnel's opening and the webhook's moves are told, besides the log. */
  events: EventEmitter<ServeEvents>;
  onStatus: () => void;
  /** Told each probe's verdict and each loss, for the chain watcher's "tunnel unreachable". */
  tunnelHealth?: { ok(): void; failed(reason: string): void };
  /** A tunnel chosen by the caller rather than by the flags (the demo's loopback relay). */
  provider?: TunnelProvider;
  /**
   * Replicas on a shared store: only the leader points the webhook (replicas.ts). Without it,
   * this process is the only one, and always points it.
   */
  leader?: { isLeader(): boolean };
}

/**
 * The end-to-end probe, its module (and undici, which it uses) loaded at the first probe: a
 * serve with neither a tunnel nor a public URL never probes, and should not carry undici's
 * memory (issue 15).
 */
const probeThroughTunnelLazily: typeof probeThroughTunnel = async (...args) =>
  (await import("../tunnel/probe.js")).probeThroughTunnel(...args);

/** Flags first, then what init stored; with neither, no tunnel. */
export function chooseTunnel(
  flags: TunnelFlags,
  settings: Settings,
): { choice: TunnelChoice; command?: string; publicUrl?: string } {
  const choice =
    flags.tunnel ??
    (flags.tunnelCommand !== undefined
      ? "command"
      : flags.publicUrl !== undefined
        ? "none"
        : (settings.tunnel ?? "none"));
  const command = flags.tunnelCommand ?? settings.tunnelCommand;
  if (choice === "command" && !command) {
    throw usageError(
      "--tunnel command needs the command to run.",
      'Pass --tunnel-command "CMD {port}".',
    );
  }
  const publicUrl = choice === "none" ? (flags.publicUrl ?? settings.publicUrl) : undefined;
  if (publicUrl !== undefined) {
    try {
      new URL(publicUrl);
    } catch {
      throw usageError(`--public-url is not a URL: "${publicUrl}".`);
    }
  }
  return {
    choice,
    ...(command === undefined ? {} : { command }),
    ...(publicUrl === undefined ? {} : { publicUrl: publicUrl.replace(/\/+$/, "") }),
  };
}

/**
 * Points the Vast.ai webhook at serve's public URL: the supervisor after each (re)opened tunnel,
 * and the chain watcher when a check finds the webhook pointed elsewhere (`pointBack`).
 */
interface WebhookPointer {
  point(url: string): Promise<void>;
  /** Where this process last pointed the webhook (URL and path), if it did. */
  target(): string | undefined;
  /** PUTs `target()` again: the webhook is known to point elsewhere, so there is no lookup first. */
  pointBack(): Promise<void>;
}

function webhookPointer(flags: TunnelFlags, context: ReachabilityContext): WebhookPointer {
  const { config, settings, log, path } = context;
  const storedId = settings.webhookId;
  const none = { target: () => undefined, pointBack: async () => {} };
  if (flags.updateWebhook === false) return { point: async () => {}, ...none };
  if (!config || storedId === undefined || !config.findApiKey()) {
    let said = false;
    const point = async () => {
      if (!said)
        log.warn(
          {},
          "no webhook set up here (run `vast-gchat init`): point yours at the public URL yourself",
        );
      said = true;
    };
    return { point, ...none };
  }
  const client = config.client();
  /** A new `init` while serve runs may make a new webhook: the id is read at each call. */
  const webhookIdNow = () => config.settings.read().webhookId ?? storedId;
  /** What this process last pointed the webhook at. */
  let pointed: string | undefined;
  const pointAt = async (target: string, knownElsewhere: boolean) => {
    const webhookId = webhookIdNow();
    if (context.leader && !context.leader.isLeader()) {
      // Another replica leads and keeps the webhook pointed; on a takeover this one points it.
      log.debug(
        { webhook_id: webhookId, url: target },
        "not the leader: the webhook is left alone",
      );
      pointed = undefined;
      return;
    }
    // A restart of serve behind a stable URL (--public-url, a reserved ngrok domain) should not
    // write what Vast.ai already has. The API has no GET of one webhook, so this lists them; a
    // failed lookup is no reason to leave the webhook pointing elsewhere, so it then PUTs anyway.
    // A tunnel restarted with a new URL skips the lookup: the webhook points at the old URL, which
    // is dead, and every moment until the PUT may cost a delivery (docs/tunnels.md).
    const mayMatch = !knownElsewhere && (pointed === undefined || pointed === target);
    const hasTarget = async () =>
      (await client.findWebhook(webhookId).catch(() => undefined))?.webhook_url === target;
    if (mayMatch && (await hasTarget())) {
      log.debug({ webhook_id: webhookId, url: target }, "webhook already points here");
      pointed = target;
      return;
    }
    try {
      await client.updateWebhook(webhookId, { webhook_url: target });
    } catch (error) {
      // Vast.ai refuses (400) a URL a webhook already has, and may count the webhook's own. After
      // a lookup that failed, or one skipped because the URL was new, that refusal may only mean
      // the webhook points here already: look (again) before calling it a failure.
      if (!(error instanceof VastApiError && error.status === 400 && (await hasTarget()))) {
        throw error;
      }
      log.debug({ webhook_id: webhookId, url: target }, "webhook already points here");
      pointed = target;
      return;
    }
    pointed = target;
    log.info({ webhook_id: webhookId, url: target }, "webhook pointed");
    context.events.emit("webhookPointed", webhookId, target);
  };
  return {
    point: (url) => pointAt(`${url}${path}`, false),
    target: () => pointed,
    pointBack: async () => {
      if (pointed !== undefined) await pointAt(pointed, true);
    },
  };
}

export async function makeReachable(
  flags: TunnelFlags,
  context: ReachabilityContext,
): Promise<Reachability> {
  const { choice, command, publicUrl } = chooseTunnel(flags, context.settings);
  const pointer = webhookPointer(flags, context);
  const provider =
    context.provider ??
    (choice === "none" ? undefined : await providerFor(choice, command, flags, context.env));
  if (!provider) return stayPut(publicUrl, pointer, context);
  const name = provider.name;
  const probeSeconds = flags.probeInterval ?? 30;

  // Operators (and tests) may want retries sooner than the default: a lost tunnel is reopened at
  // once, a failure after that waits 1 s, doubling to 1 min.
  const backoffMs = Number(context.env.VAST_GCHAT_TUNNEL_BACKOFF_MS);
  const supervisor = new TunnelSupervisor({
    provider,
    port: context.port,
    ...(backoffMs > 0 ? { initialBackoffMs: backoffMs, maxBackoffMs: backoffMs * 8 } : {}),
    pointWebhook: (url) => pointer.point(url),
    // A probe may take up to 10 s, but no longer than the interval; under 2 s a loaded machine
    // would call a healthy tunnel dead.
    probe: (url) =>
      probeThroughTunnelLazily(
        url,
        context.instance,
        Math.max(2000, Math.min(10_000, probeSeconds * 1000)),
      ),
    probeIntervalMs: probeSeconds * 1000,
  });
  supervisor.on("output", (line) => context.log.debug({ provider: name, line }, "tunnel output"));
  supervisor.on("ready", (url) => {
    context.log.info({ provider: name, public_url: url }, "tunnel open");
    context.events.emit("tunnelOpen", url);
    context.onStatus();
  });
  supervisor.on("lost", (reason, delayMs) => {
    context.log.warn({ provider: name, reason, retry_in_s: delayMs / 1000 }, "tunnel lost");
    context.tunnelHealth?.failed(reason);
    context.onStatus();
  });
  supervisor.on("probe", (result) => {
    if (result.ok) {
      context.log.debug({ provider: name }, "tunnel probe ok");
      context.tunnelHealth?.ok();
    } else {
      context.log.warn({ provider: name, reason: result.error }, "tunnel probe failed");
      context.tunnelHealth?.failed(result.error ?? "probe failed");
    }
    context.onStatus();
  });
  const failed = new Promise<UserError>((resolve) => {
    supervisor.on("failed", (error) => resolve(error));
  });

  let url: string;
  try {
    url = await supervisor.start();
  } catch (error) {
    await supervisor.close();
    throw error;
  }
  return {
    get publicUrl() {
      return supervisor.status.url ?? url;
    },
    status: () => supervisor.status,
    failed,
    close: () => supervisor.close(),
    webhookTarget: () => targetOf(pointer, supervisor.status.url ?? url, context.path),
    pointWebhookBack: () => pointer.pointBack(),
    pointAgain: () => pointer.point(supervisor.status.url ?? url),
  };
}

function targetOf(
  pointer: WebhookPointer,
  publicUrl: string | undefined,
  path: string,
): string | undefined {
  return pointer.target() ?? (publicUrl === undefined ? undefined : `${publicUrl}${path}`);
}

/** No tunnel: the user's own public URL, or nothing reachable from outside at all. */
async function stayPut(
  publicUrl: string | undefined,
  pointer: WebhookPointer,
  context: ReachabilityContext,
): Promise<Reachability> {
  const never = new Promise<UserError>(() => {});
  if (publicUrl) {
    await pointer.point(publicUrl);
    const probe = await probeThroughTunnelLazily(publicUrl, context.instance);
    if (!probe.ok)
      context.log.warn(
        { public_url: publicUrl, reason: probe.error },
        "public URL does not reach this adapter yet",
      );
  } else {
    context.log.warn(
      {},
      "no tunnel and no public URL: Vast.ai cannot reach this adapter (see --tunnel, --public-url)",
    );
  }
  return {
    publicUrl,
    status: () => undefined,
    failed: never,
    close: async () => {},
    webhookTarget: () => targetOf(pointer, publicUrl, context.path),
    pointWebhookBack: () => pointer.pointBack(),
    pointAgain: async () => {
      if (publicUrl) await pointer.point(publicUrl);
    },
  };
}

async function providerFor(
  choice: Exclude<TunnelChoice, "none">,
  command: string | undefined,
  flags: TunnelFlags,
  env: NodeJS.ProcessEnv,
): Promise<TunnelProvider> {
  const { createTunnelProvider } = await import("../tunnel/providers.js");
  return createTunnelProvider({
    tunnel: choice,
    ...(command === undefined ? {} : { command }),
    ...(flags.tunnelDomain === undefined ? {} : { domain: flags.tunnelDomain }),
    env,
  });
}
