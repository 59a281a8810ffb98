import { readFileSync } from "node:fs";

/**
 * The package's version, for `--version` and the User-Agent of every Vast.ai call, read from
 * package.json: from src/ (tests) and from dist/ (the build) alike, it is one folder up.
 */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

export const USER_AGENT = `vast-gchat/${VERSION}`;
