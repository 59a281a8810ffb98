import { type BenchConfig, type Progress, readConfig, runs, USAGE } from "./config.js";
import { benchScript, checkBuild, loadAverage, machineInfo, workdirFor } from "./machine.js";
import { RESULTS_FILE, renderDocument, saveResults } from "./report.js";
import { benchBurst, benchLoad } from "./sessions.js";
import { benchStartup } from "./startup.js";
import { tutorialUnavailable } from "./targets.js";

/**
 * `npm run bench`: start-up time, the same signed load against vast-gchat, the tutorial's Python
 * adapter and a bare node:http server under each fake Chat latency, and a burst of events into
 * one rate-limited Chat space; prints one table and, for a full run, writes it into the bench
 * section of BENCHMARKS.md. Progress goes to stderr so stdout is only the report.
 */
const progress: Progress = (message) => console.error(`[bench] ${message}`);

benchScript("bench", async () => {
  let config: BenchConfig;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench", progress);
  const [startedAt, startedMs, loadAverageAtStart] = [new Date(), performance.now(), loadAverage()];
  const machine = await machineInfo();
  const workdir = workdirFor("bench");
  const tutorialSkip = config.skipPython ? "--skip-python" : tutorialUnavailable();
  if (tutorialSkip) progress(`tutorial adapter skipped: ${tutorialSkip}`);
  progress(`load average at the start: ${loadAverageAtStart}`);
  const startup = runs(config, "startup")
    ? await benchStartup(config, workdir, tutorialSkip === undefined, progress)
    : undefined;
  const load =
    runs(config, "load") || config.only === "rss"
      ? await benchLoad(config, workdir, tutorialSkip, progress)
      : undefined;
  const burst = runs(config, "burst")
    ? await benchBurst(config, workdir, tutorialSkip, progress)
    : undefined;
  const durationS = (performance.now() - startedMs) / 1000;
  const [loadAverageAtEnd, at] = [loadAverage(), { startedAt, durationS, loadAverageAtStart }];
  saveResults({ config, machine, ...at, loadAverageAtEnd, startup, load, burst });
  progress(`results saved to ${RESULTS_FILE} (re-render with tsx bench/render.ts)`);
  // The report, BENCHMARKS.md's section and the exit code come from the saved document, as
  // bench/render.ts renders it. Losing an event is a correctness failure; the rest is reported.
  const ok = renderDocument(RESULTS_FILE, config.write);
  progress(
    config.write
      ? "written to the bench section of BENCHMARKS.md"
      : "BENCHMARKS.md left alone (a full run writes it; --write to force)",
  );
  return ok ? 0 : 1;
});
