import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import type { Ora } from "ora";
import { type AdapterLog, startAdapter } from "../../adapter/adapter.js";
import { withMentions } from "../../chat/mentions.js";
import { createChatPoster } from "../../chat/post-message.js";
import type { MessageFormat } from "../../chat/render.js";
import { resolveConfigDir } from "../../config/paths.js";
import { removeRuntimeState, writeRuntimeState } from "../../config/runtime-state.js";
import { openSettings } from "../../config/settings.js";
import { NoStoreDriverError, StoreUnavailableError } from "../../delivery/event-store.js";
import { redactStoreLocation } from "../../delivery/store-location.js";
import { DEFAULT_ROUTE, isTypeGroupName } from "../../route-syntax.js";
import type { TunnelProvider } from "../../tunnel/types.js";
import type { NotificationType } from "../../vast/api-types.js";
import { subscriptionOf } from "../../vast/routing.js";
import { type ConfigContext, openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { createLogger } from "../logger.js";
import { besideSpinner, startSpinner } from "../output.js";
import { type ReplicaRole, startReplicaRole } from "../replicas.js";
import { type ResolvedRoute, resolveRoutes } from "../route-config.js";
import { withSecretFiles } from "../secret-files.js";
import { startSecretRefresh } from "../secret-refresh.js";
import type { ServeEvents, ServeReady } from "../serve-events.js";
import {
  DEFAULT_HOST,
  DEFAULT_PATH,
  parsePort,
  parseWebhookPath,
  readStoredServeValues,
  resolveSecrets,
} from "../serve-options.js";
import { makeReachable, type Reachability, type TunnelFlags } from "../serve-tunnel.js";
import { createServeWatch, type WatchFlags } from "../serve-watch.js";
import { isSharedStore, resolveStoreLocation, type StoreFlag } from "../store-access.js";

export interface ServeOptions extends GlobalOptions, TunnelFlags, WatchFlags, StoreFlag {
  /** Numbers checked where commander parses them (option-parsers.ts). */
  rate?: number;
  maxAge?: number;
  port?: number;
  adminPort?: number;
  host?: string;
  path?: string;
  format?: string;
}

export interface ServeContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  /** Where SIGINT and SIGTERM arrive (the process, or a test's emitter). */
  signals: NodeJS.EventEmitter;
  /** The demo's tunnel stand-in, used instead of the one the flags choose. */
  tunnelProvider?: TunnelProvider;
  /** For a caller in this process (the demo): what serve does, as typed events beside its log. */
  events?: EventEmitter<ServeEvents>;
}

export async function serve(options: ServeOptions, context: ServeContext): Promise<number> {
  // VAST_WEBHOOK_SECRET_FILE and GOOGLE_CHAT_URL_FILE stand for the variables they name.
  const env = withSecretFiles(context.env);
  const events = context.events ?? new EventEmitter<ServeEvents>();
  const configDir = resolveConfigDir(options.configDir, env);
  // The tutorial's environment alone is enough; otherwise what `init` stored fills the gaps.
  const envOnly = Boolean(env.VAST_WEBHOOK_SECRET && env.GOOGLE_CHAT_URL);
  const config = envOnly ? undefined : openConfig(options, env);
  const settings = config?.settings.read() ?? {};
  // The routes are stored wherever a configuration exists, the environment alone or not: there,
  // GOOGLE_CHAT_URL is the route default's URL; without one, it is the route default itself.
  const routesConfig =
    config ?? (existsSync(openSettings(configDir).path) ? openConfig(options, env) : undefined);

  const port =
    options.port ??
    parsePort(env.PORT ?? settings.port?.toString(), env.PORT ? "PORT" : "the stored port");
  // Unset: any free port, found through the runtime state; a fixed one is for a Prometheus scrape.
  const adminPort = options.adminPort ?? 0;
  if (adminPort !== 0 && adminPort === port) {
    throw usageError(`--admin-port must differ from the adapter's port (${port}).`);
  }
  const path = parseWebhookPath(options.path ?? settings.path ?? DEFAULT_PATH);
  // commander has already checked --format against its choices.
  const format = (options.format ?? "card") as MessageFormat;
  const stored = readStoredServeValues(config);
  resolveSecrets(env, stored);
  const routes = resolveRoutes(routesConfig, env);
  const defaultRoute = routes.find((route) => route.name === DEFAULT_ROUTE) as ResolvedRoute;
  // Said once the log exists, beside the routes' warnings.
  const warnings: string[] = [];
  const storePath = resolveStoreLocation(options.store, env, configDir, (message) =>
    warnings.push(message),
  );
  // Replicas on a shared store sit behind the user's own URL: a tunnel only when asked for.
  const shared = isSharedStore(storePath);
  const tunnelFlags: TunnelFlags =
    shared && options.tunnel === undefined && options.tunnelCommand === undefined
      ? { ...options, tunnel: "none" }
      : options;
  const rate = options.rate ?? 1;
  const maxAgeHours = options.maxAge ?? 72;

  // While the tunnel opens, a terminal shows a spinner; log lines go around it.
  let spinner: Ora | undefined;
  const log = createLogger({
    pretty: Boolean(context.stdout.isTTY),
    level: options.quiet ? "warn" : options.verbose ? "debug" : "info",
    out: context.stdout.isTTY ? besideSpinner(context.stdout, () => spinner) : context.stdout,
  });
  for (const route of routes) {
    if (route.chat.warning) log.warn({ route: route.name }, route.chat.warning);
  }
  for (const warning of warnings) log.warn(warning);
  // A rotation by `vast-gchat rotate-secret` reaches this process within a second, with no
  // delivery needed (a quiet account must not keep accepting a revoked secret), and the previous
  // secret is dropped, and removed from storage, when its grace ends.
  const secrets = startSecretRefresh({ env, config, log });

  let adapter: Awaited<ReturnType<typeof startAdapter>>;
  try {
    adapter = await startAdapter({
      host: options.host ?? DEFAULT_HOST,
      port,
      adminPort,
      path,
      secrets: secrets.secrets,
      rotating: secrets.rotating,
      routes: routes.map((route) => ({
        name: route.name,
        types: route.types,
        mentions: route.mentions,
        chatUrl: route.chat.url,
      })),
      catalogue: () => catalogue,
      format,
      storePath,
      rate,
      maxAgeMs: maxAgeHours * 60 * 60 * 1000,
      log,
    });
  } catch (error) {
    secrets.close();
    throw startupError(error, port, adminPort, storePath);
  }
  events.emit("adapterStarted", adapter.events);
  let reachable: Reachability | undefined;
  // On a shared store, one replica at a time (the leader) keeps the webhook pointed; alone on
  // SQLite, this process always leads.
  let replica: ReplicaRole;
  try {
    replica = await startReplicaRole(storePath, {
      instance: adapter.instance,
      log,
      onTakeover: () => reachable?.pointAgain(),
    });
  } catch (error) {
    secrets.close();
    await adapter.close();
    throw error;
  }
  // Which group a type is in, for route lists that name groups: the account's catalogue, fetched
  // once in the background; until it answers (or without an API key) the types vast-gchat knows.
  let catalogue: NotificationType[] | undefined;
  void fetchCatalogue(routesConfig, routes, log).then((types) => {
    catalogue = types;
  });
  // The chain watch (issue 18): its alerts go to the route default, with its mentions.
  const alertPoster = createChatPoster(defaultRoute.chat.url);
  // On a shared store the self-test is off unless asked for: Vast.ai's test event reaches
  // whichever replica the load balancer picks, not necessarily the one waiting for it.
  const watchFlags =
    shared && options.selfTestEvery === undefined ? { ...options, selfTestEvery: 0 } : options;
  const watch = createServeWatch(watchFlags, {
    adapter,
    config,
    settings,
    env,
    log,
    format,
    postAlert: (message) => alertPoster.post(withMentions(message, defaultRoute.mentions)),
    // What the webhook must subscribe to: init's types and every type a route names.
    wantedTypes: () =>
      subscriptionOf(routes, catalogue, routesConfig?.settings.read().eventTypes ?? []),
    onProblemsChange: () => saveRuntime(),
    isLeader: () => replica.isLeader(),
  });

  const startedAt = Date.now();
  const saveRuntime = () => {
    const tunnel = reachable?.status();
    const problems = adapter.problems.list();
    writeRuntimeState(configDir, {
      pid: process.pid,
      origin: adapter.origin,
      adminOrigin: adapter.adminOrigin,
      path,
      startedAt,
      routes: adapter.routes,
      ...(reachable?.publicUrl ? { publicUrl: reachable.publicUrl } : {}),
      ...(tunnel ? { tunnel } : {}),
      ...(problems.length ? { problems } : {}),
    });
  };
  // Until the tunnel is up, a Ctrl+C must not leave its process behind: exiting runs the tunnel
  // module's exit hook, which ends every tunnel process group it started.
  const interruptStart = (signal: NodeJS.Signals) => {
    spinner?.stop();
    log.info({ signal }, "interrupted while opening the tunnel");
    removeRuntimeState(configDir, process.pid);
    process.exit(ExitCode.Interrupted);
  };
  // One pair of handlers for the whole life of serve: what a signal does changes once it is up.
  let onSignal: (signal: NodeJS.Signals) => void = interruptStart;
  context.signals.on("SIGINT", () => onSignal("SIGINT"));
  context.signals.on("SIGTERM", () => onSignal("SIGTERM"));
  spinner = await startSpinner(context.stdout, "Opening the tunnel and pointing the webhook at it");
  try {
    reachable = await makeReachable(tunnelFlags, {
      port: adapter.port,
      path,
      instance: adapter.instance,
      settings,
      config,
      env,
      log,
      events,
      onStatus: saveRuntime,
      leader: replica,
      tunnelHealth: watch.tunnelHealth,
      ...(context.tunnelProvider ? { provider: context.tunnelProvider } : {}),
    });
  } catch (error) {
    spinner?.stop();
    watch.stop();
    secrets.close();
    await replica.close();
    await adapter.close();
    throw error;
  }
  spinner?.stop();
  spinner = undefined;
  saveRuntime();
  const ready: ServeReady = {
    url: `${adapter.origin}${path}`,
    publicUrl: reachable.publicUrl ? `${reachable.publicUrl}${path}` : null,
  };
  log.info(
    {
      url: ready.url,
      admin_url: adapter.adminOrigin,
      public_url: ready.publicUrl,
      chat: defaultRoute.chat.label,
      routes: Object.fromEntries(routes.map((route) => [route.name, route.chat.label])),
      format,
      store: redactStoreLocation(storePath),
      store_kind: adapter.store.kind,
      ...(shared ? { leader: replica.isLeader() } : {}),
    },
    "ready",
  );
  events.emit("ready", ready);
  watch.start(reachable);

  const running = reachable;
  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    const shutDown = async () => {
      removeRuntimeState(configDir, process.pid);
      watch.stop();
      secrets.close();
      await replica.close();
      await running.close();
      await adapter.close();
    };
    const stop = (signal: string) => {
      if (stopping) {
        // A second Ctrl+C: the user does not want to wait for the post in flight.
        removeRuntimeState(configDir, process.pid);
        resolve(ExitCode.Interrupted);
        return;
      }
      stopping = true;
      log.info({ signal }, "stopping");
      // A failure while stopping (the store, the runtime file) ends serve with its sentence,
      // never as an unhandled rejection.
      shutDown().then(() => {
        log.info({}, "stopped");
        resolve(ExitCode.Ok);
      }, reject);
    };
    onSignal = stop;
    // The tunnel was given up on: stop with its reason, so a process manager restarts us.
    void running.failed.then((error) => {
      if (stopping) return;
      stopping = true;
      log.error({ reason: error.message }, "tunnel failed");
      const failWithTunnelError = () => reject(error);
      shutDown().then(failWithTunnelError, failWithTunnelError);
    });
  });
}

function startupError(
  error: unknown,
  port: number,
  adminPort: number,
  storePath: string,
): CliError {
  const code = (error as NodeJS.ErrnoException).code;
  // node's listen errors carry the port they were for: the public one or --admin-port.
  const failedPort = (error as { port?: number }).port;
  const admin = adminPort !== 0 && failedPort === adminPort;
  const flag = admin ? "--admin-port" : "--port";
  const shown = admin ? adminPort : port;
  if (code === "EADDRINUSE") {
    return new CliError(`Port ${shown} is already in use (another adapter running?).`, {
      hint: `Stop the other process or choose another port with ${flag}.`,
      exitCode: ExitCode.Usage,
    });
  }
  if (code === "EACCES" || code === "EADDRNOTAVAIL") {
    return new CliError(`Cannot listen on port ${shown} (${code}).`, {
      hint: admin ? "Choose another --admin-port." : "Choose another --port or --host.",
      exitCode: ExitCode.Usage,
    });
  }
  if (error instanceof NoStoreDriverError) {
    const shown = redactStoreLocation(storePath);
    return new CliError(`Cannot open the event store ${shown}: ${error.message}.`);
  }
  if (error instanceof StoreUnavailableError) {
    const shown = redactStoreLocation(storePath);
    return new CliError(`Cannot open the event store ${shown}: ${error.message}.`, {
      hint: isSharedStore(storePath)
        ? "Check that PostgreSQL is running and reachable, and the URL's user, password and database (--store, VAST_GCHAT_STORE)."
        : "Check that the config directory is writable, or choose another with --config-dir.",
    });
  }
  return new CliError(`The adapter could not start: ${(error as Error).message}`, { cause: error });
}

/**
 * The account's notification types, when a route list names a group and an API key is here;
 * undefined otherwise, or (logged) when Vast.ai does not answer.
 */
async function fetchCatalogue(
  config: ConfigContext | undefined,
  routes: readonly ResolvedRoute[],
  log: AdapterLog,
): Promise<NotificationType[] | undefined> {
  const namesGroup = routes.some((route) =>
    route.types.some((item) => isTypeGroupName(item.toLowerCase())),
  );
  if (!config || !namesGroup || !config.findApiKey()) return undefined;
  try {
    return await config.client().listNotificationTypes();
  } catch (error) {
    log.warn(
      { reason: (error as Error).message },
      "could not fetch the notification types; route groups use the types vast-gchat knows",
    );
    return undefined;
  }
}
