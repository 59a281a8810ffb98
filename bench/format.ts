/**
 * Numbers as the report shows them, and the statistics behind a cell: the median of the
 * repeats, with their range, because one run on a shared machine proves little.
 */

type Maybe = number | undefined;

/** Median of the defined values; Infinity (a request with no answer) sorts last. */
export function median(values: readonly Maybe[]): number | undefined {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] as number) + upper) / 2;
}

export function sum(values: readonly number[]): number {
  return values.reduce((total, v) => total + v, 0);
}

export function int(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Milliseconds with sensible precision; "no answer" for a percentile that fell on one. */
export function ms(value: Maybe): string {
  if (value === undefined) return "–";
  if (!Number.isFinite(value)) return "no answer";
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : int(value);
}

export function mib(value: Maybe): string {
  return value === undefined ? "–" : value.toFixed(1);
}

export function count(value: Maybe): string {
  return value === undefined ? "–" : int(value);
}

/** 0.163 → "16.3 %". */
export function percent(share: Maybe): string {
  if (share === undefined || !Number.isFinite(share)) return "–";
  return `${(share * 100).toFixed(share < 0.1 ? 2 : 1)} %`;
}

/** A ratio as "4.16×"; "–" when either side is missing, infinite or zero below. */
export function ratio(a: Maybe, b: Maybe): string {
  if (a === undefined || b === undefined) return "–";
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  return times(a / b);
}

export function times(r: number): string {
  if (r === 0) return "0×";
  return `${r < 0.1 ? r.toPrecision(2) : r < 10 ? r.toFixed(2) : int(r)}×`;
}

/**
 * The median of the repeats, then their range when there was more than one run and it is not a
 * single value: "0.44 (0.40–0.61)".
 */
export function spread(values: readonly Maybe[], format: (value: Maybe) => string): string {
  const defined = values.filter((v): v is number => v !== undefined);
  if (defined.length === 0) return "–";
  const middle = format(median(defined));
  if (defined.length === 1) return middle;
  const low = format(Math.min(...defined));
  const high = format(Math.max(...defined));
  return low === high ? middle : `${middle} (${low}–${high})`;
}

export const verdict = (ok: boolean) => (ok ? "**PASS**" : "**FAIL**");
