import { InvalidArgumentError } from "./commander.js";

/**
 * Periods such as `serve --check-every 5m`, checked where commander parses them (as
 * option-parsers.ts does for numbers): a bad value is refused before any command code runs (exit
 * 2, "option '--check-every <duration>' argument 'x' is invalid. ..."), and the command receives
 * milliseconds. `0` turns the thing off. A number needs its unit (`30s`, `5m`, `1h`, `1h30m`): a
 * bare `5` could mean seconds (`--probe-interval`) or minutes (`rotate-secret --grace`), so it is
 * refused rather than guessed. Kept free of other imports, since the program (and so `--help`)
 * loads it.
 */
const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:\.\d+)?[smh])+$/;
const PART = /(\d+(?:\.\d+)?)([smh])/g;

/** "30s", "5m", "1h", "2h30m"; whole seconds when it is not. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ""}${m ? `${m}m` : ""}${s ? `${s}s` : ""}` || "0";
}

/**
 * A period of at least `minMs` and at most `maxMs`, or `0` for off; answers milliseconds. The
 * refusal names both bounds in the units a user would type.
 */
export function durationArgument(minMs: number, maxMs: number): (value: string) => number {
  const bounds = `from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
  return (value) => {
    const text = value.trim().toLowerCase();
    if (text === "0") return 0;
    if (!DURATION.test(text)) {
      throw new InvalidArgumentError(
        `It must be a duration with its unit, such as 30s, 5m or 1h (${bounds}), or 0 to turn it off.`,
      );
    }
    let ms = 0;
    for (const [, amount, unit] of text.matchAll(PART)) {
      ms += Number(amount) * (UNIT_MS[unit ?? "s"] ?? 1000);
    }
    ms = Math.round(ms);
    if (ms === 0) return 0;
    if (ms < minMs || ms > maxMs) {
      throw new InvalidArgumentError(`It must be ${bounds}, or 0 to turn it off.`);
    }
    return ms;
  };
}
