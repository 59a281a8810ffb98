import {
  ALL_TYPES,
  DEFAULT_ROUTE,
  isTypeGroupName,
  TYPE_GROUPS,
  type TypeGroupName,
} from "../route-syntax.js";
import { DEFAULT_EVENT_TYPES, type NotificationType } from "./api-types.js";
import { describeEventType, groupOfType, KNOWN_EVENT_TYPES } from "./event-types.js";
import { chooseEventTypes, slugOf } from "./type-selection.js";

/**
 * Which routes an event goes to, and what the webhook must subscribe to for the routes to get
 * theirs (README, "Routes"). Pure: the same routes, catalogue and type give the same answer, so the
 * adapter (which delivers) and the commands (which update the webhook) agree.
 *
 * A route's type list holds, as the user wrote them: type keys (`client:low_credit`) or slugs
 * (`low_credit`), compared by slug as everywhere else (type-selection.ts); group names (`account`,
 * `billing`, `instance`, `host`), compared with the group Vast.ai's catalogue gives the type
 * (event-types.ts, groupOfType); or `all`, every notification the webhook brings.
 */
export interface RouteSelection {
  readonly name: string;
  readonly types: readonly string[];
}

/** The catalogue entries a type is compared with; without one, the types vast-gchat knows. */
type Catalogue = readonly NotificationType[] | undefined;

/**
 * The names of the routes an event of type `notifType` goes to: every route whose list matches it,
 * in the routes' order; when none does, `default` (which every set-up has: config/routes.ts).
 */
export function routesFor(
  notifType: string | undefined,
  routes: readonly RouteSelection[],
  catalogue?: Catalogue,
): string[] {
  const slug = slugOf(notifType ?? "");
  const group = groupOfSlug(slug, catalogue);
  const matched = routes
    .filter((route) => route.types.some((item) => itemMatches(item, slug, group)))
    .map((route) => route.name);
  return matched.length > 0 ? [...new Set(matched)] : [DEFAULT_ROUTE];
}

/**
 * What the webhook subscribes to: the types `init` chose (`base`), and every type a route names by
 * key, slug or group, each once (compared by slug), as catalogue keys. `all` adds nothing of its
 * own: it is every notification the webhook brings, whatever that is. Never empty: with nothing
 * at all, the tutorial's six (what `init` subscribes to by default), since Vast.ai refuses a webhook
 * without types.
 */
export function subscriptionOf(
  routes: readonly RouteSelection[],
  catalogue?: Catalogue,
  base: readonly string[] = [],
): string[] {
  const named: readonly string[] = [
    ...base,
    ...routes.flatMap((route) => route.types.flatMap((item) => typesOfItem(item, catalogue))),
  ];
  // One key a type, in the order named; a type the catalogue no longer has cannot be subscribed.
  const { keys } = chooseEventTypes(named, catalogue);
  if (keys.length > 0) return keys;
  const defaults = chooseEventTypes(DEFAULT_EVENT_TYPES, catalogue).keys;
  return defaults.length > 0 ? defaults : [...DEFAULT_EVENT_TYPES];
}

/** Whether two subscriptions are the same set of types, whichever form (key or slug) each uses. */
export function sameSubscription(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a.map(slugOf));
  const right = new Set(b.map(slugOf));
  return left.size === right.size && [...left].every((slug) => right.has(slug));
}

export interface TypeListCheck {
  /** The list as it will be kept: each item once, groups and `all` in lower case. */
  types: string[];
  /** What names no type, group or `all`, as the user wrote it. */
  unknown: string[];
}

/**
 * Checks a route's type list against the catalogue (or, without one, the types vast-gchat knows;
 * a full key is then kept for Vast.ai to judge, as `init --events` does).
 */
export function checkTypeList(items: readonly string[], catalogue?: Catalogue): TypeListCheck {
  const types: string[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const raw of items) {
    const item = raw.trim();
    const lower = item.toLowerCase();
    const word = lower === ALL_TYPES || isTypeGroupName(lower) ? lower : undefined;
    const known = TYPE_PATTERN.test(item) && chooseEventTypes([item], catalogue).keys.length > 0;
    if (word === undefined && !known) {
      unknown.push(raw);
      continue;
    }
    const kept = word ?? item;
    const identity = word ?? slugOf(item);
    if (!seen.has(identity)) types.push(kept);
    seen.add(identity);
  }
  return { types, unknown };
}

/** For a refusal: what a type list may hold. */
export function validTypeItems(catalogue?: Catalogue): string[] {
  const slugs = catalogue
    ? catalogue.map((type) => slugOf(type.key))
    : [...KNOWN_EVENT_TYPES.values()]
        .filter((type) => type.slug !== "webhook_test")
        .map((type) => type.slug);
  return [ALL_TYPES, ...TYPE_GROUPS, ...slugs];
}

/**
 * A type the route's list matches, for a sample event (`route test`): `low_credit` for `all`, the
 * first type of a group (`webhook_test` for `account`, the one account type vast-gchat knows), or
 * the type named.
 */
export function sampleTypeFor(route: RouteSelection, catalogue?: Catalogue): string {
  for (const item of route.types) {
    const lower = item.toLowerCase();
    if (lower === ALL_TYPES) return "low_credit";
    if (isTypeGroupName(lower)) {
      const [first] = typesOfGroup(lower, catalogue);
      return first === undefined ? firstKnownOf(lower) : slugOf(first);
    }
    return slugOf(item);
  }
  return "low_credit";
}

/**
 * A type for a route's sample that goes to that route alone when one does (`route test`, through
 * the adapter, should post into the route's space, not into every space): sampleTypeFor's if it
 * does, else the first type vast-gchat knows that does, else sampleTypeFor's all the same.
 */
export function sampleTypeOnlyFor(
  route: RouteSelection,
  routes: readonly RouteSelection[],
  catalogue?: Catalogue,
): string {
  const alone = (type: string) => {
    const to = routesFor(type, routes, catalogue);
    return to.length === 1 && to[0] === route.name;
  };
  const preferred = sampleTypeFor(route, catalogue);
  if (alone(preferred)) return preferred;
  const known = [...KNOWN_EVENT_TYPES.values()].filter((type) => type.slug !== "webhook_test");
  return known.find((type) => alone(type.slug))?.slug ?? preferred;
}

// ---------------------------------------------------------------------------------------------

function itemMatches(item: string, slug: string, group: TypeGroupName | undefined): boolean {
  const lower = item.toLowerCase();
  if (lower === ALL_TYPES) return true;
  if (isTypeGroupName(lower)) return group === lower;
  return slugOf(item) === slug;
}

/** The group of a type: the catalogue's, else what vast-gchat knows of it; "Other" is none. */
function groupOfSlug(slug: string, catalogue: Catalogue): TypeGroupName | undefined {
  const entry = catalogue?.find((type) => slugOf(type.key) === slug || type.slug === slug);
  const group = entry ? groupOfType(entry) : describeEventType(slug).group;
  const lower = group.toLowerCase();
  return isTypeGroupName(lower) ? lower : undefined;
}

/** What a type in a list may look like: a slug, or a key with its context. */
const TYPE_PATTERN = /^((client|host):)?[a-z0-9_]{1,64}$/i;

/** The types an item of a list asks the webhook for: a group's types, a type, or none for `all`. */
function typesOfItem(item: string, catalogue: Catalogue): string[] {
  const lower = item.toLowerCase();
  if (lower === ALL_TYPES) return [];
  if (isTypeGroupName(lower)) return typesOfGroup(lower, catalogue);
  return chooseEventTypes([item], catalogue).keys;
}

function typesOfGroup(group: TypeGroupName, catalogue: Catalogue): string[] {
  if (catalogue) {
    return catalogue
      .filter((type) => groupOfType(type).toLowerCase() === group)
      .map((type) => type.key);
  }
  return [...KNOWN_EVENT_TYPES.values()]
    .filter((type) => type.slug !== "webhook_test" && type.group.toLowerCase() === group)
    .map((type) => type.key);
}

/** Every group has a type vast-gchat knows (`webhook_test` is the account one). */
function firstKnownOf(group: TypeGroupName): string {
  const known = [...KNOWN_EVENT_TYPES.values()].find((type) => type.group.toLowerCase() === group);
  return known?.slug ?? "low_credit";
}
