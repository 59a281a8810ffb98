import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  implicitDefaultRoute,
  type Route,
  routeSecretName,
  routesOf,
} from "../../src/config/routes.js";
import { isSecretName } from "../../src/config/secret-store.js";
import { openSettings } from "../../src/config/settings.js";
import { checkRouteName, mentionMarkup, parseMention } from "../../src/route-syntax.js";

/** Routes as settings keep them (config/routes.ts), and the grammar they are written in. */
let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "vast-gchat-routes-"));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function writeConfig(value: unknown) {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  writeFileSync(join(root, "config.json"), JSON.stringify(value), { mode: 0o600 });
  return openSettings(root);
}

const BILLING: Route = {
  name: "billing",
  types: ["billing", "client:low_credit"],
  mentions: ["users/123456789", "all"],
  chatSpace: "spaces/BBBB",
};

describe("stored routes", () => {
  it("a set-up made before routes reads as the one route default, types all, in its space", () => {
    const settings = writeConfig({ webhookId: 3, chatSpace: "spaces/AAAA" });
    expect(routesOf(settings.read())).toEqual([
      { name: "default", types: ["all"], mentions: [], chatSpace: "spaces/AAAA" },
    ]);
    expect(routesOf({})).toEqual([implicitDefaultRoute()]);
  });

  it("round-trips through config.json", () => {
    const settings = openSettings(root);
    const routes = [implicitDefaultRoute("spaces/AAAA"), BILLING];
    settings.update({ routes });
    expect(openSettings(root).read().routes).toEqual(routes);
  });

  it("normalises a mention written users/all", () => {
    const settings = writeConfig({
      routes: [implicitDefaultRoute(), { ...BILLING, mentions: ["users/all", "users/42"] }],
    });
    expect(settings.read().routes?.[1]?.mentions).toEqual(["all", "users/42"]);
  });

  it.each([
    [{ routes: [BILLING] }, 'there is no route "default"'],
    [{ routes: [implicitDefaultRoute(), BILLING, BILLING] }, 'the route "billing" appears twice'],
    [{ routes: [implicitDefaultRoute(), { ...BILLING, name: "Billing!" }] }, "not a route name"],
    [{ routes: [implicitDefaultRoute(), { ...BILLING, types: [] }] }, "at least one event type"],
    [
      { routes: [implicitDefaultRoute(), { ...BILLING, mentions: ["<users/all>"] }] },
      '"<users/all>" is not a mention',
    ],
    [{ routes: "default" }, "expected a list of routes"],
  ])("refuses a damaged list of routes, saying what is wrong (%#)", (config, problem) => {
    const settings = writeConfig(config);
    expect(() => settings.read()).toThrow(problem);
    expect(() => settings.read()).toThrow('bad value for "routes"');
  });

  it("refuses to save routes that would not read back", () => {
    const settings = openSettings(root);
    expect(() => settings.update({ routes: [BILLING] })).toThrow(
      'Refusing to save the setting "routes"',
    );
  });

  it("keeps default's URL where it always was, and each other route's under its name", () => {
    expect(routeSecretName("default")).toBe("chatUrl");
    expect(routeSecretName("billing")).toBe("chatUrl:billing");
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/), (name) => {
        expect(checkRouteName(name)).toBeUndefined();
        expect(isSecretName(routeSecretName(name))).toBe(true);
      }),
    );
  });
});

describe("the grammar of routes", () => {
  it.each(["", "-ops", "Billing", "a".repeat(33), "bill ing", "ops/x", "ops\u001b"])(
    "refuses the route name %j",
    (name) => {
      expect(checkRouteName(name)).toMatch(/is not a route name/);
    },
  );

  it("takes all or a numeric user id as a mention, and nothing else", () => {
    expect(parseMention("all")).toBe("all");
    expect(parseMention("users/all")).toBe("all");
    expect(parseMention("users/123456789")).toBe("users/123456789");
    for (const bad of [
      "users/",
      "users/abc",
      "users/1>",
      "<users/1>",
      "user/1",
      "users/1 users/2",
      `users/${"1".repeat(31)}`,
      "alice@example.com",
      "everyone",
    ]) {
      expect(parseMention(bad)).toBeUndefined();
    }
    expect(mentionMarkup("all")).toBe("<users/all>");
    expect(mentionMarkup("users/42")).toBe("<users/42>");
  });
});
