import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkBuild } from "../build-check.js";
import { loadAverage, type MachineInfo, machineInfo } from "../machine.js";
import { writeSection } from "../report.js";
import { REPO_ROOT } from "../targets.js";
import { runCrashes } from "./crashes.js";
import { runDiskFull, unmountAll } from "./disk-full.js";
import { runFuzz } from "./fuzz.js";
import {
  type CheckRow,
  children,
  killHard,
  makeSoakSecrets,
  type PartContext,
  type PartResult,
  redactor,
  row,
  signalGroup,
} from "./harness.js";
import { runPressure } from "./pressure.js";
import { runSecrets } from "./secrets.js";

/**
 * `npm run soak`: the reliability suite against the built CLI. Crashes (kill -9 under load with a
 * failing Chat), bad input (a fast-check fuzzer at the receiver), resource pressure (held and
 * trickling connections), a full disk, and a scan of everything the children printed for secrets.
 * Progress goes to stderr; the results table to stdout and into BENCHMARKS.md's soak section.
 * Exit 0 when every check passes, 1 otherwise, 2 on bad usage.
 */
const progress = (message: string) => console.error(`[soak] ${message}`);

/** In the canonical order: secrets last, so it scans what the other parts printed. */
const PARTS = {
  crashes: runCrashes,
  fuzz: runFuzz,
  pressure: runPressure,
  disk: runDiskFull,
  secrets: runSecrets,
} satisfies Record<string, (context: PartContext) => Promise<PartResult>>;
type SoakPart = keyof typeof PARTS;
const PART_NAMES = Object.keys(PARTS) as SoakPart[];

const USAGE = `usage: npm run soak -- [--quick] [--only ${PART_NAMES.join("|")}[,...]] [--seed N] [--keep] [--no-write]

  --quick      about 1-2 minutes (default: the full run, about 8-12 minutes)
  --only P     run only these parts (comma-separated or repeated); secrets scans what they printed
  --seed N     repeat a run's random choices (kill times, Chat failures, fuzz cases)
  --keep       keep the work directory with every log and store
  --no-write   do not rewrite the soak section of BENCHMARKS.md

SOAK_CHILD_NODE_OPTIONS=... is passed to every serve as NODE_OPTIONS, to look into a failure
(e.g. --max-old-space-size=128 tells a leak from V8 letting its heap grow).`;

/**
 * How big each part is. The full run is sized for about 8–12 minutes on a 2-core machine, the
 * quick one (`--quick`) for 1–2 minutes; both run the same checks against the same targets.
 */
function budgetFor(quick: boolean) {
  return {
    crashes: {
      events: quick ? 400 : 3000,
      /** First attempts leave at this rate; retries come on top. Slow enough that kills land mid-flow. */
      sendRatePerS: quick ? 20 : 25,
      /** Requests in flight at most, as a webhook sender with a small worker pool. */
      concurrency: quick ? 12 : 16,
      /** A kill comes this long (uniform, ms) after the previous restart was ready. */
      killAfterMs: quick ? ([1000, 4000] as const) : ([1500, 6000] as const),
      /** How long the adapter stays dead before the restart (uniform, ms). */
      downMs: quick ? ([0, 400] as const) : ([0, 500] as const),
      /** Chance that a restart is killed again before it is ready (start-up, store opening). */
      earlyKillChance: 0.15,
      /** Once every event is acknowledged and Chat is healthy, wait at most this for Chat to have them all. */
      drainCapS: quick ? 60 : 150,
    },
    fuzz: {
      /** Fuzzing before the long phase: JIT, caches, V8's heap and the store grow to their working size. */
      warmupS: quick ? 10 : 40,
      /** The long phase whose start and end RSS are compared. */
      durationS: quick ? 20 : 120,
      /** Whether the phase is long enough for the heap to reach its working size and judge growth. */
      judgeMemory: !quick,
      /** Independent fast-check runs in parallel, so one slow case does not idle the fuzzer. */
      lanes: 3,
      /** Requests sent at once by one property run. */
      batchMax: 6,
    },
    pressure: {
      idle: 300,
      trickle: 100,
      /** Signed events a second while the connections are held. */
      ratePerS: 50,
      durationS: quick ? 20 : 90,
      /** The same load without the held connections first, for comparison. */
      baselineS: quick ? 8 : 20,
    },
    /** Events sent once each while the disk is full; new ones after the filler is gone. */
    disk: { whileFull: 60, afterFreeing: 40, deliverCapS: 60 },
    /** `serve --rate`: high enough that pacing is never the bottleneck of a check. */
    serveRate: 50,
    /** `serve --max-age` in hours: nothing may expire into the dead letters during a run. */
    serveMaxAgeHours: 1000,
  };
}
export type Budget = ReturnType<typeof budgetFor>;

/** The report from its one JSON document (also kept as soak-results.json in the work directory). */
interface SoakResults {
  command: string;
  startedAt: string;
  durationS: number;
  machine: MachineInfo;
  loadAtStart: string;
  loadAtEnd: string;
  seed: number;
  rows: CheckRow[];
  notes: string[];
}

function renderReport(results: SoakResults): string {
  const { machine, rows } = results;
  // Pipes and line breaks would break the table.
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const failed = rows.filter((entry) => entry.verdict === "FAIL").length;
  const checks = rows.filter((entry) => entry.verdict === "PASS" || entry.verdict === "FAIL");
  const lines = [
    `Command: \`${results.command}\` (seed ${results.seed})  `,
    `Date: ${results.startedAt}, ${Math.round(results.durationS)} s${machine.commit ? `, commit ${machine.commit}` : ""}  `,
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB.toFixed(1)} GiB, Node ${machine.node}; load average ${results.loadAtStart} at the start, ${results.loadAtEnd} at the end (1, 5, 15 min)`,
    "",
    "| check | figure | target | result |",
    "|---|---|---|---|",
    ...rows.map(
      (r) => `| ${cell(r.check)} | ${cell(r.figure)} | ${cell(r.target)} | ${r.verdict} |`,
    ),
    "",
    failed === 0
      ? `All ${checks.length} checks passed.`
      : `${failed} of ${checks.length} checks failed.`,
  ];
  if (results.notes.length) {
    lines.push("", "Notes:", "", ...results.notes.map((note) => `- ${note.replaceAll("\n", " ")}`));
  }
  return `${lines.join("\n")}\n`;
}

/** The command line; throws on anything it does not understand. */
function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string", multiple: true, default: [] },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
      keep: { type: "boolean", default: false },
      "no-write": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const only = values.only.flatMap((list) => list.split(",").map((name) => name.trim()));
  const unknown = only.find((name) => !(name in PARTS));
  if (unknown !== undefined) {
    throw new Error(`unknown part "${unknown}" (choose from ${PART_NAMES.join(", ")})`);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || values.seed.trim() === "") {
    throw new Error(`--seed must be a whole number, not "${values.seed}"`);
  }
  // Always in the canonical order.
  const parts = only.length ? PART_NAMES.filter((part) => only.includes(part)) : PART_NAMES;
  return { ...values, parts, seed };
}

async function main(argv: string[]): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const { quick, parts, seed } = options;
  checkBuild("soak", progress);

  // Whatever happens (an error, Ctrl+C), no child is left running and no tmpfs left mounted.
  process.on("exit", () => {
    for (const child of children.running) signalGroup(child, "SIGKILL");
    unmountAll();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping every child`);
      process.exit(130);
    });
  }

  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-soak-"));
  const secrets = makeSoakSecrets();
  const redact = redactor(secrets);
  const budget = budgetFor(quick);
  progress(
    `${quick ? "quick" : "full"} run of ${parts.join(", ")} (seed ${seed}); work directory ${workdir}`,
  );

  const rows: CheckRow[] = [];
  const notes: string[] = [];
  for (const part of parts) {
    const partStart = Date.now();
    progress(`--- ${part}`);
    const cleanups: Array<() => unknown> = [];
    const dir = join(workdir, part);
    mkdirSync(dir, { recursive: true });
    let result: PartResult;
    try {
      result = await PARTS[part]({
        dir,
        budget,
        secrets,
        seed,
        progress,
        redact,
        later: (fn) => cleanups.push(fn),
      });
    } catch (error) {
      // A part that could not run to its end: one failing row that says why, instead of no rows.
      const message = redact(error instanceof Error ? error.message : String(error));
      const figure = `aborted: ${message.split("\n")[0]}`;
      result = {
        rows: [row(`${part}: ran to the end`, figure, "no error", false)],
        notes: [`${part} aborted: ${message}`],
      };
    }
    await Promise.all([...children.running].map(killHard));
    for (const cleanup of cleanups.reverse()) await cleanup();
    rows.push(...result.rows);
    notes.push(...result.notes);
    for (const entry of result.rows) progress(`${entry.verdict}  ${entry.check}: ${entry.figure}`);
    progress(`${part} took ${Math.round((Date.now() - partStart) / 1000)} s`);
  }

  const only = parts.length < PART_NAMES.length ? ["--only", parts.join(",")] : [];
  const flags = [...(quick ? ["--quick"] : []), ...only];
  const results: SoakResults = {
    command: `npm run build && npm run soak${flags.length ? ` -- ${flags.join(" ")}` : ""}`,
    startedAt: startedAt.toISOString(),
    durationS: (Date.now() - startedAt.getTime()) / 1000,
    machine: machineInfo(),
    loadAtStart,
    loadAtEnd: loadAverage(),
    seed,
    rows,
    notes,
  };
  writeFileSync(join(workdir, "soak-results.json"), redact(JSON.stringify(results, null, 2)));
  // Nothing in the report comes from a secret; redacting it anyway costs nothing.
  const report = redact(renderReport(results));
  process.stdout.write(report);
  if (!options["no-write"]) {
    // Only between the soak markers: the bench owns another section.
    writeSection(
      join(REPO_ROOT, "BENCHMARKS.md"),
      report,
      "<!-- soak:begin -->",
      "<!-- soak:end -->",
    );
    progress("results written to BENCHMARKS.md (soak section)");
  }
  const failed = rows.some((entry) => entry.verdict === "FAIL");
  if (failed || options.keep) progress(`logs and stores kept in ${workdir}`);
  else rmSync(workdir, { recursive: true, force: true });
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[soak] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
