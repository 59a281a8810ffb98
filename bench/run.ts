import { type Progress, readConfig, runs, USAGE } from "./config.js";
import { benchScript, checkBuild, loadAverage, machineInfo, workdirFor } from "./machine.js";
import { RESULTS_FILE, renderDocument, saveResults } from "./report.js";
import { benchBurst, benchLoad } from "./sessions.js";
import { benchStartup } from "./startup.js";
import { tutorialUnavailable } from "./targets.js";

/**
 * `npm run bench`: start-up time, the same signed load against vast-gchat, the tutorial's Python
 * adapter and a bare node:http server under each fake Chat latency, and a burst of events into
 * one rate-limited Chat space. The results go to one JSON document; the report, BENCHMARKS.md's
 * section (a full run) and the exit code come from it, as bench/render.ts renders it. Progress
 * goes to stderr so stdout is only the report.
 */
const progress: Progress = (message) => console.error(`[bench] ${message}`);

benchScript("bench", async () => {
  let config: ReturnType<typeof readConfig>;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench", progress);
  const [startedAt, startedMs, loadAtStart] = [new Date(), performance.now(), loadAverage()];
  const machine = await machineInfo();
  const workdir = workdirFor("bench");
  const skip = config.skipPython ? "--skip-python" : tutorialUnavailable();
  if (skip) progress(`tutorial adapter skipped: ${skip}`);
  progress(`load average at the start: ${loadAtStart}`);
  const startup = runs(config, "startup")
    ? await benchStartup(config, workdir, skip === undefined, progress)
    : undefined;
  const withLoad = runs(config, "load") || config.only === "rss";
  const load = withLoad ? await benchLoad(config, workdir, skip, progress) : undefined;
  const burst = runs(config, "burst")
    ? await benchBurst(config, workdir, skip, progress)
    : undefined;
  const durationS = (performance.now() - startedMs) / 1000;
  const run = { config, machine, startedAt, durationS, loadAtStart, loadAtEnd: loadAverage() };
  saveResults({ ...run, startup, load, burst });
  progress(`results saved to ${RESULTS_FILE} (re-render with tsx bench/render.ts)`);
  // Losing an event is a correctness failure (the exit code); the rest is reported.
  const ok = renderDocument(RESULTS_FILE, config.write);
  const written = "written to the bench section of BENCHMARKS.md";
  progress(
    config.write ? written : "BENCHMARKS.md left alone (a full run writes it; --write to force)",
  );
  return ok ? 0 : 1;
});
