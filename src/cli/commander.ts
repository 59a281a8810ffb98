import { createRequire } from "node:module";
import type * as Typed from "@commander-js/extra-typings";

/**
 * commander's classes, typed by @commander-js/extra-typings (options and arguments inferred from
 * their flags). extra-typings' own runtime only re-exports these classes; loading it, and
 * commander through its ESM wrapper, cost every start about 6 ms on Node 20, a tenth of `--help`
 * (bench/startup.ts). `require` returns commander's exports as they are.
 */
const commander = createRequire(import.meta.url)("commander") as typeof Typed;

export const { Command, Option, CommanderError, InvalidArgumentError } = commander;
export type Command = Typed.Command;
