import type { NotificationType } from "./api-types.js";
import { KNOWN_EVENT_TYPES } from "./event-types.js";

/**
 * Event types as users and Vast.ai name them. Vast.ai's published specifications disagree: the
 * merged OpenAPI file shows keys (`client:low_credit`), the backend's own calls them slugs
 * (`low_credit`), and a reply may use either. So a type is compared by its slug, and what we send
 * is the catalogue's key, each type once (Vast.ai refuses "Duplicate event type").
 */

/** `client:low_credit` -> `low_credit`; a slug stays as it is. */
export function slugOf(type: string): string {
  return type.replace(/^(client|host):/, "");
}

/** The slugs a webhook subscribes to, whichever form Vast.ai answered with. */
export function subscribedSlugs(eventTypes: readonly string[]): Set<string> {
  return new Set(eventTypes.map(slugOf));
}

export interface TypeChoice {
  /** What to send: one key a type, in the order asked. */
  keys: string[];
  /** What matched nothing, as the user wrote it. */
  unknown: string[];
}

/**
 * Resolves keys or slugs against the account's catalogue. Without one (a scoped key may not read
 * it), the types this tool knows are resolved, and a full key is passed on for Vast.ai to judge.
 */
export function chooseEventTypes(
  requested: readonly string[],
  catalogue: readonly NotificationType[] | undefined,
): TypeChoice {
  const bySlug = new Map<string, string>();
  if (catalogue) {
    for (const type of catalogue) bySlug.set(slugOf(type.key), type.key);
  } else {
    // webhook_test is what `/test/` sends, not something a webhook subscribes to.
    for (const type of KNOWN_EVENT_TYPES.values()) {
      if (type.slug !== "webhook_test") bySlug.set(type.slug, type.key);
    }
  }
  const keys = new Map<string, string>();
  const unknown: string[] = [];
  for (const asked of requested) {
    const slug = slugOf(asked);
    const key = bySlug.get(slug) ?? (!catalogue && slug !== asked ? asked : undefined);
    if (key === undefined) unknown.push(asked);
    else if (!keys.has(slug)) keys.set(slug, key);
  }
  return { keys: [...keys.values()], unknown };
}

/** A comma-separated list as typed: items trimmed, empty ones dropped. */
export function splitTypeList(list: string): string[] {
  return list
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}
