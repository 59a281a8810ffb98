import { createRequire } from "node:module";
import { expect, it } from "vitest";
import { Counter, Gauge, Histogram, Registry } from "../../src/adapter/prom-client-classes.js";

/** The classes loaded file by file are prom-client's own, as its index exports them. */
it("loads the same classes as prom-client's index", () => {
  const index = createRequire(import.meta.url)("prom-client") as Record<string, unknown>;
  const loaded = { Registry, Counter, Gauge, Histogram };
  for (const [name, value] of Object.entries(loaded)) {
    // A class, not two undefineds that happen to be equal.
    expect(typeof value, name).toBe("function");
    expect(value, name).toBe(index[name]);
  }
});
