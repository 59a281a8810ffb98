import { InvalidArgumentError } from "commander";

/**
 * Numeric options, checked by commander where they are parsed: a bad value is refused before any
 * command code runs (exit 2, with commander's "option '--port <n>' argument 'x' is invalid."), and
 * a command receives a number, never a string to check again. Kept free of other imports, since
 * the program (and so `--help`) loads it.
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
