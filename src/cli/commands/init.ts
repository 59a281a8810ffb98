import { hostname } from "node:os";
import type { ParsedChatUrl } from "../../chat/webhook-url.js";
import { type Route, routesOf } from "../../config/routes.js";
import type { TunnelChoice } from "../../config/settings.js";
import { checkRouteName, type Mention, parseMention, TYPE_GROUPS } from "../../route-syntax.js";
import { checkServiceUrl } from "../../service-url.js";
import { VastApiError, type VastClient } from "../../vast/api-client.js";
import {
  DEFAULT_EVENT_TYPES,
  MAX_WEBHOOK_NAME_LENGTH,
  type NotificationType,
  WEBHOOK_NAME_MARK,
  type Webhook,
} from "../../vast/api-types.js";
import { GROUP_ORDER, groupOfType } from "../../vast/event-types.js";
import { checkTypeList, sameSubscription, subscriptionOf } from "../../vast/routing.js";
import {
  chooseEventTypes,
  slugOf,
  splitTypeList,
  subscribedSlugs,
} from "../../vast/type-selection.js";
import {
  askChatUrlText,
  checkedChatUrl,
  postCheckMessage,
  routeCheckMessage,
} from "../chat-check.js";
import { type ConfigContext, openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { CliError, usageError } from "../errors.js";
import {
  applySetup,
  type RouteAnswer,
  type SetupAnswers,
  type SetupPlan,
} from "../init/apply-setup.js";
import { createOutput, type Output, type OutputStreams } from "../output.js";
import { createPrompter, type Prompter } from "../prompter.js";
import { DEFAULT_PATH, DEFAULT_PORT } from "../serve-options.js";

/**
 * `init`: the tutorial's control terminal as a wizard. Every question is asked before anything is
 * created on Vast.ai, so an interrupted wizard leaves nothing behind; then `applySetup`
 * (init/apply-setup.ts) changes the account and stores the configuration, deleting a new webhook
 * again if nothing could be stored. This module keeps the questions and the report.
 */
export interface InitOptions extends GlobalOptions {
  apiKeyStdin?: boolean;
  chatUrlStdin?: boolean;
  chatUrl?: string;
  events?: string;
  name?: string;
  tunnel?: TunnelChoice;
  tunnelCommand?: string;
  publicUrl?: string;
  /** Checked where commander parses it. */
  port?: number;
  existing?: "keep" | "update" | "replace";
  chatCheck?: boolean;
  yes?: boolean;
}

export interface InitContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where SIGINT and SIGTERM arrive: the process by default, or a test's emitter. */
  signals?: NodeJS.EventEmitter;
}

export async function init(options: InitOptions, context: InitContext): Promise<number> {
  const out = createOutput(context, options);
  const config = openConfig(options, context.env);
  const piped = options.apiKeyStdin || options.chatUrlStdin;
  const interactive = Boolean(context.stdin.isTTY && context.stdout.isTTY) && !piped;
  const input = await readPipedSecrets(options, context);
  const ask = createPrompter({
    interactive,
    yes: Boolean(options.yes),
    interrupted: "Set-up interrupted; nothing was changed.",
  });

  const { apiKey, client } = await checkedApiKey(input.apiKey, config, ask, out);
  const chat = await askChatUrl(options, input.chatUrl, config, ask, out);
  const stored = config.settings.read();
  const webhooks = await client.listWebhooks();
  const existing = findExisting(webhooks, stored.webhookId, options.name);
  const action = existing ? await askExisting(options, ask, existing) : "create";
  const keep = action === "keep" && existing;
  const catalogue = keep
    ? undefined
    : await fetchCatalogue(client, out, options.events === undefined ? undefined : "--events");
  const eventTypes = keep
    ? (stored.eventTypes ?? existing.event_types)
    : await askEventTypes(options, ask, catalogue, existing);
  const name = keep ? (existing.name ?? "") : await askName(options, ask, existing);
  const tunnel = await askTunnel(options, ask, stored);
  // At the end of the wizard, more spaces: on a terminal only (flags add them: `route add`).
  let routeCatalogue: Promise<NotificationType[] | undefined> | undefined;
  const loadCatalogue = () => {
    routeCatalogue ??= keep
      ? fetchCatalogue(client, out, "routes' types")
      : Promise.resolve(catalogue);
    return routeCatalogue;
  };
  const extraRoutes = ask.interactive
    ? await askMoreRoutes(options, ask, out, routesOf(stored), loadCatalogue)
    : [];
  // The wizard takes only new names: the routes there were, and those added.
  const routes = [...routesOf(stored), ...extraRoutes.map(({ route }) => route)];
  if (keep && extraRoutes.length > 0) {
    const wanted = subscriptionOf(routes, await loadCatalogue(), eventTypes);
    if (!sameSubscription(wanted, existing.event_types)) {
      out.warn(
        `Webhook ${existing.id} is kept as it is, so it does not subscribe to every type the new routes need; \`vast-gchat init --existing update\` updates it.`,
      );
    }
  }
  const answers: SetupAnswers = {
    apiKey,
    chat,
    eventTypes,
    // "keep" leaves the webhook as it is; otherwise it gets what the routes need too.
    ...(keep ? {} : { subscription: subscriptionOf(routes, catalogue, eventTypes) }),
    extraRoutes,
    name,
    ...tunnel,
    port: options.port ?? stored.port ?? DEFAULT_PORT,
  };
  const webhookUrl = answers.publicUrl
    ? joinUrl(answers.publicUrl, stored.path ?? DEFAULT_PATH)
    : undefined;
  if (webhookUrl && !keep) refuseUrlHeldByAnother(webhooks, webhookUrl, existing);

  // Every question is answered; from here the account changes, so finish even on Ctrl+C rather
  // than leave a webhook without its stored secret.
  const plan: SetupPlan =
    existing && action !== "create"
      ? { action, existing, answers, webhookUrl }
      : { action: "create", answers, webhookUrl };
  const { webhook } = await finishing(out, context.signals ?? process, () =>
    applySetup(plan, { client, config, out }),
  );
  if (config.secrets.notice) out.warn(config.secrets.notice);
  report(out, config, answers, webhook, action);
  return 0;
}

/** Runs the part that must not be cut short: a Ctrl+C waits for it instead of killing it. */
async function finishing<T>(
  out: Output,
  signals: NodeJS.EventEmitter,
  work: () => Promise<T>,
): Promise<T> {
  const hold = () => out.warn("Finishing the set-up first, so that nothing is left half-made…");
  signals.on("SIGINT", hold);
  signals.on("SIGTERM", hold);
  try {
    return await work();
  } finally {
    signals.off("SIGINT", hold);
    signals.off("SIGTERM", hold);
  }
}

/** The stored webhook, or else one of this account's with the name this set-up would give. */
function findExisting(
  webhooks: Webhook[],
  webhookId: number | undefined,
  name: string | undefined,
): Webhook | undefined {
  const byId = webhooks.find((webhook) => webhook.id === webhookId);
  if (byId) return byId;
  const wanted = name ?? defaultWebhookName();
  return webhooks.find((webhook) => webhook.name === wanted);
}

/**
 * Vast.ai delivers each notification to every webhook subscribed to it, so two webhooks pointing at
 * one adapter would post everything twice; and it refuses a URL already registered. Say which
 * webhook holds the URL before anything is created.
 */
function refuseUrlHeldByAnother(webhooks: Webhook[], url: string, existing: Webhook | undefined) {
  const holder = webhooks.find((w) => w.webhook_url === url && w.id !== existing?.id);
  if (!holder) return;
  const named = holder.name ? ` "${holder.name}"` : "";
  throw usageError(
    `Webhook ${holder.id}${named} already points at ${url}, and Vast.ai allows one webhook per URL.`,
    holder.name
      ? `Run init with --name "${holder.name}" to reuse it, or delete it first (in the Vast.ai console, or \`vast-gchat cleanup --all\` if vast-gchat made it).`
      : "Delete it first in the Vast.ai console, or give another --public-url.",
  );
}

function defaultWebhookName(): string {
  return `${WEBHOOK_NAME_MARK} on ${hostname()}`.slice(0, MAX_WEBHOOK_NAME_LENGTH);
}

/** The key, checked by a real call; on a terminal, a refused stored key can be replaced. */
async function checkedApiKey(
  piped: string | undefined,
  config: ConfigContext,
  ask: Prompter,
  out: Output,
): Promise<{ apiKey: string; client: VastClient }> {
  let apiKey = piped ?? (await askApiKey(config, ask));
  for (;;) {
    const client = config.client(apiKey);
    try {
      await out.step(
        "Checking the API key",
        () => client.currentUser(),
        (user) => `API key accepted (Vast.ai user ${user.id})`,
      );
      return { apiKey, client };
    } catch (error) {
      const refused = error instanceof VastApiError && error.reason === "unauthorized";
      if (!refused) throw error;
      if (!ask.interactive) {
        throw new CliError(error.message, {
          hint: `${error.hint ?? ""} Give another key with --api-key-stdin or VAST_API_KEY.`.trim(),
        });
      }
      out.warn(`${error.message} ${error.hint ?? ""}`.trim());
      apiKey = (
        await ask.secret("Another Vast.ai API key", "--api-key-stdin or VAST_API_KEY")
      ).trim();
    }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/**
 * Secrets given on standard input, so that none is on the command line (where `ps` and the shell's
 * history show it): the API key with --api-key-stdin, the Chat URL with --chat-url-stdin, one a
 * line in that order when both are given.
 */
async function readPipedSecrets(
  options: InitOptions,
  context: InitContext,
): Promise<{ apiKey?: string | undefined; chatUrl?: string | undefined }> {
  if (!options.apiKeyStdin && !options.chatUrlStdin) return {};
  if (options.chatUrlStdin && options.chatUrl !== undefined) {
    throw usageError("Give the Chat URL once: --chat-url-stdin or --chat-url, not both.");
  }
  const wanted = [options.apiKeyStdin && "API key", options.chatUrlStdin && "Chat URL"].filter(
    (name): name is string => Boolean(name),
  );
  if (context.stdin.isTTY) {
    context.stderr.write(
      `Reading the ${wanted.join(", then the ")} from standard input (one a line, then Ctrl+D)…\n`,
    );
  }
  const lines = (await readAll(context.stdin))
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  if (lines.length < wanted.length) {
    const flags = [
      options.apiKeyStdin && "--api-key-stdin",
      options.chatUrlStdin && "--chat-url-stdin",
    ];
    throw usageError(
      `${flags.filter(Boolean).join(" and ")} read ${lines.length ? "only one line" : "nothing"} from standard input.`,
      wanted.length > 1
        ? "Give the API key on the first line and the Chat URL on the second."
        : undefined,
    );
  }
  const [first, second] = lines;
  return options.apiKeyStdin
    ? { apiKey: first, ...(options.chatUrlStdin ? { chatUrl: second } : {}) }
    : { chatUrl: first };
}

async function askApiKey(config: ConfigContext, ask: Prompter): Promise<string> {
  const known = config.findApiKey();
  if (known) return known;
  return (
    await ask.secret(
      "Vast.ai API key (from https://cloud.vast.ai/manage-keys/)",
      "--api-key-stdin or VAST_API_KEY",
    )
  ).trim();
}

async function askChatUrl(
  options: InitOptions,
  piped: string | undefined,
  config: ConfigContext,
  ask: Prompter,
  out: Output,
): Promise<ParsedChatUrl> {
  if (options.chatUrl !== undefined) {
    out.warn(
      "--chat-url puts the webhook's token in the process list and your shell history; --chat-url-stdin or GOOGLE_CHAT_URL keeps it out.",
    );
  }
  const given =
    piped ?? options.chatUrl ?? config.env.GOOGLE_CHAT_URL ?? config.secrets.get("chatUrl");
  const raw =
    given ??
    (await askChatUrlText(
      ask,
      "Google Chat webhook URL (space > Apps & integrations > Webhooks)",
      "--chat-url-stdin",
    ));
  const chat = checkedChatUrl(raw, out);

  if (options.chatCheck === false) return chat;
  const post = await ask.confirm(`Post "vast-gchat is set up" to ${chat.label} to check the URL?`, {
    flag: "--yes (or --no-chat-check)",
    default: true,
  });
  if (post) await postCheckMessage(chat, out);
  return chat;
}

/**
 * The catalogue, or undefined when a scoped key may not read it but the types were given: then
 * set-up goes on (Vast.ai still judges each type at create) with a warning.
 */
async function fetchCatalogue(
  client: VastClient,
  out: Output,
  /** What the types come from when the catalogue is refused; without it, a refusal stops init. */
  typesGiven: string | undefined,
): Promise<NotificationType[] | undefined> {
  try {
    return await out.step("Fetching notification types", () => client.listNotificationTypes());
  } catch (error) {
    const refused = error instanceof VastApiError && error.reason === "unauthorized";
    if (!refused || typesGiven === undefined) throw error;
    out.warn(`${error.message} Going on with the ${typesGiven} given; Vast.ai checks them.`);
    return undefined;
  }
}

/**
 * The wizard's last question: more Chat spaces, each a route for some notification types (the same
 * as `vast-gchat route add`, asked). Every URL is checked and proved as the first one was.
 */
async function askMoreRoutes(
  options: InitOptions,
  ask: Prompter,
  out: Output,
  existing: Route[],
  loadCatalogue: () => Promise<NotificationType[] | undefined>,
): Promise<RouteAnswer[]> {
  const added: RouteAnswer[] = [];
  const taken = new Set(existing.map((route) => route.name));
  const flag = "`vast-gchat route add`";
  for (;;) {
    const more = await ask.confirm(
      added.length === 0
        ? "Add another Chat space, for some of the notifications?"
        : "Add another Chat space?",
      { flag, default: false },
    );
    if (!more) return added;
    const name = await ask.text("Route name (e.g. billing)", {
      flag,
      validate: (value) =>
        checkRouteName(value) ??
        (taken.has(value) ? `The route ${value} exists already; choose another name.` : true),
    });
    const catalogue = await loadCatalogue();
    const typeList = await ask.text(
      `Notifications for ${name}: type keys or slugs, groups (${TYPE_GROUPS.join(", ")}) or all, comma-separated`,
      {
        flag,
        validate: (value) => {
          const { types, unknown } = checkTypeList(splitTypeList(value), catalogue);
          if (unknown.length) return `Unknown: ${unknown.join(", ")}.`;
          return types.length ? true : "Give at least one type, group or all.";
        },
      },
    );
    let chat: ParsedChatUrl;
    for (;;) {
      chat = checkedChatUrl(
        await askChatUrlText(ask, `Google Chat webhook URL for ${name}`, flag),
        out,
      );
      if (options.chatCheck === false) break;
      try {
        await postCheckMessage(chat, out, routeCheckMessage(name));
        break;
      } catch (error) {
        out.warn((error as Error).message);
      }
    }
    const mentionList = await ask.text(
      `Mention in ${name}'s messages: users/ID or all, comma-separated (empty for nobody)`,
      {
        flag,
        default: "",
        validate: (value) => {
          const bad = splitTypeList(value).filter((item) => parseMention(item) === undefined);
          return bad.length ? `Not a mention: ${bad.join(", ")} (users/123456789 or all).` : true;
        },
      },
    );
    const mentions = [
      ...new Set(splitTypeList(mentionList).map((item) => parseMention(item) as Mention)),
    ];
    const route: Route = {
      name,
      types: checkTypeList(splitTypeList(typeList), catalogue).types,
      mentions,
      chatSpace: chat.label,
    };
    added.push({ route, chat });
    taken.add(name);
  }
}

async function askEventTypes(
  options: InitOptions,
  ask: Prompter,
  catalogue: NotificationType[] | undefined,
  existing: Webhook | undefined,
): Promise<string[]> {
  if (options.events !== undefined) {
    const { keys, unknown } = chooseEventTypes(splitTypeList(options.events), catalogue);
    if (unknown.length) {
      const valid = catalogue ? catalogue.map((type) => slugOf(type.key)).join(", ") : undefined;
      throw usageError(
        `Unknown event type${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}.`,
        valid
          ? `Valid types (keys or slugs): ${valid}.`
          : "`vast-gchat types` lists the keys this account can subscribe to.",
      );
    }
    if (!keys.length) throw usageError("--events needs at least one event type key.");
    return keys;
  }
  // Only reached with a catalogue: without one, --events was given (fetchCatalogue).
  const choices = catalogue ?? [];
  // Vast.ai may name a webhook's types by key or by slug: compare by slug.
  const defaults = subscribedSlugs(existing?.event_types ?? DEFAULT_EVENT_TYPES);
  const sorted = [...choices].sort(
    (a, b) => GROUP_ORDER.indexOf(groupOfType(a)) - GROUP_ORDER.indexOf(groupOfType(b)),
  );
  const chosen = await ask.checkbox("Which notifications should reach Chat?", {
    flag: "--events KEY,KEY,...",
    choices: sorted.map((type) => ({
      name: `${type.display_name} (${type.key})`,
      value: type.key,
      checked: defaults.has(slugOf(type.key)),
      group: groupOfType(type),
    })),
  });
  // Vast.ai refuses a webhook with no types; say so here rather than after the questions.
  if (!chosen.length) {
    throw usageError(
      "No notification type was chosen, and a webhook needs at least one.",
      "Choose some, or pass --events KEY,KEY,...",
    );
  }
  return chosen;
}

async function askName(
  options: InitOptions,
  ask: Prompter,
  existing: Webhook | undefined,
): Promise<string> {
  const validate = (value: string): string | true =>
    value.trim().length === 0
      ? "The name cannot be empty."
      : value.length > MAX_WEBHOOK_NAME_LENGTH
        ? `The name can have at most ${MAX_WEBHOOK_NAME_LENGTH} characters.`
        : true;
  if (options.name !== undefined) {
    const check = validate(options.name);
    if (check !== true) throw usageError(`--name: ${check}`);
    return options.name;
  }
  const suggested = existing?.name ?? defaultWebhookName();
  return ask.text("Webhook name", { flag: "--name", default: suggested, validate });
}

async function askTunnel(
  options: InitOptions,
  ask: Prompter,
  stored: { tunnel?: TunnelChoice; tunnelCommand?: string; publicUrl?: string },
): Promise<Pick<SetupAnswers, "tunnel" | "tunnelCommand" | "publicUrl">> {
  const validateUrl = (value: string): string | true => {
    try {
      const problem = checkServiceUrl(new URL(value));
      return problem ? `The public URL is not usable: ${problem}.` : true;
    } catch {
      return "That is not a URL.";
    }
  };
  let tunnel = options.tunnel;
  if (tunnel === undefined && options.tunnelCommand !== undefined) tunnel = "command";
  if (tunnel === undefined && options.publicUrl !== undefined) tunnel = "none";
  tunnel ??= await ask.choose("How will Vast.ai reach this machine?", {
    flag: "--tunnel",
    default: stored.tunnel ?? "tunnelmole",
    // What each choice contacts, said where it is chosen (docs/supply-chain.md): nothing of a
    // tunnel is installed or contacted before this, and only the chosen one afterwards.
    choices: [
      {
        name: "tunnelmole (free, no account; the tutorial's)",
        value: "tunnelmole",
        description:
          "While serve runs it connects to service.tunnelmole.com and sends only a random id made for each connection and the adapter's answers: nothing about this machine, nothing kept on disk.",
      },
      {
        name: "cloudflared quick tunnel (needs the cloudflared program)",
        value: "cloudflared",
        description:
          "serve runs your cloudflared, which connects to Cloudflare (api.trycloudflare.com and its edge). It gets PATH, HOME, locale and proxy settings from serve's environment, never vast-gchat's secrets.",
      },
      {
        name: "ngrok (needs NGROK_AUTHTOKEN)",
        value: "ngrok",
        description: "While serve runs it connects to ngrok's service with your NGROK_AUTHTOKEN.",
      },
      {
        name: "a command of mine that prints a public https URL",
        value: "command",
        description:
          "serve runs it with PATH, HOME, locale and proxy settings, and the variables you name in VAST_GCHAT_TUNNEL_ENV; never vast-gchat's secrets.",
      },
      {
        name: "none: my own public https endpoint",
        value: "none",
        description: "No tunnel: serve contacts nothing but Vast.ai and Google Chat.",
      },
    ],
  });
  let tunnelCommand: string | undefined;
  let publicUrl: string | undefined;
  if (tunnel === "command") {
    tunnelCommand =
      options.tunnelCommand ??
      (await ask.text("Tunnel command ({port} is replaced by the adapter's port)", {
        flag: "--tunnel-command",
        ...(stored.tunnelCommand ? { default: stored.tunnelCommand } : {}),
      }));
  }
  if (tunnel === "none") {
    publicUrl =
      options.publicUrl ??
      (await ask.text("Your public https URL for the adapter", {
        flag: "--public-url",
        ...(stored.publicUrl ? { default: stored.publicUrl } : {}),
        validate: validateUrl,
      }));
    const check = validateUrl(publicUrl);
    if (check !== true) throw usageError(`--public-url: ${check}`);
  }
  return { tunnel, tunnelCommand, publicUrl };
}

async function askExisting(
  options: InitOptions,
  ask: Prompter,
  existing: Webhook,
): Promise<"keep" | "update" | "replace"> {
  if (options.existing) return options.existing;
  return ask.choose(
    `Webhook ${existing.id} "${existing.name ?? ""}" is already set up. What now?`,
    {
      flag: "--existing keep|update|replace",
      default: "update",
      choices: [
        { name: "update it with these answers (same secret)", value: "update" },
        { name: "keep it as it is", value: "keep" },
        { name: "replace it with a new webhook (new secret)", value: "replace" },
      ],
    },
  );
}

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}

function report(
  out: Output,
  config: ConfigContext,
  answers: SetupAnswers,
  webhook: Webhook,
  action: string,
): void {
  const verb = { create: "created", replace: "created", update: "updated", keep: "kept" }[action];
  const routes = routesOf(config.settings.read());
  out.result({
    ok: true,
    action: action === "replace" ? "replaced" : verb,
    webhook: {
      id: webhook.id,
      name: webhook.name ?? null,
      url: webhook.webhook_url,
      event_types: webhook.event_types,
    },
    chat_space: answers.chat.label,
    routes: routes.map((route) => ({
      name: route.name,
      types: route.types,
      space: route.chatSpace ?? null,
      mentions: route.mentions,
    })),
    tunnel: answers.tunnel,
    port: answers.port,
    config_dir: config.configDir,
    secrets: { kind: config.secrets.kind, location: config.secrets.location },
  });
  out.line();
  out.line(
    `Webhook ${webhook.id} ${verb}: ${webhook.event_types.length} event types -> Google Chat ${answers.chat.label}.`,
  );
  if (routes.length > 1) {
    for (const route of routes) {
      out.line(`  route ${route.name}: ${route.types.join(", ")} -> ${route.chatSpace ?? "?"}`);
    }
  }
  out.line(`Settings in ${config.settings.path}; secrets in ${config.secrets.location}.`);
  out.line(
    "Next: `vast-gchat serve` opens the tunnel, points the webhook at it and delivers to Chat;",
  );
  out.line("then `vast-gchat test` sends Vast.ai's test event end to end.");
}
