import { setFlagsFromString } from "node:v8";

/** Any of V8's flags that size the young generation, with dashes or underscores. */
const YOUNG_GENERATION_FLAG =
  /--(?:(?:max|min)[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)/;

/**
 * The newest Node line whose V8 is known to have the flag: the suite runs on it, and a test there
 * checks that `node --v8-options` lists it. V8 prints "Error: unrecognized flag" for one it does
 * not know, which a newer line's V8 might not; there serve leaves V8 alone instead.
 */
const NEWEST_CHECKED_LINE = 26;

/**
 * Keeps V8's young generation near the size it has now. A serve started as a service gets
 * `--max-semi-space-size=1` (SERVE_NODE_OPTIONS); one started by hand or by npx has no flags, and
 * under a burst V8 would grow its young generation to some 25 to 50 MiB, the largest part of
 * serve's peak (docs/platforms.md, "Memory"). V8 fixes the young generation's limit when it
 * starts, but reads the factor it grows by each time it grows: a factor of 1, set before serve's
 * modules load, has much the same effect. Not for every command: the CLI's start-up is a few
 * milliseconds slower with it. A user who sized the young generation keeps their choice.
 * Returns whether the factor was set.
 */
export function keepYoungGenerationSmall(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  nodeVersion: string = process.versions.node,
): boolean {
  if (Number.parseInt(nodeVersion, 10) > NEWEST_CHECKED_LINE) return false;
  if ([...execArgv, nodeOptions ?? ""].some((arg) => YOUNG_GENERATION_FLAG.test(arg))) {
    return false;
  }
  setFlagsFromString("--semi-space-growth-factor=1");
  return true;
}
