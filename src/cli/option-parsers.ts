import { checkRouteName, type Mention, parseMention } from "../route-syntax.js";
import { InvalidArgumentError } from "./commander.js";

/**
 * Numeric options, checked by commander where they are parsed: a bad value is refused before any
 * command code runs (exit 2, with commander's "option '--port <n>' argument 'x' is invalid."), and
 * a command receives a number, never a string to check again. Kept free of other imports (but the
 * import-free route-syntax.ts), since the program (and so `--help`) loads it.
 */
export function portArgument(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65535) {
    throw new InvalidArgumentError("It must be a port number from 0 to 65535.");
  }
  return port;
}

/** A number above 0, e.g. seconds or messages a second; `unit` names it in the refusal. */
export function positiveNumberArgument(unit: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (value.trim() === "" || !Number.isFinite(number) || number <= 0) {
      throw new InvalidArgumentError(`It must be a number of ${unit} above 0.`);
    }
    return number;
  };
}

/** A whole number of at least 1 (a count). */
export function countArgument(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(count) || count < 1) {
    throw new InvalidArgumentError("It must be a whole number of at least 1.");
  }
  return count;
}

/** A route's name (route-syntax.ts): a short slug. */
export function routeNameArgument(value: string): string {
  const problem = checkRouteName(value);
  if (problem) throw new InvalidArgumentError(`${problem}.`);
  return value;
}

/**
 * `--mention M`, repeatable, each `all` or `users/ID` (also comma-separated): collected, checked
 * and normalised, so a command gets only mentions.
 */
export function mentionArgument(value: string, previous: Mention[] = []): Mention[] {
  const items = value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError("It must be all or users/ID.");
  const mentions = items.map((item) => {
    const mention = parseMention(item);
    if (mention === undefined) {
      throw new InvalidArgumentError(
        `"${item}" is not a mention: use all (everyone in the space) or users/ID, a Chat user's numeric id (e.g. users/123456789).`,
      );
    }
    return mention;
  });
  return [...previous, ...mentions];
}
