import { ChatUrlError, type ParsedChatUrl, parseChatUrl } from "../chat/webhook-url.js";
import { type Route, routeSecretName, routesOf } from "../config/routes.js";
import type { SecretStore } from "../config/secret-store.js";
import type { SettingsStore } from "../config/settings.js";
import { DEFAULT_ROUTE } from "../route-syntax.js";
import type { ConfigContext } from "./config-context.js";
import { usageError } from "./errors.js";
import { resolveChatUrl } from "./serve-options.js";

/**
 * The routes of this set-up with their Chat URLs, as every command sees them: the stored routes
 * (config/routes.ts; a set-up made before routes is the one route `default`), each URL from the
 * secret store, and for `default` GOOGLE_CHAT_URL first (the environment beats stored values, and
 * without a config directory it is the whole of the routing).
 */
export type UrlSource = "GOOGLE_CHAT_URL" | "stored";

export interface RouteUrl {
  raw: string;
  source: UrlSource;
}

export function readRoutes(settings: Pick<SettingsStore, "read">): Route[] {
  return routesOf(settings.read());
}

/** The route's Chat URL and where it came from, or undefined when it has none. */
export function routeUrl(
  name: string,
  env: NodeJS.ProcessEnv,
  secrets: Pick<SecretStore, "get"> | undefined,
): RouteUrl | undefined {
  if (name === DEFAULT_ROUTE && env.GOOGLE_CHAT_URL) {
    return { raw: env.GOOGLE_CHAT_URL, source: "GOOGLE_CHAT_URL" };
  }
  const stored = secrets?.get(routeSecretName(name));
  return stored ? { raw: stored, source: "stored" } : undefined;
}

/** A label for the route's space, safe to print: from its URL, else the one stored with it. */
export function routeSpace(route: Route, url: RouteUrl | undefined): string | undefined {
  if (url) {
    try {
      return parseChatUrl(url.raw).label;
    } catch {
      return undefined;
    }
  }
  return route.chatSpace;
}

/** A route and the Chat space it posts to. */
export interface ResolvedRoute extends Route {
  chat: ParsedChatUrl;
}

/**
 * Every route with its checked Chat URL, for what delivers (`serve`, phase 2 of issue 16). Without
 * a config directory (the environment alone), GOOGLE_CHAT_URL is the route `default`, types `all`.
 * A route without a usable URL is a usage error naming the command that fixes it.
 */
export function resolveRoutes(
  config: Pick<ConfigContext, "settings" | "secrets"> | undefined,
  env: NodeJS.ProcessEnv,
): ResolvedRoute[] {
  const routes = config ? readRoutes(config.settings) : routesOf({});
  return routes.map((route) => {
    if (route.name === DEFAULT_ROUTE) {
      const chatUrl = config?.secrets.get("chatUrl");
      return { ...route, chat: resolveChatUrl(env, { chatUrl }) };
    }
    const url = routeUrl(route.name, env, config?.secrets);
    const fix = `Run \`vast-gchat route add ${route.name} --types ${route.types.join(",")} --chat-url-stdin --replace\`, or \`vast-gchat route remove ${route.name}\`.`;
    if (!url) throw usageError(`The route ${route.name} has no Chat URL stored.`, fix);
    try {
      return { ...route, chat: parseChatUrl(url.raw) };
    } catch (error) {
      if (error instanceof ChatUrlError) {
        throw usageError(`The route ${route.name}'s Chat URL: ${error.message}`, fix);
      }
      throw error;
    }
  });
}
