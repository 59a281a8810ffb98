/**
 * serve's defaults, alone in a module: `--help` shows them, and must not load what serve-options.ts
 * needs to check a Chat URL or a signature to do so (start-up time, BENCHMARKS.md).
 */
export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PATH = "/";
