import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import {
  describeRecipe,
  type Materialised,
  materialise,
  type Recipe,
  recipeArbitrary,
} from "./fuzz-recipes.js";
import {
  type Answer,
  ask,
  countInto,
  currentRssMiB,
  formatCounts,
  health,
  type PartContext,
  type PartResult,
  row,
  serveSpec,
  startServe,
  stopGently,
} from "./harness.js";
import { ChaosChat } from "./peers.js";

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

/**
 * One exchange over a plain TCP connection, since a malformed request is the point: the bytes are
 * written exactly as given (in pieces, to exercise the parser's partial reads), then the
 * connection is half-closed, so the server answers what it could parse and closes.
 */
interface Exchange {
  /** Status codes of the responses received, in order. */
  statuses: number[];
  /** No end within the timeout: the server neither answered nor closed. */
  timedOut: boolean;
  /** A socket error on our side (e.g. ECONNRESET after a 413 that stopped reading). */
  error: string | undefined;
}

async function rawExchange(port: number, pieces: readonly Buffer[]): Promise<Exchange> {
  const socket = connect({ host: "127.0.0.1", port });
  let received = "";
  const exchange: Exchange = { statuses: [], timedOut: false, error: undefined };
  // Enough for every status line; responses are small JSON or the metrics page.
  socket.on("data", (chunk: Buffer) => {
    if (received.length < 64 * 1024) received += chunk.toString("latin1");
  });
  socket.on("error", (error: NodeJS.ErrnoException) => {
    exchange.error ??= error.code ?? error.message;
  });
  const closed = new Promise((resolve) => socket.once("close", resolve));
  const timer = setTimeout(() => {
    exchange.timedOut = true;
    socket.destroy();
  }, EXCHANGE_TIMEOUT_MS);
  socket.once("connect", async () => {
    for (const [index, piece] of pieces.entries()) {
      if (socket.destroyed) return;
      if (index > 0) await sleep(2);
      socket.write(piece);
    }
    if (!socket.destroyed) socket.end();
  });
  await closed;
  clearTimeout(timer);
  exchange.statuses = [...received.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  return exchange;
}

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

  /** Records one exchange; false when it is a fault (a 5xx but 503, or no end in time). */
  record(recipe: Recipe, sent: Materialised, exchange: Exchange): boolean {
    const { statuses, timedOut, error } = exchange;
    this.requests++;
    // An interim 100 Continue is not the answer.
    const first = statuses.find((status) => status >= 200);
    countInto(this.statuses, first ?? (timedOut ? "timeout" : "no answer"));
    if (statuses.length === 0) this.noAnswer++;
    // Only the webhook path answers a POST with 200.
    if (first === 200 && recipe.method === "POST") this.accepted++;
    if (timedOut) this.timeouts++;
    const serverError = statuses.some((status) => status >= 500 && status !== 503);
    if (serverError) this.serverErrors++;
    if (statuses.includes(503)) this.unavailable++;
    if ((timedOut || serverError) && this.faultExamples.length < MAX_EXAMPLES) {
      this.faultExamples.push({
        description: describeRecipe(recipe),
        got: timedOut ? "no answer or close in 15 s" : statuses.join(","),
        request: Buffer.concat(sent.pieces).toString("base64"),
      });
    }
    if (sent.expected !== undefined) {
      this.oracleChecked++;
      const expected = sent.expected.status;
      // Answered before the body was read, then closed: our writing may meet a reset that
      // discards the answer. No answer at all then is the connection's fate, not a wrong one.
      const resetUnread = sent.expected.bodyUnread && first === undefined && error !== undefined;
      if (resetUnread) this.resetUnread++;
      if (!(first === expected || (expected === 200 && first === 503) || resetUnread)) {
        this.oracleMismatches++;
        if (this.mismatchExamples.length < MAX_EXAMPLES) {
          this.mismatchExamples.push(
            `${describeRecipe(recipe)}: expected ${expected}, got ${first ?? error ?? "nothing"}`,
          );
        }
      }
    }
    return !(timedOut || serverError);
  }
}

/** serve's log records with this message (e.g. the worker's "store error"), and their reasons. */
function logRecords(path: string, message: string): { count: number; reasons: Set<string> } {
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.includes(`"msg":${JSON.stringify(message)}`));
  const reasons = lines.map((line) => {
    try {
      return (JSON.parse(line) as { reason?: unknown }).reason;
    } catch {
      return undefined; // Not a whole JSON line: counted, no reason.
    }
  });
  return { count: lines.length, reasons: new Set(reasons.filter((r) => typeof r === "string")) };
}

const median = (values: readonly number[]) =>
  values.length ? [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] : undefined;
const mib = (value: number | undefined) => (value === undefined ? "?" : `${value.toFixed(0)} MiB`);

export async function runFuzz(context: PartContext): Promise<PartResult> {
  const { secrets, progress, dir } = context;
  const plan = context.budget.fuzz;
  const chat = await ChaosChat.start(context, 3);
  const spec = await serveSpec(context, "fuzz", chat.url);
  const { port } = spec;
  const serve = await startServe(spec);
  const keys = { secret: secrets.webhookSecret, otherSecret: `${secrets.webhookSecret}x` };
  const tally = new FuzzTally();
  const counterexamples: string[] = [];
  // Once the server is gone every batch fails; the batch that killed it is recorded here.
  let serverGoneAt: string | undefined;
  const property = fc.asyncProperty(
    fc.array(recipeArbitrary, { minLength: 1, maxLength: plan.batchMax }),
    async (batch) => {
      if (serverGoneAt !== undefined) return true;
      const now = Math.floor(Date.now() / 1000);
      const sent = batch.map((recipe) => materialise(recipe, keys, port, now));
      const exchanges = await Promise.all(sent.map((request) => rawExchange(port, request.pieces)));
      tally.batches++;
      const good = batch.map((recipe, index) =>
        tally.record(recipe, sent[index] as Materialised, exchanges[index] as Exchange),
      );
      if (!serve.child.alive()) {
        serverGoneAt = batch.map(describeRecipe).join(" ; ");
        return false;
      }
      return good.every(Boolean);
    },
  );
  /**
   * fast-check lanes in parallel until the time is up, so one slow case does not idle the fuzzer;
   * a lane that finds a failure is shrunk, reported, and started again with a new seed, so the
   * server keeps getting traffic the whole phase.
   */
  const fuzzFor = (seconds: number, seedOffset: number) => {
    const untilMs = Date.now() + seconds * 1000;
    const lane = async (lane: number) => {
      for (let seed = context.seed * 10 + seedOffset + lane; ; seed += 1000) {
        if (Date.now() >= untilMs || serverGoneAt !== undefined) return;
        const details = await fc.check(property, {
          seed,
          numRuns: 10_000_000,
          interruptAfterTimeLimit: Math.max(1, untilMs - Date.now()),
          markInterruptAsFailure: false,
          endOnFailure: false,
        });
        if (details.failed && details.counterexample) {
          const [batch] = details.counterexample;
          counterexamples.push(
            `lane ${lane} seed ${seed} path ${details.counterexamplePath}: ${batch.map(describeRecipe).join(" ; ")}`,
          );
        }
      }
    };
    return Promise.all(Array.from({ length: plan.lanes }, (_, index) => lane(index)));
  };

  const startedAt = Date.now();
  const samples: Array<{ s: number; rss: number; phase: string }> = [];
  let phase = "warm-up";
  const sampler = setInterval(() => {
    const rss = currentRssMiB(serve.child.pid);
    if (rss !== undefined)
      samples.push({ s: Math.round((Date.now() - startedAt) / 1000), rss, phase });
  }, 1000);
  const reporter = setInterval(() => {
    progress(
      `fuzz: ${Math.round((Date.now() - startedAt) / 1000)} s, ${tally.requests} requests, answers ${formatCounts(tally.statuses)}`,
    );
  }, 30_000);
  context.later(() => {
    clearInterval(sampler);
    clearInterval(reporter);
  });
  progress(
    `fuzz: ${plan.lanes} fast-check lanes, batches of up to ${plan.batchMax}, against serve on :${port}: ${plan.warmupS} s warm-up, then ${plan.durationS} s between two RSS samples`,
  );
  await fuzzFor(plan.warmupS, 0);
  const rssStart = currentRssMiB(serve.child.pid);
  phase = "fuzz";
  await fuzzFor(plan.durationS, 100);
  const rssEnd = currentRssMiB(serve.child.pid);
  clearInterval(sampler);
  clearInterval(reporter);

  const busy = samples.filter((sample) => sample.phase === "fuzz").map((sample) => sample.rss);
  const quarter = Math.max(1, Math.floor(busy.length / 4));
  const firstQuarter = median(busy.slice(0, quarter));
  const lastQuarter = median(busy.slice(-quarter));
  writeFileSync(
    join(dir, "rss.csv"),
    `seconds,rss_mib,phase\n${samples.map((sample) => `${sample.s},${sample.rss.toFixed(1)},${sample.phase}`).join("\n")}\n`,
  );
  const alive = serve.child.alive();
  // Until the detailed /health (the loopback listener's: the public one has no queue) shows an
  // empty queue, 30 s at most.
  const pendingOf = (answer: Answer) =>
    (answer.json.queue as { pending?: number } | undefined)?.pending;
  let finalHealth = await health(serve);
  for (const deadline = Date.now() + 30_000; alive && pendingOf(finalHealth) !== 0; ) {
    if (Date.now() >= deadline) break;
    await sleep(500);
    finalHealth = await health(serve);
  }
  const publicHealth = await ask(`${serve.origin}/health`);
  const publicFields = Object.keys(publicHealth.json).sort().join(",");
  const publicOk =
    publicHealth.status === 200 && publicHealth.json.ok === true && publicFields === "instance,ok";
  const healthOk = publicOk && finalHealth.status === 200 && finalHealth.json.ok === true;
  const pending = pendingOf(finalHealth);
  const dead = finalHealth.json.dead;
  const stop = await stopGently(serve.child);
  const worker = logRecords(join(dir, "serve.stdout.log"), "store error");
  const internalErrors = logRecords(join(dir, "serve.stdout.log"), "internal error").count;

  const notes: string[] = [];
  if (serverGoneAt) notes.push(`fuzz: the server died during the batch: ${serverGoneAt}`);
  for (const example of tally.faultExamples) {
    notes.push(`fuzz: ${example.description} → ${example.got}`);
  }
  if (tally.faultExamples.length) {
    const file = join(dir, "fuzz-faults.json");
    writeFileSync(file, JSON.stringify(tally.faultExamples, null, 2));
    notes.push(`fuzz: the raw requests (base64) are in ${file}`);
  }
  for (const example of counterexamples) notes.push(`fuzz: shrunk counterexample: ${example}`);
  for (const example of tally.mismatchExamples) {
    notes.push(`fuzz: answer differs from README.md: ${example}`);
  }
  if (worker.count) {
    notes.push(
      `fuzz: serve logged "store error" ${worker.count} times (${[...worker.reasons].join("; ")}): the delivery worker threw on an accepted event and tried it again a second later, holding the queue meanwhile`,
    );
  }
  const trend =
    firstQuarter !== undefined && lastQuarter !== undefined
      ? lastQuarter - firstQuarter
      : undefined;
  const describe = (answer: Answer, what: string) =>
    answer.status === undefined
      ? alive
        ? answer.error
        : "process gone"
      : `${answer.status} ${what}`;
  return {
    rows: [
      row(
        "fuzz: no crash; /health ok at the end",
        `${tally.requests} requests in ${tally.batches} batches over ${Math.round((Date.now() - startedAt) / 1000)} s; ${alive ? "alive" : "DEAD"}, public /health ${describe(publicHealth, JSON.stringify(publicHealth.json.ok))}${publicOk || publicHealth.status === undefined ? "" : ` (fields ${Object.keys(publicHealth.json).join(", ")})`}, loopback /health ${describe(finalHealth, String(finalHealth.json.status ?? ""))}; stopped ${stop}`,
        "alive; public /health 200 {ok, instance}; loopback /health 200 ok",
        alive && healthOk && serverGoneAt === undefined,
      ),
      row(
        "fuzz: no 5xx other than a deliberate 503",
        `5xx: ${tally.serverErrors}, 503: ${tally.unavailable}, "internal error" log lines: ${internalErrors}; answers ${formatCounts(tally.statuses)}`,
        "0",
        tally.serverErrors === 0 && internalErrors === 0,
      ),
      row(
        "fuzz: every connection answered or closed",
        `${tally.timeouts} left hanging over 15 s (${tally.noAnswer} closed without an answer: malformed or cut short)`,
        "0 hanging",
        tally.timeouts === 0,
      ),
      row(
        "fuzz: well-formed requests get README.md's answer",
        `${tally.oracleChecked - tally.oracleMismatches}/${tally.oracleChecked} as specified${tally.resetUnread ? ` (${tally.resetUnread} of them refused before the body was read and reset before the answer could be read)` : ""}`,
        "all",
        tally.oracleMismatches === 0 && tally.oracleChecked > 0,
      ),
      row(
        "fuzz: accepted events delivered; the worker never fails on one",
        `${tally.accepted} accepted (200); then pending ${pending ?? "?"}, dead ${String(dead ?? "?")}; worker errors ("store error") ${worker.count}`,
        "0 pending, 0 dead, 0 errors",
        pending === 0 && dead === 0 && worker.count === 0,
      ),
      row(
        "fuzz: memory flat (child RSS over the long phase)",
        `${mib(rssStart)} at the start → ${mib(rssEnd)} at the end of ${plan.durationS} s (after ${plan.warmupS} s warm-up); median of the first quarter ${mib(firstQuarter)}, of the last ${mib(lastQuarter)}; range ${mib(Math.min(...busy))}–${mib(Math.max(...busy))}`,
        plan.judgeMemory
          ? `last-quarter median ≤ first-quarter median + ${RSS_SLACK_MIB} MiB`
          : "judged in the full run only (too short here)",
        plan.judgeMemory ? trend !== undefined && trend <= RSS_SLACK_MIB : "info",
      ),
    ],
    notes: notes.map(context.redact),
  };
}
