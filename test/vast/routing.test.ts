import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_TYPES, DEFAULT_ROUTE, TYPE_GROUPS } from "../../src/route-syntax.js";
import { DEFAULT_EVENT_TYPES, type NotificationType } from "../../src/vast/api-types.js";
import { defaultNotificationTypes } from "../../src/vast/emulator/notification-catalogue.js";
import { groupOfType, KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";
import {
  checkTypeList,
  type RouteSelection,
  routesFor,
  sameSubscription,
  sampleTypeFor,
  sampleTypeOnlyFor,
  subscriptionOf,
} from "../../src/vast/routing.js";
import { slugOf } from "../../src/vast/type-selection.js";

/**
 * Routing by notification type (README, "Routes"): which routes an event goes to, and what the
 * webhook must subscribe to. Checked on examples, then as properties over any routes.
 */
const CATALOGUE = defaultNotificationTypes();
const SLUGS = CATALOGUE.map((type) => slugOf(type.key));

const route = (name: string, ...types: string[]): RouteSelection => ({ name, types });
const DEFAULT = route(DEFAULT_ROUTE, ALL_TYPES);

describe("routesFor", () => {
  const routes = [
    DEFAULT,
    route("billing", "billing"),
    route("gpu", "client:instance_stopped", "outbid"),
    route("hosts", "host"),
  ];

  it("sends an event to every route whose list matches its type, by key, slug or group", () => {
    expect(routesFor("low_credit", routes, CATALOGUE)).toEqual(["default", "billing"]);
    expect(routesFor("instance_stopped", routes, CATALOGUE)).toEqual(["default", "gpu"]);
    expect(routesFor("client:outbid", routes, CATALOGUE)).toEqual(["default", "gpu"]);
    expect(routesFor("machine_error", routes, CATALOGUE)).toEqual(["default", "hosts"]);
    expect(routesFor("instance_created", routes, CATALOGUE)).toEqual(["default"]);
  });

  it("sends an event no route matches to default", () => {
    const narrow = [route(DEFAULT_ROUTE, "instance"), route("billing", "billing")];
    expect(routesFor("machine_error", narrow, CATALOGUE)).toEqual(["default"]);
    expect(routesFor("some_new_type", narrow, CATALOGUE)).toEqual(["default"]);
    expect(routesFor(undefined, narrow, CATALOGUE)).toEqual(["default"]);
    expect(routesFor("payment_receipt", narrow, CATALOGUE)).toEqual(["billing"]);
  });

  it("finds a type's group without a catalogue, from the types vast-gchat knows", () => {
    expect(routesFor("billing_failed", [route("b", "billing")])).toEqual(["b"]);
    expect(routesFor("webhook_test", [route("acct", "account")])).toEqual(["acct"]);
    expect(routesFor("machine_online", [route("h", "host")])).toEqual(["h"]);
    // An unknown type belongs to no group: only `all` takes it, else default.
    expect(routesFor("brand_new", [route("b", "billing"), route("x", "all")])).toEqual(["x"]);
  });

  it("reads groups and all in any case, as a user may type them", () => {
    expect(routesFor("low_credit", [route("b", "Billing")], CATALOGUE)).toEqual(["b"]);
    expect(routesFor("low_credit", [route("a", "ALL")], CATALOGUE)).toEqual(["a"]);
  });
});

describe("subscriptionOf", () => {
  it("is what init chose, and every type the routes name, once each, as catalogue keys", () => {
    const routes = [DEFAULT, route("billing", "billing"), route("gpu", "instance_stopped")];
    expect(subscriptionOf(routes, CATALOGUE, ["client:low_credit", "outbid"])).toEqual([
      "client:low_credit",
      "client:outbid",
      "client:billing_failed",
      "client:payment_receipt",
      "client:instance_stopped",
    ]);
  });

  it("takes nothing for all: it is what the webhook brings, whatever that is", () => {
    expect(subscriptionOf([DEFAULT], CATALOGUE, ["low_credit"])).toEqual(["client:low_credit"]);
  });

  it("is never empty: with nothing to subscribe to, the tutorial's six", () => {
    expect(subscriptionOf([DEFAULT], CATALOGUE)).toEqual([...DEFAULT_EVENT_TYPES]);
    expect(subscriptionOf([], undefined, [])).toEqual([...DEFAULT_EVENT_TYPES]);
    expect(subscriptionOf([route("acct", "account")], CATALOGUE)).toEqual([...DEFAULT_EVENT_TYPES]);
  });

  it("drops a type the catalogue no longer has, since Vast.ai would refuse the whole list", () => {
    const shrunk = CATALOGUE.filter((type) => type.key !== "client:outbid");
    expect(subscriptionOf([route("gpu", "outbid")], shrunk, ["low_credit"])).toEqual([
      "client:low_credit",
    ]);
  });

  it("compares subscriptions by slug, in any order", () => {
    expect(sameSubscription(["client:low_credit", "outbid"], ["outbid", "low_credit"])).toBe(true);
    expect(sameSubscription(["low_credit"], ["low_credit", "outbid"])).toBe(false);
  });
});

describe("checkTypeList", () => {
  it("keeps keys, slugs, groups and all as given (each once), and names what is none", () => {
    expect(
      checkTypeList(
        ["billing", "client:low_credit", "low_credit", "ALL", "nope", "x y", "client:"],
        CATALOGUE,
      ),
    ).toEqual({
      types: ["billing", "client:low_credit", "all"],
      unknown: ["nope", "x y", "client:"],
    });
  });

  it("without a catalogue, knows vast-gchat's types and leaves other full keys to Vast.ai", () => {
    expect(checkTypeList(["machine_error", "host:new_thing", "new_thing"])).toEqual({
      types: ["machine_error", "host:new_thing"],
      unknown: ["new_thing"],
    });
  });

  it("never takes the webhook's own test type, which no webhook subscribes to", () => {
    expect(checkTypeList(["webhook_test"], CATALOGUE).unknown).toEqual(["webhook_test"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const item = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SLUGS) },
  { weight: 2, arbitrary: fc.constantFrom(...CATALOGUE.map((type) => type.key)) },
  { weight: 2, arbitrary: fc.constantFrom(...TYPE_GROUPS) },
  { weight: 1, arbitrary: fc.constant(ALL_TYPES) },
);
const routeName = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,7}$/);
const routeList = fc
  .uniqueArray(
    fc.record({ name: routeName, types: fc.array(item, { minLength: 1, maxLength: 5 }) }),
    {
      selector: (r) => r.name,
      maxLength: 6,
    },
  )
  .map((routes) => [
    { name: DEFAULT_ROUTE, types: ["all"] as string[] },
    ...routes.filter((r) => r.name !== DEFAULT_ROUTE),
  ]);
const narrowDefault = routeList.chain((routes) =>
  fc
    .array(
      item.filter((value) => value !== ALL_TYPES),
      { minLength: 1, maxLength: 3 },
    )
    .map((types) => routes.map((r) => (r.name === DEFAULT_ROUTE ? { ...r, types } : r))),
);
const anyRoutes = fc.oneof(routeList, narrowDefault);
const eventType = fc.oneof(
  fc.constantFrom(...SLUGS, "webhook_test"),
  fc.stringMatching(/^[a-z_]{1,20}$/),
);
const catalogue = fc.constantFrom<readonly NotificationType[] | undefined>(CATALOGUE, undefined);

/** The rule as the README states it, written out plainly: the oracle the function is held to. */
function expectedRoutes(
  type: string,
  routes: RouteSelection[],
  types?: readonly NotificationType[],
) {
  const slug = slugOf(type);
  const entry = types?.find((t) => t.slug === slug);
  const known = KNOWN_EVENT_TYPES.get(slug);
  const group = (entry ? groupOfType(entry) : (known?.group ?? "Other")).toLowerCase();
  const matches = routes.filter((r) =>
    r.types.some((t) => {
      const lower = t.toLowerCase();
      return lower === "all" || lower === group || slugOf(t) === slug;
    }),
  );
  return matches.length ? matches.map((r) => r.name) : [DEFAULT_ROUTE];
}

describe("routing, for any routes", () => {
  it("routesFor is the README's rule: the routes whose lists match, else default", () => {
    fc.assert(
      fc.property(anyRoutes, eventType, catalogue, (routes, type, types) => {
        const names = routesFor(type, routes, types);
        expect(names).toEqual(expectedRoutes(type, routes, types));
        expect(names.length).toBeGreaterThan(0);
        expect(new Set(names).size).toBe(names.length);
      }),
    );
  });

  it("a type named by key routes as the same type named by slug", () => {
    fc.assert(
      fc.property(anyRoutes, fc.constantFrom(...CATALOGUE), catalogue, (routes, type, types) => {
        expect(routesFor(type.key, routes, types)).toEqual(routesFor(type.slug, routes, types));
        const asSlugs = routes.map((r) => ({ ...r, types: r.types.map(slugOf) }));
        expect(routesFor(type.slug, asSlugs, types)).toEqual(routesFor(type.slug, routes, types));
      }),
    );
  });

  it("the order of the routes changes the order of the answer, never its content", () => {
    fc.assert(
      fc.property(anyRoutes, eventType, (routes, type) => {
        const reversed = [...routes].reverse();
        expect(new Set(routesFor(type, reversed, CATALOGUE))).toEqual(
          new Set(routesFor(type, routes, CATALOGUE)),
        );
      }),
    );
  });

  it("subscriptionOf: never empty, each type once, init's choice kept, and nothing a route does not need", () => {
    const base = fc.subarray(SLUGS, { maxLength: 4 });
    fc.assert(
      fc.property(anyRoutes, base, catalogue, (routes, chosen, types) => {
        const subscription = subscriptionOf(routes, types, chosen);
        expect(subscription.length).toBeGreaterThan(0);
        const slugs = subscription.map(slugOf);
        expect(new Set(slugs).size).toBe(slugs.length);
        for (const slug of chosen) expect(slugs).toContain(slug);
        const needed = (slug: string) =>
          chosen.includes(slug) ||
          routes.some((r) =>
            r.types.some(
              (t) => t.toLowerCase() !== "all" && routesFor(slug, [r], types).includes(r.name),
            ),
          );
        const fallback = subscriptionOf([], types, []).map(slugOf);
        for (const slug of slugs) expect(needed(slug) || fallback.includes(slug)).toBe(true);
      }),
    );
  });

  it("subscriptionOf: every catalogue type a route names, by type or group, is subscribed", () => {
    fc.assert(
      fc.property(anyRoutes, (routes) => {
        const slugs = subscriptionOf(routes, CATALOGUE).map(slugOf);
        for (const type of CATALOGUE) {
          const named = routes.some((r) =>
            r.types.some(
              (t) => slugOf(t) === type.slug || t.toLowerCase() === groupOfType(type).toLowerCase(),
            ),
          );
          if (named) expect(slugs).toContain(type.slug);
        }
      }),
    );
  });

  it("the sample `route test` sends is one the route gets", () => {
    fc.assert(
      fc.property(anyRoutes, catalogue, (routes, types) => {
        for (const r of routes)
          expect(routesFor(sampleTypeFor(r), routes, types)).toContain(r.name);
      }),
    );
  });

  it("the sample `route test` sends through the adapter goes to that route alone when a type does", () => {
    fc.assert(
      fc.property(anyRoutes, (routes) => {
        for (const r of routes) {
          const type = sampleTypeOnlyFor(r, routes);
          const to = routesFor(type, routes);
          const aloneExists = [...KNOWN_EVENT_TYPES.keys()].some((slug) => {
            const each = routesFor(slug, routes);
            return slug !== "webhook_test" && each.length === 1 && each[0] === r.name;
          });
          if (aloneExists) expect(to).toEqual([r.name]);
          else expect(type).toBe(sampleTypeFor(r));
        }
      }),
    );
    // default takes everything and billing its group: default's sample is not a billing one.
    const routes = [DEFAULT, route("billing", "billing")];
    expect(routesFor(sampleTypeOnlyFor(DEFAULT, routes), routes)).toEqual([DEFAULT_ROUTE]);
    expect(sampleTypeOnlyFor(routes[1] as RouteSelection, routes)).toBe(
      sampleTypeFor(routes[1] as RouteSelection),
    );
  });
});
