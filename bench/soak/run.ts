import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkBuild, loadAverage, machineInfo } from "../machine.js";
import { table, writeSection } from "../report.js";
import { runCrashes } from "./crashes.js";
import { runDiskFull, unmountAll } from "./disk-full.js";
import { runFuzz } from "./fuzz.js";
import * as h from "./harness.js";
import { runPressure } from "./pressure.js";
import { runSecrets } from "./secrets.js";

/**
 * `npm run soak`: the reliability suite against the built CLI. Crashes (kill -9 under load with a
 * failing Chat), bad input (a fast-check fuzzer at the receiver), resource pressure (held and
 * trickling connections), a full disk, and a scan of everything the children printed for secrets.
 * The table goes to stdout and BENCHMARKS.md's soak section; exit 0 when every check passes, 1
 * otherwise, 2 on bad usage.
 */
const progress = (message: string) => console.error(`[soak] ${message}`);

/** In the canonical order: secrets last, so it scans what the other parts printed. */
const PARTS = {
  crashes: runCrashes,
  fuzz: runFuzz,
  pressure: runPressure,
  disk: runDiskFull,
  secrets: runSecrets,
};
const ALL = Object.keys(PARTS) as Array<keyof typeof PARTS>;

const USAGE = `usage: npm run soak -- [--quick] [--only ${ALL.join("|")}[,...]] [--seed N] [--keep] [--no-write]

  --quick      about 1-2 minutes (default: the full run, about 8-12 minutes)
  --only P     run only these parts (comma-separated or repeated); secrets scans what they printed
  --seed N     repeat a run's random choices (kill times, Chat failures, fuzz cases)
  --keep       keep the work directory with every log and store
  --no-write   do not rewrite the soak section of BENCHMARKS.md

SOAK_CHILD_NODE_OPTIONS=... is passed to every serve as NODE_OPTIONS, to look into a failure
(e.g. --max-old-space-size=128 tells a leak from V8 letting its heap grow).`;

/**
 * How big each part is: the full run is sized for about 8–12 minutes on a 2-core machine, the
 * quick one for 1–2 minutes; both run the same checks against the same targets.
 */
const budgetFor = (quick: boolean) => ({
  crashes: {
    events: quick ? 400 : 3000,
    /** First attempts a second (retries on top): slow enough that kills land mid-flow. */
    sendRatePerS: quick ? 20 : 25,
    concurrency: quick ? 12 : 16,
    /** A kill comes this long (uniform, ms) after the restart was ready; it stays dead downMs. */
    killAfterMs: quick ? ([1000, 4000] as const) : ([1500, 6000] as const),
    downMs: quick ? ([0, 400] as const) : ([0, 500] as const),
    /** Chance that a restart is killed again before it is ready (start-up, store opening). */
    earlyKillChance: 0.15,
    /** Once every event is acknowledged and Chat is calm, how long Chat may take to have them all. */
    drainCapS: quick ? 60 : 150,
  },
  fuzz: {
    /** Before the long phase whose RSS is judged: JIT, caches, heap and store reach working size. */
    warmupS: quick ? 10 : 40,
    durationS: quick ? 20 : 120,
    judgeMemory: !quick,
    /** fast-check runs in parallel (one slow case does not idle the fuzzer), each sending
     * batches of up to batchMax requests at once. */
    lanes: 3,
    batchMax: 6,
  },
  /** Held connections and the signed events a second sent meanwhile; baselineS without them. */
  pressure: {
    idle: 300,
    trickle: 100,
    ratePerS: 50,
    durationS: quick ? 20 : 90,
    baselineS: quick ? 8 : 20,
  },
  /** Events sent once each while the disk is full; new ones after the filler is gone. */
  disk: { whileFull: 60, afterFreeing: 40, deliverCapS: 60 },
  /** `serve --rate` and `--max-age` (hours): pacing is never the bottleneck of a check, and
   * nothing may expire into the dead letters during a run. */
  serveRate: 50,
  serveMaxAgeHours: 1000,
});
export type Budget = ReturnType<typeof budgetFor>;

/** The command line; throws on anything it does not understand. */
function parseOptions(argv: string[]) {
  const flag = { type: "boolean", default: false } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: flag,
      keep: flag,
      "no-write": flag,
      help: { ...flag, short: "h" },
      only: { type: "string", multiple: true, default: [] },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
    },
  });
  const only = values.only.flatMap((list) => list.split(",").map((name) => name.trim()));
  const unknown = only.find((name) => !(name in PARTS));
  if (unknown !== undefined)
    throw new Error(`unknown part "${unknown}" (choose from ${ALL.join(", ")})`);
  if (!/^\d{1,15}$/.test(values.seed))
    throw new Error(`--seed must be a whole number, not "${values.seed}"`);
  const parts = only.length ? ALL.filter((part) => only.includes(part)) : ALL;
  return { ...values, seed: Number(values.seed), parts };
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
  checkBuild("soak", progress);
  // Whatever happens (an error, Ctrl+C), no child is left running and no tmpfs left mounted.
  process.on("exit", () => {
    for (const child of h.children.running) h.signalGroup(child, "SIGKILL");
    unmountAll();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping every child`);
      process.exit(130);
    });
  }
  const { quick, parts, seed } = options;
  const startedAt = new Date();
  const [loadAtStart, machine] = [loadAverage(), await machineInfo()];
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-soak-"));
  const secrets = h.makeSoakSecrets();
  const redact = h.redactor(secrets);
  const budget = budgetFor(quick);
  const rows: h.CheckRow[] = [];
  const notes: string[] = [];
  progress(
    `${quick ? "quick" : "full"} run of ${parts.join(", ")} (seed ${seed}); work directory ${workdir}`,
  );
  for (const part of parts) {
    const partStart = Date.now();
    progress(`--- ${part}`);
    const cleanups: Array<() => unknown> = [];
    const dir = join(workdir, part);
    mkdirSync(dir);
    const later = (cleanup: () => unknown) => cleanups.push(cleanup);
    const context = { dir, budget, secrets, seed, progress, later };
    let result = await PARTS[part](context).catch((error: Error): h.PartResult => {
      // A part that could not run to its end: one failing row that says why, not no rows.
      const why = `aborted: ${error.message.split("\n")[0]}`;
      return {
        rows: [h.row(`${part}: ran to the end`, why, "no error", false)],
        notes: [`${part} aborted: ${error.message}`],
      };
    });
    await Promise.all([...h.children.running].map((child) => h.stop(child, "SIGKILL")));
    for (const cleanup of cleanups.reverse()) await cleanup();
    // An error may quote a child's output, a leak note a command line: no secret in the report.
    result = JSON.parse(redact(JSON.stringify(result)));
    rows.push(...result.rows);
    notes.push(...result.notes.filter((note): note is string => typeof note === "string"));
    for (const entry of result.rows) progress(`${entry.verdict}  ${entry.check}: ${entry.figure}`);
    progress(`${part} took ${Math.round((Date.now() - partStart) / 1000)} s`);
  }
  const flags = [
    ...(quick ? ["--quick"] : []),
    ...(parts.length < ALL.length ? ["--only", parts.join(",")] : []),
  ];
  const command = `npm run build && npm run soak${flags.length ? ` -- ${flags.join(" ")}` : ""}`;
  const durationS = (Date.now() - startedAt.getTime()) / 1000;
  const results = {
    command,
    startedAt,
    durationS,
    machine,
    loadAtStart,
    loadAtEnd: loadAverage(),
    seed,
    rows,
    notes,
  };
  writeFileSync(join(workdir, "soak-results.json"), JSON.stringify(results, null, 2));
  const failed = rows.filter((entry) => entry.verdict === "FAIL").length;
  const checks = rows.filter((entry) => ["PASS", "FAIL"].includes(entry.verdict)).length;
  const m = machine;
  const report = [
    `Command: \`${command}\` (seed ${seed})  `,
    `Date: ${startedAt.toISOString()}, ${Math.round(durationS)} s${m.commit ? `, commit ${m.commit}` : ""}  `,
    `Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB.toFixed(1)} GiB, Node ${m.node}, store ${m.store}; load average ${loadAtStart} at the start, ${results.loadAtEnd} at the end (1, 5, 15 min)`,
    "",
    table(
      ["check", "figure", "target", "result"],
      rows.map((r) => [r.check, r.figure, r.target, r.verdict].map((c) => c.replaceAll("\n", " "))),
    ),
    "",
    failed === 0 ? `All ${checks} checks passed.` : `${failed} of ${checks} checks failed.`,
    ...(notes.length
      ? ["", "Notes:", "", ...notes.map((note) => `- ${note.replaceAll("\n", " ")}`)]
      : []),
    "",
  ].join("\n");
  process.stdout.write(report);
  if (!options["no-write"]) {
    writeSection(report, "soak");
    progress("results written to BENCHMARKS.md (soak section)");
  }
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
