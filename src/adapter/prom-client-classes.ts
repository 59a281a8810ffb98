import { createRequire } from "node:module";
import type * as PromClient from "prom-client";

/**
 * The four prom-client classes /metrics uses, each loaded from its own file. The package's index
 * also loads its Pushgateway (and with it node:zlib), its cluster aggregator and its default
 * metrics (node:v8, node:perf_hooks): measured on Node 26, about 2 MiB of serve's resident memory
 * at idle (4 MiB in a bare process) for code serve never runs (issue 15). The package has no
 * "exports" map, so Node resolves these paths as it does the index;
 * test/adapter/prom-client-classes.test.ts holds them to the index's own classes, so an update
 * that moves a file fails there and not in a running serve.
 */
const require = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = require("prom-client/lib/registry");
export const Counter: typeof PromClient.Counter = require("prom-client/lib/counter");
export const Gauge: typeof PromClient.Gauge = require("prom-client/lib/gauge");
export const Histogram: typeof PromClient.Histogram = require("prom-client/lib/histogram");
