import { createRequire } from "node:module";
import { expect, it } from "vitest";
import { Counter, Gauge, Histogram, Registry } from "../../src/adapter/prom-client-classes.js";

/** The classes loaded file by file are prom-client's own, as its index exports them. */
it("loads the same classes as prom-client's index", () => {
  const index = createRequire(import.meta.url)("prom-client") as Record<string, unknown>;
  expect(Registry).toBe(index.Registry);
  expect(Counter).toBe(index.Counter);
  expect(Gauge).toBe(index.Gauge);
  expect(Histogram).toBe(index.Histogram);
  expect(typeof Registry).toBe("function");
});
