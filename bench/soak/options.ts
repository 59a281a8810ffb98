/**
 * The command line of `npm run soak`: which parts run, how long, and whether BENCHMARKS.md is
 * rewritten. Everything else (sizes, durations) follows from `--quick` in budget.ts.
 */
export const SOAK_PARTS = ["crashes", "fuzz", "pressure", "disk", "secrets"] as const;
export type SoakPart = (typeof SOAK_PARTS)[number];

export interface SoakOptions {
  /** About 1–2 minutes instead of 8–12: smaller counts, shorter phases, same checks. */
  quick: boolean;
  parts: readonly SoakPart[];
  /** Seeds the kill schedule, Chat's failures and the fuzzer, so a failing run can be repeated. */
  seed: number;
  /** Keep the work directory (logs, stores) even when every check passed. */
  keep: boolean;
  /** Rewrite the soak section of BENCHMARKS.md (off with --no-write, for trial runs). */
  write: boolean;
}

export const USAGE = `usage: npm run soak -- [--quick] [--only ${SOAK_PARTS.join("|")}[,...]] [--seed N] [--keep] [--no-write]

  --quick      about 1-2 minutes (default: the full run, about 8-12 minutes)
  --only P     run only these parts (comma-separated or repeated); secrets scans what they printed
  --seed N     repeat a run's random choices (kill times, Chat failures, fuzz cases)
  --keep       keep the work directory with every log and store
  --no-write   do not rewrite the soak section of BENCHMARKS.md

SOAK_CHILD_NODE_OPTIONS=... is passed to every serve as NODE_OPTIONS, to look into a failure
(e.g. --max-old-space-size=128 tells a leak from V8 letting its heap grow).`;

export class UsageError extends Error {}

function isPart(value: string): value is SoakPart {
  return (SOAK_PARTS as readonly string[]).includes(value);
}

function parseParts(value: string | undefined): SoakPart[] {
  if (!value) throw new UsageError("--only needs a part name");
  return value.split(",").map((name) => {
    const part = name.trim();
    if (!isPart(part)) {
      throw new UsageError(`unknown part "${part}" (choose from ${SOAK_PARTS.join(", ")})`);
    }
    return part;
  });
}

/** Returns "help" for --help; throws UsageError for anything it does not understand. */
export function parseSoakOptions(argv: readonly string[]): SoakOptions | "help" {
  const options: SoakOptions = {
    quick: false,
    parts: SOAK_PARTS,
    seed: Date.now() % 1_000_000,
    keep: false,
    write: true,
  };
  const only: SoakPart[] = [];
  for (let index = 0; index < argv.length; index++) {
    const [flag, inline] = (argv[index] ?? "").split("=", 2) as [string, string | undefined];
    const value = () => inline ?? argv[++index];
    switch (flag) {
      case "--help":
      case "-h":
        return "help";
      case "--quick":
        options.quick = true;
        break;
      case "--only":
        only.push(...parseParts(value()));
        break;
      case "--seed": {
        const raw = value();
        const seed = Number(raw);
        if (!Number.isSafeInteger(seed) || seed < 0) {
          throw new UsageError(`--seed must be a whole number, not "${raw}"`);
        }
        options.seed = seed;
        break;
      }
      case "--keep":
        options.keep = true;
        break;
      case "--no-write":
        options.write = false;
        break;
      default:
        throw new UsageError(`unknown option "${flag}"`);
    }
  }
  // Always in the canonical order: secrets last, so it scans what the other parts printed.
  if (only.length) options.parts = SOAK_PARTS.filter((part) => only.includes(part));
  return options;
}
