import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBuild } from "../build-check.js";
import { loadAverage, machineInfo } from "../machine.js";
import { REPO_ROOT } from "../targets.js";
import { budgetFor } from "./budget.js";
import { runCrashes } from "./crashes.js";
import { runDiskFull } from "./disk-full.js";
import { runFuzz } from "./fuzz.js";
import { parseSoakOptions, type SoakOptions, type SoakPart, USAGE, UsageError } from "./options.js";
import { runPressure } from "./pressure.js";
import { childrenStillRunning, killEveryChildNow } from "./processes.js";
import { renderReport, writeSoakSection } from "./report.js";
import { brokenPart, type CheckRow, type PartContext, type PartResult } from "./results.js";
import { makeSoakSecrets, redactor } from "./secret-values.js";
import { runSecrets } from "./secrets.js";
import { unmountAll } from "./tmpfs.js";

/**
 * `npm run soak`: the reliability suite against the built CLI. Crashes (kill -9 under load with a
 * failing Chat), bad input (a fast-check fuzzer at the receiver), resource pressure (held and
 * trickling connections), a full disk, and a scan of everything the children printed for secrets.
 * Progress goes to stderr; the results table to stdout and into BENCHMARKS.md's soak section.
 * Exit 0 when every check passes, 1 otherwise, 2 on bad usage.
 */
const progress = (message: string) => console.error(`[soak] ${message}`);

const PARTS: Record<SoakPart, (context: PartContext) => Promise<PartResult>> = {
  crashes: runCrashes,
  fuzz: runFuzz,
  pressure: runPressure,
  disk: runDiskFull,
  secrets: runSecrets,
};

function commandLine(options: SoakOptions): string {
  const args = [
    ...(options.quick ? ["--quick"] : []),
    ...(options.parts.length < 5 ? ["--only", options.parts.join(",")] : []),
  ];
  return `npm run build && npm run soak${args.length ? ` -- ${args.join(" ")}` : ""}`;
}

/** Whatever happens (an error, Ctrl+C), no child is left running and no tmpfs left mounted. */
function installCleanup(): void {
  process.on("exit", () => {
    killEveryChildNow();
    unmountAll();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping every child`);
      process.exit(130);
    });
  }
}

async function main(argv: string[]): Promise<number> {
  let options: SoakOptions | "help";
  try {
    options = parseSoakOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  checkBuild("soak", progress);
  installCleanup();

  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-soak-"));
  const secrets = makeSoakSecrets();
  const redact = redactor(secrets);
  const context: PartContext = {
    workdir,
    budget: budgetFor(options.quick),
    secrets,
    seed: options.seed,
    progress,
  };
  progress(
    `${options.quick ? "quick" : "full"} run of ${options.parts.join(", ")} (seed ${options.seed}); work directory ${workdir}`,
  );

  const rows: CheckRow[] = [];
  const notes: string[] = [];
  for (const part of options.parts) {
    const partStart = Date.now();
    progress(`--- ${part}`);
    let result: PartResult;
    try {
      result = await PARTS[part](context);
    } catch (error) {
      result = brokenPart(part, error, redact);
    }
    killEveryChildNow();
    rows.push(...result.rows);
    notes.push(...result.notes);
    for (const row of result.rows) progress(`${row.verdict}  ${row.check}: ${row.figure}`);
    progress(`${part} took ${Math.round((Date.now() - partStart) / 1000)} s`);
  }

  const failed = rows.some((row) => row.verdict === "FAIL");
  // Nothing in the report comes from a secret; redacting it anyway costs nothing.
  const report = redact(
    renderReport({
      command: commandLine(options),
      startedAt,
      durationS: (Date.now() - startedAt.getTime()) / 1000,
      machine: machineInfo(),
      loadAtStart,
      loadAtEnd: loadAverage(),
      seed: options.seed,
      rows,
      notes,
    }),
  );
  process.stdout.write(report);
  if (options.write) {
    writeSoakSection(join(REPO_ROOT, "BENCHMARKS.md"), report);
    progress("results written to BENCHMARKS.md (soak section)");
  }
  if (childrenStillRunning() > 0)
    progress(`warning: ${childrenStillRunning()} children still running`);
  if (failed || options.keep) {
    progress(`logs and stores kept in ${workdir}`);
  } else {
    rmSync(workdir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[soak] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
