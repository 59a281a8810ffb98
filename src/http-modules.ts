import { createRequire } from "node:module";

/**
 * node:http and node:https, loaded through `require` rather than an ESM import, for memory
 * (issue 15). An ESM import builds the module's namespace from every export, and on Node 22+
 * node:http's exports include lazy getters (`WebSocket`, `CloseEvent`, `MessageEvent`) whose
 * evaluation loads the undici bundled in Node: some 15 MB of RSS that nothing here uses. `require`
 * returns the exports object itself and leaves those getters untouched.
 */
const require = createRequire(import.meta.url);

export const http: typeof import("node:http") = require("node:http");
export const https: typeof import("node:https") = require("node:https");
