import { z } from "zod";
import {
  checkRouteName,
  DEFAULT_ROUTE,
  MAX_MENTIONS,
  type Mention,
  parseMention,
} from "../route-syntax.js";
import type { SecretName } from "./secret-store.js";

/**
 * Routes: which Chat space gets which notifications (README, "Routes"). A route is stored in
 * `config.json` without its Chat URL; the URL is a secret, kept in the secret store under
 * routeSecretName(). The `default` route's URL is the `chatUrl` secret every set-up already has,
 * so a set-up made before routes existed is the route `default` with types `all`, as it is.
 */
export interface Route {
  /** A short slug (route-syntax.ts). */
  name: string;
  /**
   * As the user gave them: type keys or slugs, group names (`billing`), or `all`. Compared by
   * vast/routing.ts, which knows the catalogue; here they are only kept.
   */
  types: string[];
  /** `all` or `users/<id>`, from the configuration only (never from an event). */
  mentions: Mention[];
  /** The space's label (chatSpaceLabel): safe to show, never the key or token. */
  chatSpace?: string;
}

/** What a set-up without stored routes reads as: everything goes to the one space it has. */
export function implicitDefaultRoute(chatSpace?: string): Route {
  return {
    name: DEFAULT_ROUTE,
    types: ["all"],
    mentions: [],
    ...(chatSpace === undefined ? {} : { chatSpace }),
  };
}

/** Where a route's Chat URL is kept: `chatUrl` for `default` (as before routes), else `chatUrl:NAME`. */
export function routeSecretName(name: string): SecretName {
  return name === DEFAULT_ROUTE ? "chatUrl" : `chatUrl:${name}`;
}

/** The routes of a set-up: those stored, or the implicit `default` of a set-up made before routes. */
export function routesOf(settings: { routes?: Route[]; chatSpace?: string }): Route[] {
  return settings.routes ?? [implicitDefaultRoute(settings.chatSpace)];
}

const MAX_TYPES = 100;
const MAX_TYPE_LENGTH = 100;

export const routeSchema = z.object({
  name: z.string({ error: "expected a route name" }).superRefine((name, context) => {
    const problem = checkRouteName(name);
    if (problem) context.addIssue({ code: "custom", message: problem });
  }),
  types: z
    .array(z.string().min(1).max(MAX_TYPE_LENGTH), {
      error: "expected a list of event types, groups or all",
    })
    .min(1, "expected at least one event type, group or all")
    .max(MAX_TYPES),
  mentions: z
    .array(
      z.string().transform((value, context) => {
        const mention = parseMention(value);
        if (mention === undefined) {
          context.addIssue({
            code: "custom",
            message: `"${value}" is not a mention (expected all or users/ID)`,
          });
          return z.NEVER;
        }
        return mention;
      }),
      { error: "expected a list of mentions" },
    )
    .max(MAX_MENTIONS, `expected at most ${MAX_MENTIONS} mentions`),
  chatSpace: z.string().exactOptional(),
});

/** The stored list: names unique, and `default` always there (it takes what no route matches). */
export const routesSchema = z
  .array(routeSchema, { error: "expected a list of routes" })
  .superRefine((routes, context) => {
    const seen = new Set<string>();
    for (const route of routes) {
      if (seen.has(route.name)) {
        context.addIssue({ code: "custom", message: `the route "${route.name}" appears twice` });
      }
      seen.add(route.name);
    }
    if (!seen.has(DEFAULT_ROUTE)) {
      context.addIssue({
        code: "custom",
        message: `there is no route "${DEFAULT_ROUTE}" (it takes every event no other route matches)`,
      });
    }
  });
