import { withMentions } from "../../chat/mentions.js";
import { createChatPoster } from "../../chat/post-message.js";
import { renderMessage } from "../../chat/render.js";
import { chatSpaceKey, type ParsedChatUrl } from "../../chat/webhook-url.js";
import { type Route, routeSecretName } from "../../config/routes.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import type { DeliveryState, EventStore } from "../../delivery/event-store.js";
import { eventStoreExists } from "../../delivery/open-store.js";
import { DEFAULT_ROUTE, MAX_MENTIONS, type Mention, TYPE_GROUPS } from "../../route-syntax.js";
import {
  checkTypeList,
  sampleTypeFor,
  sampleTypeOnlyFor,
  validTypeItems,
} from "../../vast/routing.js";
import { sampleEvent } from "../../vast/sample-events.js";
import { type SentEvent, sendSignedEvent } from "../../vast/send-event.js";
import { splitTypeList } from "../../vast/type-selection.js";
import {
  askChatUrlText,
  checkedChatUrl,
  postCheckMessage,
  routeCheckMessage,
} from "../chat-check.js";
import { type ConfigContext, openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
import { createOutput, type Output, type OutputStreams } from "../output.js";
import { printableLine } from "../printable.js";
import { createPrompter } from "../prompter.js";
import { readRoutes, routeSpace, routeUrl, type UrlSource } from "../route-config.js";
import { resolveStoreLocation, type StoreFlag, withStore } from "../store-access.js";
import {
  catalogueIfKey,
  reportWebhookTypes,
  updateWebhookTypes,
  webhookTypesJson,
} from "../webhook-types.js";
import { signingSecret } from "./trigger.js";

/**
 * `route`: which Chat space gets which notifications (README, "Routes"). A route is a name, a type
 * list (keys, slugs, groups or `all`), a Chat URL kept as a secret, and the people its messages
 * mention. `add` and `remove` keep the Vast.ai webhook subscribed to what the routes need; `list`
 * shows them without their URLs' key or token; `test` sends a sample the way the route's events go.
 */
export const ROUTE_ACTIONS = ["add", "list", "remove", "test"] as const;
export type RouteAction = (typeof ROUTE_ACTIONS)[number];

export interface RouteOptions extends GlobalOptions, StoreFlag {
  /** add: the type list, as typed. */
  types?: string;
  chatUrlStdin?: boolean;
  chatUrl?: string;
  /** add: checked and normalised where commander parses them (option-parsers.ts). */
  mention?: Mention[];
  replace?: boolean;
  chatCheck?: boolean;
  /** test: seconds to wait for a running adapter to deliver the sample. */
  wait?: number;
}

export interface RouteContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

const LIST_HINT = "`vast-gchat route list` shows the routes.";
const POLL_MS = 100;

export async function route(
  action: RouteAction,
  name: string | undefined,
  options: RouteOptions,
  context: RouteContext,
): Promise<number> {
  const out = createOutput(context, options);
  const config = openConfig(options, context.env);
  // The event store (--store, VAST_GCHAT_STORE, else events.db here): counts, forgetting, test.
  const store = resolveStoreLocation(options.store, context.env, config.configDir, out.warn);
  switch (action) {
    case "add":
      return addRoute(name as string, options, context, config, out);
    case "list":
      return listRoutes(config, out, store);
    case "remove":
      return removeRoute(name as string, config, out, store);
    case "test":
      return testRoute(name as string, options, config, out, store);
  }
}

// ---------------------------------------------------------------------------------------------
// add

async function addRoute(
  name: string,
  options: RouteOptions,
  context: RouteContext,
  config: ConfigContext,
  out: Output,
): Promise<number> {
  const routes = readRoutes(config.settings);
  const existing = routes.find((route) => route.name === name);
  if (existing && !options.replace) {
    throw usageError(
      `The route ${name} exists already (${existing.types.join(", ")}).`,
      "Pass --replace to change it, or choose another name; `vast-gchat route list` shows the routes.",
    );
  }
  if (options.chatUrlStdin && options.chatUrl !== undefined) {
    throw usageError("Give the Chat URL once: --chat-url-stdin or --chat-url, not both.");
  }
  const mentions = [...new Set(options.mention ?? [])];
  if (mentions.length > MAX_MENTIONS) {
    throw usageError(`A route mentions at most ${MAX_MENTIONS} people, not ${mentions.length}.`);
  }
  const typeItems = splitTypeList(options.types ?? "");
  if (typeItems.length === 0) {
    throw usageError(
      "--types needs at least one event type, group or all.",
      `Groups: ${TYPE_GROUPS.join(", ")}; \`vast-gchat types\` lists the types.`,
    );
  }

  // Every check before anything is posted, changed or stored.
  const kept = existing ? routeUrl(name, {}, config.secrets) : undefined;
  // GOOGLE_CHAT_URL is the `default` route's: it replaces another route's stored URL only when
  // given by a flag, never by being in the environment.
  const envAllowed = name === DEFAULT_ROUTE || kept === undefined;
  const given = await givenChatUrl(name, options, context, out, envAllowed);
  const catalogue = await catalogueIfKey(config, out);
  const { types, unknown } = checkTypeList(typeItems, catalogue);
  if (unknown.length > 0) {
    throw usageError(
      `--types: ${unknown.map(printableLine).join(", ")} ${unknown.length > 1 ? "are" : "is"} not an event type, group or all.`,
      `Valid: ${validTypeItems(catalogue).join(", ")} (types also as keys, e.g. client:low_credit).`,
    );
  }
  const raw = given ?? kept?.raw ?? (await askForUrl(name, context, options));
  const chat = checkedChatUrl(raw, out);
  warnSharedSpace(name, chat, routes, config, out);
  const unchangedUrl = kept !== undefined && kept.raw === raw;
  if (options.chatCheck !== false && !unchangedUrl) {
    await postCheckMessage(chat, out, routeCheckMessage(name));
  }

  const added: Route = { name, types, mentions, chatSpace: chat.label };
  const next = existing
    ? routes.map((route) => (route.name === name ? added : route))
    : [...routes, added];
  // The webhook first: if Vast.ai refuses, nothing here has changed (exit 1, run it again). A
  // webhook subscribed to more than the routes need only sends more events to `default`.
  const webhook = await updateWebhookTypes(config, next, catalogue, out);
  storeRoutes(config, next, { name, url: chat.url.href });

  const restart = runningAdapterNote(config);
  out.result({
    ok: true,
    action: existing ? "replaced" : "added",
    route: routeJson(added, chat.label),
    webhook: webhookTypesJson(webhook),
    secrets: { kind: config.secrets.kind, location: config.secrets.location },
    restart_needed: restart !== undefined,
  });
  out.line(
    `Route ${name} ${existing ? "replaced" : "added"}: ${types.join(", ")} -> Google Chat ${chat.label}${mentions.length ? `, mentioning ${mentions.join(", ")}` : ""}.`,
  );
  out.line(`Its Chat URL is kept in ${config.secrets.location}.`);
  reportWebhookTypes(webhook, out);
  if (restart) out.warn(restart);
  return ExitCode.Ok;
}

/**
 * The URL given for this run: --chat-url-stdin (one line), --chat-url (with a warning: its token
 * shows in ps), or GOOGLE_CHAT_URL when `envAllowed`; undefined when none is.
 */
async function givenChatUrl(
  name: string,
  options: RouteOptions,
  context: RouteContext,
  out: Output,
  envAllowed: boolean,
): Promise<string | undefined> {
  if (options.chatUrlStdin) {
    if (context.stdin.isTTY) {
      context.stderr.write(`Reading the Chat URL of ${name} from standard input (then Ctrl+D)…\n`);
    }
    let text = "";
    for await (const chunk of context.stdin) text += String(chunk);
    const line = text
      .split(/\r?\n/)
      .map((part) => part.trim())
      .find(Boolean);
    if (!line) throw usageError("--chat-url-stdin read nothing from standard input.");
    return line;
  }
  if (options.chatUrl !== undefined) {
    out.warn(
      "--chat-url puts the webhook's token in the process list and your shell history; --chat-url-stdin or GOOGLE_CHAT_URL keeps it out.",
    );
    return options.chatUrl;
  }
  return (envAllowed && context.env.GOOGLE_CHAT_URL) || undefined;
}

/** On a terminal, asked (shown masked); otherwise an error naming the flags. */
async function askForUrl(name: string, context: RouteContext, options: RouteOptions) {
  const ask = createPrompter({
    interactive: Boolean(context.stdin.isTTY && context.stdout.isTTY) && !options.json,
    yes: false,
    interrupted: "Interrupted; no route was added.",
  });
  return askChatUrlText(
    ask,
    `Google Chat webhook URL for the route ${name}`,
    "--chat-url-stdin (or set GOOGLE_CHAT_URL)",
  );
}

/** Two routes into one space post each of their events there twice: allowed, but said. */
function warnSharedSpace(
  name: string,
  chat: ParsedChatUrl,
  routes: Route[],
  config: ConfigContext,
  out: Output,
): void {
  for (const other of routes) {
    if (other.name === name) continue;
    const url = routeUrl(other.name, config.env, config.secrets);
    if (url && sameSpace(url.raw, chat)) {
      out.warn(
        `The route ${other.name} posts to the same space (${chat.label}): an event both match appears there twice.`,
      );
    }
  }
}

function sameSpace(raw: string, chat: ParsedChatUrl): boolean {
  try {
    const url = new URL(raw);
    return chatSpaceKey(url) === chatSpaceKey(chat.url);
  } catch {
    return false;
  }
}

/**
 * The routes and one route's URL stored; if the settings cannot be written, the URL is put back as
 * it was, so a failed run changes nothing here.
 */
function storeRoutes(
  config: ConfigContext,
  routes: Route[],
  secret: { name: string; url: string } | undefined,
): void {
  const secretName = secret ? routeSecretName(secret.name) : undefined;
  const before = secretName ? config.secrets.get(secretName) : undefined;
  try {
    if (secret && secretName) config.secrets.set(secretName, secret.url);
    const defaultRoute = routes.find((route) => route.name === DEFAULT_ROUTE);
    config.settings.update({ routes, chatSpace: defaultRoute?.chatSpace });
  } catch (error) {
    try {
      if (secretName && before === undefined) config.secrets.delete(secretName);
      else if (secretName && before !== undefined) config.secrets.set(secretName, before);
    } catch {
      // The store refuses writes; nothing more can be done here.
    }
    throw new CliError(`Could not store the routes: ${(error as Error).message}`, {
      hint: `Check that ${config.configDir} is writable, then run the command again.`,
      cause: error,
    });
  }
}

/**
 * Gives up the removed route's deliveries not yet made; the route is gone either way, so a store
 * that cannot be written now is a warning (its events then stay pending, for no one).
 */
async function forgetDeliveries(path: string, name: string, out: Output): Promise<number> {
  if (!eventStoreExists(path)) return 0;
  try {
    return await withStore(path, (store) => store.forgetRoute(name));
  } catch (error) {
    out.warn(
      `${(error as Error).message} The events that waited for the route ${name} stay in the store.`,
    );
    return 0;
  }
}

/**
 * A running serve delivers the routes as they were when it started (their URLs and mentions too):
 * after a change, it must be restarted. Undefined when no adapter runs here.
 */
function runningAdapterNote(config: ConfigContext): string | undefined {
  const runtime = readRuntimeState(config.configDir);
  if (!runtime) return undefined;
  return `The adapter running here (pid ${runtime.pid}) delivers the routes as they were when it started: restart \`vast-gchat serve\` for this change to take effect.`;
}

// ---------------------------------------------------------------------------------------------
// list

interface RouteCounts {
  pending: number;
  delivered: number;
  dead: number;
}

async function listRoutes(config: ConfigContext, out: Output, store: string): Promise<number> {
  const routes = readRoutes(config.settings);
  const counts = await routeCounts(store, routes);
  const rows = routes.map((route) => {
    const url = routeUrl(route.name, config.env, config.secrets);
    return {
      ...routeJson(route, routeSpace(route, url) ?? null),
      url_source: (url?.source ?? null) satisfies UrlSource | null,
      counts: counts?.get(route.name) ?? null,
    };
  });
  out.result({ routes: rows });
  const table = [
    ["NAME", "TYPES", "SPACE", "MENTIONS", "PENDING", "DELIVERED", "DEAD"],
    ...rows.map((row) => [
      row.name,
      row.types.map(printableLine).join(","),
      row.space === null ? "(no URL)" : printableLine(row.space),
      row.mentions.join(",") || "-",
      String(row.counts?.pending ?? "-"),
      String(row.counts?.delivered ?? "-"),
      String(row.counts?.dead ?? "-"),
    ]),
  ];
  const widths = table[0]?.map((_, column) =>
    Math.max(...table.map((cells) => (cells[column] ?? "").length)),
  );
  for (const cells of table) {
    out.line(
      cells
        .map((cell, column) => cell.padEnd(widths?.[column] ?? 0))
        .join("  ")
        .trimEnd(),
    );
  }
  const fromEnv = rows.find((row) => row.url_source === "GOOGLE_CHAT_URL");
  if (fromEnv) out.line(`The route ${fromEnv.name} posts to GOOGLE_CHAT_URL's space here.`);
  return ExitCode.Ok;
}

/**
 * Each route's pending, delivered and dead deliveries (events the store still holds), or undefined
 * when there is no event store yet.
 */
export async function routeCounts(
  path: string,
  routes: readonly Route[],
): Promise<Map<string, RouteCounts> | undefined> {
  if (!eventStoreExists(path)) return undefined;
  const stats = await withStore(path, (store) => store.stats());
  return new Map(
    routes.map((route) => {
      const counts = stats.routes[route.name];
      return [
        route.name,
        {
          pending: counts?.pending ?? 0,
          delivered: counts?.delivered ?? 0,
          dead: counts?.dead ?? 0,
        },
      ];
    }),
  );
}

function routeJson(route: Route, space: string | null) {
  return { name: route.name, types: route.types, space, mentions: route.mentions };
}

// ---------------------------------------------------------------------------------------------
// remove

async function removeRoute(
  name: string,
  config: ConfigContext,
  out: Output,
  store: string,
): Promise<number> {
  const routes = readRoutes(config.settings);
  if (!routes.some((route) => route.name === name)) {
    throw usageError(`There is no route ${name}.`, LIST_HINT);
  }
  if (name === DEFAULT_ROUTE) {
    throw usageError(
      routes.length === 1
        ? "The route default is the last route, and the last route cannot be removed."
        : "The route default cannot be removed: it gets every event no other route matches.",
      "To send those to another space, replace it: `vast-gchat route add default --types all --chat-url-stdin --replace`.",
    );
  }
  const next = routes.filter((route) => route.name !== name);
  const catalogue = await catalogueIfKey(config, out);
  const webhook = await updateWebhookTypes(config, next, catalogue, out);
  storeRoutes(config, next, undefined);
  config.secrets.delete(routeSecretName(name));
  // What still waited for the route has nowhere to go: given up, and said.
  const dropped = await forgetDeliveries(store, name, out);

  const restart = runningAdapterNote(config);
  out.result({
    ok: true,
    action: "removed",
    route: name,
    webhook: webhookTypesJson(webhook),
    dropped,
    restart_needed: restart !== undefined,
  });
  out.line(`Route ${name} removed, and its Chat URL with it.`);
  if (dropped > 0) {
    out.line(
      `${dropped} ${dropped === 1 ? "event" : "events"} still waiting for it (pending or dead) will not be posted.`,
    );
  }
  reportWebhookTypes(webhook, out);
  if (restart) out.warn(restart);
  return ExitCode.Ok;
}

// ---------------------------------------------------------------------------------------------
// test

async function testRoute(
  name: string,
  options: RouteOptions,
  config: ConfigContext,
  out: Output,
  store: string,
): Promise<number> {
  const routes = readRoutes(config.settings);
  const route = routes.find((candidate) => candidate.name === name);
  if (!route) throw usageError(`There is no route ${name}.`, LIST_HINT);
  const url = routeUrl(name, config.env, config.secrets);
  if (!url) {
    throw usageError(
      `The route ${name} has no Chat URL here.`,
      name === DEFAULT_ROUTE
        ? "Run `vast-gchat init`, or set GOOGLE_CHAT_URL."
        : `Run \`vast-gchat route add ${name} --types ${route.types.join(",")} --chat-url-stdin --replace\`.`,
    );
  }
  // Its warning (a host other than Google's) was shown when the route was added.
  const chat = checkedChatUrl(url.raw, { warn: () => {} });
  const runtime = readRuntimeState(config.configDir);
  // A serve that does not name its routes delivers everything to one space: `default`'s.
  const delivered = runtime ? (runtime.routes ?? [DEFAULT_ROUTE]) : [];
  const viaAdapter = runtime !== undefined && delivered.includes(name);
  // Through the adapter the sample goes wherever its type is routed: a type for this route alone,
  // when there is one, keeps it out of the other spaces.
  const type = viaAdapter ? sampleTypeOnlyFor(route, routes) : sampleTypeFor(route);
  const event = sampleEvent(type);
  event.subject = `Test of the route ${name}: ${event.subject}`;

  if (runtime && viaAdapter) {
    const target = `${runtime.origin}${runtime.path}`;
    const sent = await out.step(`Sending a signed ${type} sample to the adapter at ${target}`, () =>
      sendToAdapter(target, signingSecret(options, config.env), event),
    );
    if (sent.status < 200 || sent.status >= 300) {
      throw new CliError(
        `The adapter at ${target} refused the sample (${sent.status} ${printableLine(JSON.stringify(sent.answer))}).`,
        {
          hint: "A 401 means the signing secrets differ: `vast-gchat status` shows where each is from.",
        },
      );
    }
    const waitSeconds = options.wait ?? 30;
    const askedAt = Date.now();
    const followed = await withStore(store, (opened) =>
      out.step(
        `Waiting up to ${waitSeconds} s for the adapter to deliver it`,
        () => followEvent(opened, event.event_id, name, waitSeconds * 1000),
        (found) =>
          found?.delivery?.state === "delivered"
            ? `The sample reached ${chat.label}`
            : { failed: `The sample has not reached ${chat.label}` },
      ),
    );
    const stored = followed?.delivery;
    if (stored?.state !== "delivered") {
      out.result({ ok: false, route: name, via: "adapter", event_id: event.event_id });
      throw new CliError(
        `The adapter received the sample but Google Chat has not taken it${stored?.lastError ? `: ${stored.lastError}` : ""}.`,
        { hint: "`vast-gchat events show ID` shows every attempt; check the route's Chat URL." },
      );
    }
    const seconds = ((stored.deliveredAt ?? Date.now()) - askedAt) / 1000;
    // No type goes to this route alone (default takes every type, say): the others it went to.
    const also = (followed?.routes ?? []).filter((other) => other !== name);
    out.result({
      ...testJson(name, type, event.event_id, "adapter", chat.label, seconds),
      also_routed_to: also,
    });
    out.line(
      `The ${type} sample went through the adapter (pid ${runtime.pid}) and arrived in ${chat.label} in ${seconds.toFixed(1)} s.`,
    );
    if (also.length > 0) {
      out.line(
        `Every ${type} event also goes to the route${also.length > 1 ? "s" : ""} ${also.join(", ")}, and so did this sample.`,
      );
    }
    return ExitCode.Ok;
  }

  if (runtime) {
    out.warn(
      `The adapter running here (pid ${runtime.pid}) does not deliver the route ${name}: posting the sample straight to its space.`,
    );
  }
  const message = withMentions(
    renderMessage(event, { eventId: event.event_id, format: "card" }),
    route.mentions,
  );
  const startedAt = Date.now();
  const outcome = await out.step(`Posting a ${type} sample to ${chat.label}`, () =>
    createChatPoster(chat.url, { timeoutMs: 10_000 }).post(message),
  );
  if (outcome.kind !== "delivered") {
    out.result({ ok: false, route: name, via: "direct", reason: outcome.reason });
    throw new CliError(`Google Chat did not take the sample: ${outcome.reason}.`, {
      hint: `Copy the webhook URL again from the space, then \`vast-gchat route add ${name} --types ${route.types.join(",")} --chat-url-stdin --replace\`.`,
    });
  }
  const seconds = (Date.now() - startedAt) / 1000;
  out.result(testJson(name, type, event.event_id, "direct", chat.label, seconds));
  out.line(
    `The ${type} sample arrived in ${chat.label}${runtime ? "" : " (posted straight to the space: no adapter runs here)"}.`,
  );
  return ExitCode.Ok;
}

async function sendToAdapter(
  target: string,
  secret: string,
  event: { event_id: string },
): Promise<SentEvent> {
  try {
    return await sendSignedEvent(target, secret, event);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new CliError(`Could not reach the adapter at ${target} (${code ?? "network error"}).`, {
      hint: "Is `vast-gchat serve` still running? `vast-gchat status` shows it.",
    });
  }
}

/**
 * Waits until the adapter has delivered the event to the route's space, or given up on that, or
 * time is up: the route's own delivery, whatever other routes the sample also goes to.
 */
async function followEvent(
  store: EventStore,
  eventId: string,
  route: string,
  timeoutMs: number,
): Promise<{ delivery: DeliveryState | undefined; routes: string[] } | undefined> {
  const deadline = Date.now() + timeoutMs;
  const find = async () => {
    const event = await store.get(eventId);
    return (
      event && {
        delivery: event.deliveries.find((delivery) => delivery.route === route),
        routes: event.deliveries.map((delivery) => delivery.route),
      }
    );
  };
  const settled = (state: string | undefined) => state === "delivered" || state === "dead";
  let found = await find();
  while (!settled(found?.delivery?.state) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    found = await find();
  }
  return found;
}

function testJson(
  name: string,
  type: string,
  eventId: string,
  via: "adapter" | "direct",
  space: string,
  seconds: number,
) {
  return { ok: true, route: name, type, event_id: eventId, via, space, seconds };
}
