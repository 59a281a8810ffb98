/**
 * How routes are written (README, "Routes"): a route's name, the words of its type list that are
 * not types (`all` and the four groups), and the people it mentions. Shared by the settings that
 * store routes (config/), the routing that reads type lists (vast/), the renderer that writes
 * mentions into a message (chat/) and the command line (cli/), so it belongs to none of them, as
 * service-url.ts does. No imports: the program loads it for option parsing, and `--help` stays fast.
 */

/** The route every event that matches no other route goes to, and the one `init` makes. */
export const DEFAULT_ROUTE = "default";

/** A short slug: it names a route on the command line, in the store and in metric labels. */
export const ROUTE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** In a type list: every notification the webhook brings. */
export const ALL_TYPES = "all";

/** In a type list: every type of one of Vast.ai's groups (as its settings page groups them). */
export const TYPE_GROUPS = ["account", "billing", "instance", "host"] as const;
export type TypeGroupName = (typeof TYPE_GROUPS)[number];

export function isTypeGroupName(value: string): value is TypeGroupName {
  return (TYPE_GROUPS as readonly string[]).includes(value);
}

/** A route's problem with its name, as a sentence, or undefined when the name is fine. */
export function checkRouteName(name: string): string | undefined {
  if (ROUTE_NAME_PATTERN.test(name)) return undefined;
  return `"${name}" is not a route name: use 1 to 32 lower-case letters, digits and dashes, starting with a letter or digit (e.g. billing, gpu-ops)`;
}

/**
 * A mention as configured: `all` (everyone in the space) or `users/` and a Chat user id (digits).
 * Chat user ids are 21 digits today; 30 leaves room without letting a mention grow without bound.
 */
export type Mention = "all" | `users/${string}`;
const USER_MENTION = /^users\/([0-9]{1,30})$/;

/** At most this many mentions a route: enough for the people who must act, and a bounded message. */
export const MAX_MENTIONS = 20;

/**
 * The mention `value` names, normalised (`users/all` is `all`), or undefined when it is not one.
 * Nothing else is a mention: no name, no e-mail address, no markup.
 */
export function parseMention(value: string): Mention | undefined {
  const trimmed = value.trim();
  if (trimmed === "all" || trimmed === "users/all") return "all";
  const user = USER_MENTION.exec(trimmed);
  return user ? `users/${user[1]}` : undefined;
}

/** How Chat's incoming webhooks mention someone in a message's `text`: `<users/123>`, `<users/all>`. */
export function mentionMarkup(mention: Mention): string {
  return `<users/${mention === "all" ? "all" : mention.slice("users/".length)}>`;
}
