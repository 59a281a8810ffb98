import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { seededRandom } from "../burst.js";
import { ChaosChat } from "./chaos-chat.js";
import {
  bodyBytes,
  describeRecipe,
  type Materialised,
  materialise,
  type Recipe,
  recipeArbitrary,
} from "./fuzz-recipes.js";
import { killHard, stopGently } from "./processes.js";
import { type RawExchange, rawExchange } from "./raw-http.js";
import { countInto, formatCounts, type PartContext, type PartResult, verdict } from "./results.js";
import { redactor } from "./secret-values.js";
import { currentRssMiB, health, partServeSpec, type RunningServe, startServe } from "./serve.js";

/**
 * Bad input: fast-check generates raw HTTP requests (odd methods, paths, versions, headers,
 * framing, signatures, and bodies from random bytes to huge, deeply nested and validly signed
 * non-objects) and sends them in small concurrent batches over plain TCP to a running serve.
 * Promised: the process stays up and both /health are ok at the end (the public one and the
 * loopback listener's detailed one, which also tells the queue drained), no 5xx but a deliberate
 * 503, every connection answered or closed, memory flat over the long phase; and for requests
 * that are well-formed HTTP, the very answer README.md gives ("What the adapter answers").
 */

/**
 * How much the child's RSS may grow over the long phase. Judged on the medians of the phase's
 * first and last quarter (1 s samples), because one sample lands at a random point of a heap that
 * swings by tens of MiB with GC timing; the single start and end samples are reported as well.
 */
export const RSS_SLACK_MIB = 64;
const EXCHANGE_TIMEOUT_MS = 15_000;
const MAX_EXAMPLES = 5;

class FuzzTally {
  requests = 0;
  batches = 0;
  readonly statuses = new Map<number | string, number>();
  noAnswer = 0;
  timeouts = 0;
  serverErrors = 0;
  unavailable = 0;
  /** POSTs answered 200: events the store kept (the worker must deliver each). */
  accepted = 0;
  oracleChecked = 0;
  oracleMismatches = 0;
  /** Refused before the body was read, and the reset came before the answer could be read. */
  resetUnread = 0;
  readonly mismatchExamples: string[] = [];
  readonly faultExamples: Array<{ description: string; got: string; request: string }> = [];

  record(recipe: Recipe, sent: Materialised, exchange: RawExchange): boolean {
    this.requests++;
    // An interim 100 Continue is not the answer.
    const first = exchange.statuses.find((status) => status >= 200);
    countInto(this.statuses, first ?? (exchange.timedOut ? "timeout" : "no answer"));
    if (exchange.noAnswer) this.noAnswer++;
    // Only the webhook path answers a POST with 200.
    if (first === 200 && recipe.method === "POST") this.accepted++;
    if (exchange.timedOut) this.timeouts++;
    const fault = exchange.timedOut || exchange.statuses.some((s) => s >= 500 && s !== 503);
    if (exchange.statuses.some((s) => s >= 500 && s !== 503)) this.serverErrors++;
    if (exchange.statuses.includes(503)) this.unavailable++;
    if (fault && this.faultExamples.length < MAX_EXAMPLES) {
      this.faultExamples.push({
        description: describeRecipe(recipe, sent.bodyLength),
        got: exchange.timedOut ? "no answer or close in 15 s" : exchange.statuses.join(","),
        request: Buffer.concat(sent.pieces).toString("base64"),
      });
    }
    if (sent.expected !== undefined) {
      this.oracleChecked++;
      const expected = sent.expected.status;
      // Answered before the body was read, then closed: our writing may meet a reset that
      // discards the answer. No answer at all then is the connection's fate, not a wrong one.
      const resetUnread =
        sent.expected.bodyUnread && first === undefined && exchange.error !== undefined;
      const matches = first === expected || (expected === 200 && first === 503) || resetUnread;
      if (resetUnread) this.resetUnread++;
      if (!matches) {
        this.oracleMismatches++;
        if (this.mismatchExamples.length < MAX_EXAMPLES) {
          this.mismatchExamples.push(
            `${describeRecipe(recipe, sent.bodyLength)}: expected ${expected}, got ${first ?? exchange.error ?? "nothing"}`,
          );
        }
      }
    }
    return !fault;
  }
}

interface FuzzTarget {
  port: number;
  serve: RunningServe;
  keys: { secret: string; otherSecret: string };
}

/**
 * Runs fast-check lanes until `untilMs`; a lane that finds a failure is shrunk, reported, and
 * started again with a new seed, so the server keeps getting traffic the whole phase.
 */
async function fuzzLane(
  lane: number,
  target: FuzzTarget,
  tally: FuzzTally,
  options: { seed: number; batchMax: number; untilMs: number },
  counterexamples: string[],
  serverGone: { at?: string },
): Promise<void> {
  const property = fc.asyncProperty(
    fc.array(recipeArbitrary(), { minLength: 1, maxLength: options.batchMax }),
    async (batch) => {
      // Once the server is gone every batch fails; the batch that killed it is already recorded.
      if (serverGone.at !== undefined) return true;
      const nowS = Math.floor(Date.now() / 1000);
      const sent = batch.map((recipe) => materialise(recipe, target.keys, target.port, nowS));
      const exchanges = await Promise.all(
        sent.map((request, index) =>
          rawExchange(target.port, request.pieces, {
            timeoutMs: EXCHANGE_TIMEOUT_MS,
            pauseMs: (batch[index]?.pieces ?? 1) > 1 ? 2 : 0,
          }),
        ),
      );
      tally.batches++;
      let good = true;
      for (const [index, exchange] of exchanges.entries()) {
        const recipe = batch[index];
        const request = sent[index];
        if (recipe && request && !tally.record(recipe, request, exchange)) good = false;
      }
      if (!target.serve.proc.isAlive()) {
        serverGone.at = batch
          .map((recipe, index) => describeRecipe(recipe, sent[index]?.bodyLength ?? 0))
          .join(" ; ");
        return false;
      }
      return good;
    },
  );
  let seed = options.seed;
  while (Date.now() < options.untilMs && serverGone.at === undefined) {
    const details = await fc.check(property, {
      seed,
      numRuns: 10_000_000,
      interruptAfterTimeLimit: Math.max(1, options.untilMs - Date.now()),
      markInterruptAsFailure: false,
      endOnFailure: false,
    });
    if (details.failed && details.counterexample) {
      const [batch] = details.counterexample;
      counterexamples.push(
        `lane ${lane} seed ${seed} path ${details.counterexamplePath}: ${batch.map((recipe) => describeRecipe(recipe, bodyBytes(recipe.body).length)).join(" ; ")}`,
      );
    }
    seed += 1000;
  }
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** serve's log records with this message (e.g. the worker's "store error"), and their reasons. */
function logRecords(path: string, message: string): { count: number; reasons: Set<string> } {
  const needle = `"msg":${JSON.stringify(message)}`;
  const reasons = new Set<string>();
  let count = 0;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.includes(needle)) continue;
    count++;
    try {
      const { reason } = JSON.parse(line) as { reason?: unknown };
      if (typeof reason === "string") reasons.add(reason);
    } catch {
      // Not a whole JSON line: counted, no reason.
    }
  }
  return { count, reasons };
}

/**
 * Waits until the detailed /health (the loopback listener's: the public one has no queue) shows an
 * empty queue; returns the last answer.
 */
async function drained(adminOrigin: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await health(adminOrigin);
    const queue =
      "body" in answer ? (answer.body.queue as { pending?: number } | undefined) : undefined;
    if (queue?.pending === 0 || Date.now() >= deadline) return answer;
    await sleep(500);
  }
}

export async function runFuzz(context: PartContext): Promise<PartResult> {
  const { budget, secrets, progress } = context;
  const plan = budget.fuzz;
  const redact = redactor(secrets);
  const workdir = join(context.workdir, "fuzz");
  mkdirSync(workdir, { recursive: true });
  const chat = await ChaosChat.start(secrets, seededRandom(context.seed + 3));
  const spec = await partServeSpec("fuzz", workdir, chat.url, context);
  const { port } = spec;
  let serve: RunningServe | undefined;
  try {
    serve = await startServe(spec);
    const target: FuzzTarget = {
      port,
      serve,
      keys: { secret: secrets.webhookSecret, otherSecret: `${secrets.webhookSecret}x` },
    };
    const tally = new FuzzTally();
    const counterexamples: string[] = [];
    const serverGone: { at?: string } = {};
    const startedAt = Date.now();
    const pid = serve.proc.pid;
    const samples: Array<{ s: number; rss: number; phase: string }> = [];
    let phase = "warm-up";
    const sampler = setInterval(() => {
      const rss = currentRssMiB(pid);
      const elapsedS = Math.round((Date.now() - startedAt) / 1000);
      if (rss !== undefined) samples.push({ s: elapsedS, rss, phase });
    }, 1000);
    const reporter = setInterval(() => {
      progress(
        `fuzz: ${Math.round((Date.now() - startedAt) / 1000)} s, ${tally.requests} requests, answers ${formatCounts(tally.statuses)}`,
      );
    }, 30_000);
    const fuzzFor = (seconds: number, seedOffset: number) => {
      const untilMs = Date.now() + seconds * 1000;
      return Promise.all(
        Array.from({ length: plan.lanes }, (_, lane) =>
          fuzzLane(
            lane,
            target,
            tally,
            { seed: context.seed * 10 + seedOffset + lane, batchMax: plan.batchMax, untilMs },
            counterexamples,
            serverGone,
          ),
        ),
      );
    };
    let rssStart: number | undefined;
    let rssEnd: number | undefined;
    try {
      progress(
        `fuzz: ${plan.lanes} fast-check lanes, batches of up to ${plan.batchMax}, against serve on :${port}: ${plan.warmupS} s warm-up, then ${plan.durationS} s between two RSS samples`,
      );
      await fuzzFor(plan.warmupS, 0);
      rssStart = currentRssMiB(pid);
      phase = "fuzz";
      await fuzzFor(plan.durationS, 100);
      rssEnd = currentRssMiB(pid);
      phase = "drain";
    } finally {
      clearInterval(sampler);
      clearInterval(reporter);
    }
    const busy = samples.filter((sample) => sample.phase === "fuzz").map((sample) => sample.rss);
    const quarter = Math.max(1, Math.floor(busy.length / 4));
    const firstQuarter = median(busy.slice(0, quarter));
    const lastQuarter = median(busy.slice(-quarter));
    const trend =
      firstQuarter !== undefined && lastQuarter !== undefined
        ? lastQuarter - firstQuarter
        : undefined;
    writeFileSync(
      join(workdir, "rss.csv"),
      `seconds,rss_mib,phase\n${samples.map((sample) => `${sample.s},${sample.rss.toFixed(1)},${sample.phase}`).join("\n")}\n`,
    );
    const alive = serve.proc.isAlive();
    const finalHealth = alive
      ? await drained(serve.adminOrigin, 30_000)
      : { error: "process gone" };
    const publicHealth = alive ? await health(serve.origin) : { error: "process gone" };
    const publicOk =
      "status" in publicHealth &&
      publicHealth.status === 200 &&
      publicHealth.body.ok === true &&
      Object.keys(publicHealth.body).sort().join(",") === "instance,ok";
    const healthOk =
      publicOk &&
      "status" in finalHealth &&
      finalHealth.status === 200 &&
      finalHealth.body.ok === true;
    const queue =
      "body" in finalHealth
        ? (finalHealth.body.queue as { pending?: number } | undefined)
        : undefined;
    const dead = "body" in finalHealth ? finalHealth.body.dead : undefined;
    const stop = await stopGently(serve.proc);
    serve = undefined;
    const worker = logRecords(join(workdir, "serve.stdout.log"), "store error");
    const workerErrors = worker.count;
    const internalErrors = logRecords(join(workdir, "serve.stdout.log"), "internal error").count;

    const notes: string[] = [];
    if (serverGone.at) notes.push(`fuzz: the server died during the batch: ${serverGone.at}`);
    for (const example of tally.faultExamples) {
      notes.push(`fuzz: ${example.description} → ${example.got}`);
    }
    if (tally.faultExamples.length) {
      const file = join(workdir, "fuzz-faults.json");
      writeFileSync(file, JSON.stringify(tally.faultExamples, null, 2));
      notes.push(`fuzz: the raw requests (base64) are in ${file}`);
    }
    for (const example of counterexamples) notes.push(`fuzz: shrunk counterexample: ${example}`);
    for (const example of tally.mismatchExamples) {
      notes.push(`fuzz: answer differs from README.md: ${example}`);
    }
    if (workerErrors) {
      notes.push(
        `fuzz: serve logged "store error" ${workerErrors} times (${[...worker.reasons].join("; ")}): the delivery worker threw on an accepted event and tried it again a second later, holding the queue meanwhile`,
      );
    }

    const mib = (value: number | undefined) =>
      value === undefined ? "?" : `${value.toFixed(0)} MiB`;
    const seconds = Math.round((Date.now() - startedAt) / 1000);
    return {
      rows: [
        {
          part: "fuzz",
          check: "fuzz: no crash; /health ok at the end",
          figure: `${tally.requests} requests in ${tally.batches} batches over ${seconds} s; ${alive ? "alive" : "DEAD"}, public /health ${"status" in publicHealth ? `${publicHealth.status} ${JSON.stringify(publicHealth.body.ok)}` : publicHealth.error}${publicOk || !("body" in publicHealth) ? "" : ` (fields ${Object.keys(publicHealth.body).join(", ")})`}, loopback /health ${"status" in finalHealth ? `${finalHealth.status} ${finalHealth.body.status ?? ""}` : finalHealth.error}; stopped ${stop.signal ?? `exit ${stop.code}`}`,
          target: "alive; public /health 200 {ok, instance}; loopback /health 200 ok",
          verdict: verdict(alive && healthOk && serverGone.at === undefined),
        },
        {
          part: "fuzz",
          check: "fuzz: no 5xx other than a deliberate 503",
          figure: `5xx: ${tally.serverErrors}, 503: ${tally.unavailable}, "internal error" log lines: ${internalErrors}; answers ${formatCounts(tally.statuses)}`,
          target: "0",
          verdict: verdict(tally.serverErrors === 0 && internalErrors === 0),
        },
        {
          part: "fuzz",
          check: "fuzz: every connection answered or closed",
          figure: `${tally.timeouts} left hanging over 15 s (${tally.noAnswer} closed without an answer: malformed or cut short)`,
          target: "0 hanging",
          verdict: verdict(tally.timeouts === 0),
        },
        {
          part: "fuzz",
          check: "fuzz: well-formed requests get README.md's answer",
          figure: `${tally.oracleChecked - tally.oracleMismatches}/${tally.oracleChecked} as specified${tally.resetUnread ? ` (${tally.resetUnread} of them refused before the body was read and reset before the answer could be read)` : ""}`,
          target: "all",
          verdict: verdict(tally.oracleMismatches === 0 && tally.oracleChecked > 0),
        },
        {
          part: "fuzz",
          check: "fuzz: accepted events delivered; the worker never fails on one",
          figure: `${tally.accepted} accepted (200); then pending ${queue?.pending ?? "?"}, dead ${String(dead ?? "?")}; worker errors ("store error") ${workerErrors}`,
          target: "0 pending, 0 dead, 0 errors",
          verdict: verdict(queue?.pending === 0 && dead === 0 && workerErrors === 0),
        },
        {
          part: "fuzz",
          check: "fuzz: memory flat (child RSS over the long phase)",
          figure: `${mib(rssStart)} at the start → ${mib(rssEnd)} at the end of ${plan.durationS} s (after ${plan.warmupS} s warm-up); median of the first quarter ${mib(firstQuarter)}, of the last ${mib(lastQuarter)}; range ${mib(Math.min(...busy))}–${mib(Math.max(...busy))}`,
          target: plan.judgeMemory
            ? `last-quarter median ≤ first-quarter median + ${RSS_SLACK_MIB} MiB`
            : "judged in the full run only (too short here)",
          verdict: plan.judgeMemory
            ? verdict(trend !== undefined && trend <= RSS_SLACK_MIB)
            : "info",
        },
      ],
      notes: notes.map(redact),
    };
  } finally {
    if (serve) await killHard(serve.proc);
    await chat.close();
  }
}
