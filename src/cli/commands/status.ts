import { type AdapterCounters, readAdmin } from "../../adapter/admin-client.js";
import { maskChatUrl, maskSecret } from "../../config/mask.js";
import { type AdapterRuntime, readRuntimeState } from "../../config/runtime-state.js";
import type { SecretName } from "../../config/secret-store.js";
import { describeEventStore, type EventStoreInfo } from "../../delivery/open-store.js";
import { isPlaceholderUrl, type Webhook } from "../../vast/api-types.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { createOutput, type OutputStreams } from "../output.js";
import { printableLine } from "../printable.js";
import { readRoutes, routeSpace, routeUrl } from "../route-config.js";
import { secretSource, withSecretFiles } from "../secret-files.js";
import { resolveStoreLocation, type StoreFlag, withStore } from "../store-access.js";

/**
 * `status`: everything a user needs to see at a glance, secrets masked: the configuration, where
 * secrets live, the event store and the driver it runs on here, the webhook as Vast.ai has it, and
 * the running adapter's health and queue. Parts
 * that cannot be read are reported as such; status itself fails only on bad usage.
 */
export interface StatusContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

const SECRETS: Array<[SecretName, string]> = [
  ["apiKey", "VAST_API_KEY"],
  ["webhookSecret", "VAST_WEBHOOK_SECRET"],
  ["chatUrl", "GOOGLE_CHAT_URL"],
];

export async function status(
  options: GlobalOptions & StoreFlag,
  context: StatusContext,
): Promise<number> {
  const out = createOutput(context, options);
  const config = openConfig(options, context.env);
  const settings = config.settings.read();
  // VAST_WEBHOOK_SECRET_FILE and GOOGLE_CHAT_URL_FILE count as the variables they stand for.
  const env = withSecretFiles(context.env);

  const secrets = Object.fromEntries(
    SECRETS.map(([name, variable]) => {
      const fromEnv = env[variable];
      const value = fromEnv || config.secrets.get(name);
      const masked =
        value === undefined ? null : name === "chatUrl" ? maskChatUrl(value) : maskSecret(value);
      const source = fromEnv ? (secretSource(context.env, variable) ?? variable) : "stored";
      return [name, { value: masked, source: value === undefined ? null : source }];
    }),
  );

  let webhook: Webhook | undefined;
  let webhookError: string | undefined;
  if (settings.webhookId !== undefined && config.findApiKey()) {
    try {
      webhook = await config.client().findWebhook(settings.webhookId);
      if (!webhook) webhookError = `webhook ${settings.webhookId} no longer exists on Vast.ai`;
    } catch (error) {
      webhookError = (error as Error).message;
    }
  }

  const storeLocation = resolveStoreLocation(
    options.store,
    context.env,
    config.configDir,
    out.warn,
  );
  const store = await describeEventStore(storeLocation, context.env);

  const runtime = readRuntimeState(config.configDir);
  // The detailed health and the counters are on the adapter's loopback listener; a serve older
  // than that listener had the detailed health on its only one.
  const admin = runtime ? await readAdmin(runtime.adminOrigin ?? runtime.origin) : undefined;
  const health = admin?.health;
  const expectedUrl = runtime?.publicUrl
    ? `${runtime.publicUrl.replace(/\/+$/, "")}${runtime.path}`
    : undefined;
  const warnings: string[] = [];
  if (webhook && isPlaceholderUrl(webhook.webhook_url)) {
    warnings.push(
      "The webhook is waiting for serve (it points at a placeholder): start `vast-gchat serve`.",
    );
  } else if (webhook && expectedUrl && webhook.webhook_url !== expectedUrl) {
    warnings.push(
      `The webhook points to ${webhook.webhook_url}, not to the running adapter (${expectedUrl}).`,
    );
  }
  if (webhookError) warnings.push(`Webhook: ${webhookError}`);
  for (const problem of runtime?.problems ?? []) {
    const since = describeTime(problem.since);
    warnings.push(printableLine(`Since ${since}: ${problem.title}. ${problem.action}`));
  }
  if (store.problem) warnings.push(`Event store: ${store.problem}.`);

  // Each route's queue: the running adapter's, else the store's when there is one.
  const queues = await routeQueues(health, store, storeLocation, warnings);
  const routes = readRoutes(config.settings).map((route) => {
    const url = routeUrl(route.name, env, config.secrets);
    return {
      name: route.name,
      types: route.types,
      space: routeSpace(route, url) ?? null,
      mentions: route.mentions,
      url_source: url?.source ?? null,
      queue: queues ? (queues.get(route.name) ?? { pending: 0, dead: 0 }) : null,
    };
  });

  out.result({
    config_dir: config.configDir,
    settings,
    routes,
    secrets: { store: config.secrets.kind, location: config.secrets.location, ...secrets },
    store: {
      kind: store.kind,
      driver: store.driver,
      path: store.location,
      exists: store.exists,
    },
    webhook: webhook ? pickWebhook(webhook) : null,
    adapter: runtime
      ? { ...runtime, health: health ?? null, counters: admin?.counters ?? null }
      : null,
    warnings,
  });

  out.line(`Config directory  ${config.configDir}`);
  out.line(`Secrets           ${config.secrets.location}`);
  for (const [name, { value, source }] of Object.entries(secrets)) {
    out.line(`  ${name.padEnd(15)} ${value ?? "(not set)"}${source ? `  [${source}]` : ""}`);
  }
  out.line(`Store             ${describeStore(store)}`);
  out.line(`Routes            ${routes.length}`);
  for (const route of routes) {
    const mentions = route.mentions.length ? `, mentioning ${route.mentions.join(", ")}` : "";
    const queue = route.queue ? `  [${describeQueue(route.queue)}]` : "";
    out.line(
      `  ${route.name.padEnd(15)} ${printableLine(route.types.join(", "))} -> ${route.space === null ? "(no Chat URL)" : printableLine(route.space)}${mentions}${queue}`,
    );
  }
  out.line(
    `Tunnel            ${settings.tunnel ?? "(not set)"}${settings.publicUrl ? ` (${settings.publicUrl})` : ""}`,
  );
  if (webhook) {
    out.line(`Webhook           ${webhook.id} "${webhook.name ?? ""}" -> ${webhook.webhook_url}`);
    out.line(`  event types     ${webhook.event_types.join(", ")}`);
  } else if (settings.webhookId === undefined) {
    out.line("Webhook           none set up: run `vast-gchat init`");
  }
  if (runtime) {
    out.line(`Adapter           running (pid ${runtime.pid}) on ${runtime.origin}${runtime.path}`);
    out.line(`  public URL      ${runtime.publicUrl ?? "(none)"}`);
    const tunnel = runtime.tunnel;
    if (tunnel) {
      const probe = tunnel.lastProbe;
      const probed = probe
        ? `${probe.ok ? "ok" : `failed (${probe.error ?? "?"})`} at ${new Date(probe.at).toLocaleTimeString()}`
        : "not yet";
      out.line(
        `  tunnel          ${tunnel.provider}, ${tunnel.restarts} restarts, last probe ${probed}`,
      );
    }
    out.line(`  health          ${health ? JSON.stringify(health) : "not answering"}`);
    out.line(`  problems        ${describeProblems(runtime.problems ?? [])}`);
    if (admin?.counters) out.line(`  since start     ${describeCounters(admin.counters)}`);
  } else {
    out.line("Adapter           not running here");
  }
  for (const warning of warnings) out.warn(warning);
  return 0;
}

/**
 * The fields we know, as `init` reports them: Vast.ai's reply is printed by allow-list, so a secret
 * or anything else it may add one day never reaches the output.
 */
function pickWebhook(webhook: Webhook) {
  return {
    id: webhook.id,
    name: webhook.name ?? null,
    url: webhook.webhook_url,
    event_types: webhook.event_types,
  };
}

/** "sqlite (node:sqlite) /path/events.db", and whether it is there yet. */
function describeStore(store: EventStoreInfo): string {
  const driver = store.driver ?? "no driver";
  return `${store.kind} (${driver}) ${store.location}${store.exists ? "" : " (not created yet)"}`;
}

/** A time today as the clock shows it; another day with its date. */
function describeTime(ms: number): string {
  const date = new Date(ms);
  const today = date.toDateString() === new Date().toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

/** "none", or each open problem with when it began, on lines of their own. */
function describeProblems(problems: NonNullable<AdapterRuntime["problems"]>): string {
  if (problems.length === 0) return "none";
  return problems
    .map(
      (problem) =>
        `\n    ${printableLine(`${problem.kind} since ${describeTime(problem.since)}: ${problem.summary}`)}`,
    )
    .join("");
}

function describeCounters(counters: AdapterCounters): string {
  const rejected = Object.values(counters.rejected).reduce((sum, n) => sum + n, 0);
  return [
    `${counters.received} received`,
    `${counters.duplicates} duplicates`,
    `${rejected} rejected`,
    `${counters.delivered} delivered`,
    `${counters.retries} retries`,
    `${counters.dead} dead`,
  ].join(", ");
}

interface RouteQueue {
  pending: number;
  dead: number;
  /** Seconds; absent when nothing waits. */
  oldest_pending_age_s?: number | null;
  /** From a running adapter: "degraded" while its Chat fails with events waiting. */
  status?: string;
}

/**
 * Each route's queue, by name: from the running adapter's detailed health when it answers, else
 * read from the store (when there is one); undefined when neither can tell. A store that cannot be
 * read is a warning: status fails only on bad usage.
 */
async function routeQueues(
  health: unknown,
  store: EventStoreInfo,
  /** Where the store is: `store.location` is how it is shown, without a password. */
  location: string,
  warnings: string[],
): Promise<Map<string, RouteQueue> | undefined> {
  const fromAdapter = (health as { routes?: Record<string, unknown> } | undefined)?.routes;
  if (fromAdapter && typeof fromAdapter === "object") {
    return new Map(
      Object.entries(fromAdapter).map(([name, value]) => {
        const route = value as {
          status?: string;
          queue?: { pending?: number; oldest_pending_age_s?: number | null };
          dead?: number;
        };
        return [
          name,
          {
            pending: route.queue?.pending ?? 0,
            dead: route.dead ?? 0,
            oldest_pending_age_s: route.queue?.oldest_pending_age_s ?? null,
            ...(route.status ? { status: route.status } : {}),
          },
        ];
      }),
    );
  }
  if (!store.exists || store.driver === null || store.problem !== null) return undefined;
  try {
    const queue = await withStore(location, (opened) => opened.queue());
    const now = Date.now();
    return new Map(
      Object.entries(queue.routes).map(([name, counts]) => [
        name,
        {
          pending: counts.pending,
          dead: counts.dead,
          oldest_pending_age_s:
            counts.oldestPendingAt === null
              ? null
              : Math.max(0, (now - counts.oldestPendingAt) / 1000),
        },
      ]),
    );
  } catch (error) {
    warnings.push(`Event store: ${(error as Error).message}`);
    return undefined;
  }
}

/** "2 pending (oldest 31 s), 1 dead, degraded" */
function describeQueue(queue: RouteQueue): string {
  const age =
    queue.pending > 0 && typeof queue.oldest_pending_age_s === "number"
      ? ` (oldest ${Math.round(queue.oldest_pending_age_s)} s)`
      : "";
  const degraded = queue.status === "degraded" ? ", Chat failing" : "";
  return `${queue.pending} pending${age}, ${queue.dead} dead${degraded}`;
}
