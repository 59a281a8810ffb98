import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { rssMiB } from "../targets.js";
import { describeRecipe, type Materialised, materialise, recipeArbitrary } from "./fuzz-recipes.js";
import * as h from "./harness.js";
import { startChaosChat } from "./peers.js";

/**
 * Bad input: fast-check generates raw HTTP requests (fuzz-recipes.ts) sent in small concurrent
 * batches over plain TCP to a running serve. Promised: it stays up and both /health are ok at the
 * end, no 5xx but a deliberate 503, every connection answered or closed, memory flat over the long
 * phase, and for well-formed requests the very answer README.md gives.
 */

/** RSS growth allowed over the long phase, judged on the medians of its first and last quarter
 * (1 s samples): one sample lands anywhere in a heap that swings with GC timing. */
const RSS_SLACK_MIB = 64;
const MAX_EXAMPLES = 5;

/**
 * One exchange over plain TCP: the bytes written as given (in pieces, for the parser's partial
 * reads), then half-closed. Returns the statuses received, whether neither an answer nor a close
 * came within 15 s, and our socket's error if any (e.g. ECONNRESET after a 413).
 */
async function rawExchange(port: number, pieces: readonly Buffer[]) {
  const socket = connect({ host: "127.0.0.1", port });
  const exchange = { received: "", timedOut: false, error: undefined as string | undefined };
  // Enough for every status line; responses are small JSON or the metrics page.
  socket.on("data", (chunk: Buffer) => {
    if (exchange.received.length < 64 * 1024) exchange.received += chunk.toString("latin1");
  });
  socket.on("error", (error: NodeJS.ErrnoException) => {
    exchange.error ??= error.code ?? error.message;
  });
  const timer = setTimeout(() => {
    exchange.timedOut = true;
    socket.destroy();
  }, 15_000);
  socket.once("connect", async () => {
    for (const [index, piece] of pieces.entries()) {
      if (index > 0) await sleep(2);
      if (socket.destroyed) return;
      socket.write(piece);
    }
    if (!socket.destroyed) socket.end();
  });
  await new Promise((resolve) => socket.once("close", resolve));
  clearTimeout(timer);
  const statuses = [...exchange.received.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) =>
    Number(m[1]),
  );
  return { ...exchange, statuses };
}

/** `accepted`: POSTs answered 200 (the worker must deliver each); `resetUnread`: refused before
 * the body was read, and reset before the answer could be read. */
const newTally = () => ({
  requests: 0,
  batches: 0,
  noAnswer: 0,
  timeouts: 0,
  serverErrors: 0,
  unavailable: 0,
  accepted: 0,
  oracleChecked: 0,
  oracleMismatches: 0,
  resetUnread: 0,
  statuses: new Map<number | string, number>(),
  mismatchExamples: [] as string[],
  faultExamples: [] as Array<{ description: string; got: string; request: string }>,
});

/** Records one exchange; false when it is a fault (a 5xx but 503, or no end in time). */
function record(
  tally: ReturnType<typeof newTally>,
  sent: Materialised,
  { statuses, timedOut, error }: Awaited<ReturnType<typeof rawExchange>>,
): boolean {
  tally.requests++;
  // An interim 100 Continue is not the answer.
  const first = statuses.find((status) => status >= 200);
  h.countInto(tally.statuses, first ?? (timedOut ? "timeout" : "no answer"));
  if (statuses.length === 0) tally.noAnswer++;
  // Only the webhook path answers a POST with 200.
  if (first === 200 && sent.recipe.method === "POST") tally.accepted++;
  if (timedOut) tally.timeouts++;
  const serverError = statuses.some((status) => status >= 500 && status !== 503);
  if (serverError) tally.serverErrors++;
  if (statuses.includes(503)) tally.unavailable++;
  if ((timedOut || serverError) && tally.faultExamples.length < MAX_EXAMPLES) {
    tally.faultExamples.push({
      description: describeRecipe(sent.recipe),
      got: timedOut ? "no answer or close in 15 s" : statuses.join(","),
      request: Buffer.concat(sent.pieces).toString("base64"),
    });
  }
  if (sent.expected === undefined) return !(timedOut || serverError);
  tally.oracleChecked++;
  const { status: expected, bodyUnread } = sent.expected;
  // Answered before the body was read, then closed: our writing may meet a reset that discards
  // the answer. No answer at all then is the connection's fate, not a wrong one.
  const resetUnread = bodyUnread && first === undefined && error !== undefined;
  if (resetUnread) tally.resetUnread++;
  if (!(first === expected || (expected === 200 && first === 503) || resetUnread)) {
    tally.oracleMismatches++;
    if (tally.mismatchExamples.length < MAX_EXAMPLES) {
      const got = first ?? error ?? "nothing";
      tally.mismatchExamples.push(
        `${describeRecipe(sent.recipe)}: expected ${expected}, got ${got}`,
      );
    }
  }
  return !(timedOut || serverError);
}

/** serve's log records with this message (e.g. the worker's "store error"), and their reasons. */
function logRecords(path: string, message: string) {
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.includes(`"msg":${JSON.stringify(message)}`));
  // A line that is not whole JSON is counted, without a reason.
  const reasons = lines.map((line) => /"reason":("(?:[^"\\]|\\.)*")/.exec(line)?.[1]);
  const known = reasons.filter((r) => r !== undefined).map((r) => JSON.parse(r) as string);
  return { count: lines.length, reasons: [...new Set(known)] };
}

const mib = (value: number | undefined) => (value === undefined ? "?" : `${value.toFixed(0)} MiB`);
const pendingOf = (health: h.Answer) =>
  (health.json.queue as { pending?: number } | undefined)?.pending;

export async function runFuzz(context: h.PartContext): Promise<h.PartResult> {
  const { secrets, progress, dir } = context;
  const plan = context.budget.fuzz;
  const chat = await startChaosChat(context, 3);
  const serve = await h.startServe(context, "fuzz", chat.url);
  const { port } = serve.spec;
  const keys = { secret: secrets.webhookSecret, otherSecret: `${secrets.webhookSecret}x` };
  const tally = newTally();
  const counterexamples: string[] = [];
  // Once the server is gone every batch fails; the batch that killed it is recorded here.
  let serverGoneAt: string | undefined;
  const batches = fc.array(recipeArbitrary, { minLength: 1, maxLength: plan.batchMax });
  const property = fc.asyncProperty(batches, async (batch) => {
    if (serverGoneAt !== undefined) return true;
    const now = Math.floor(Date.now() / 1000);
    const sent = batch.map((recipe) => materialise(recipe, keys, port, now));
    const exchanges = await Promise.all(sent.map((request) => rawExchange(port, request.pieces)));
    tally.batches++;
    const good = exchanges.map((exchange, index) =>
      record(tally, sent[index] as Materialised, exchange),
    );
    if (serve.child.alive()) return good.every(Boolean);
    serverGoneAt = batch.map(describeRecipe).join(" ; ");
    return false;
  });
  /** fast-check lanes in parallel until the time is up; a failure is shrunk, noted, and the
   * lane started again with a new seed, so the server keeps getting traffic the whole phase. */
  const fuzzFor = (seconds: number, seedOffset: number) => {
    const untilMs = Date.now() + seconds * 1000;
    const lane = async (lane: number) => {
      let seed = context.seed * 10 + seedOffset + lane;
      for (; Date.now() < untilMs && serverGoneAt === undefined; seed += 1000) {
        const details = await fc.check(property, {
          seed,
          numRuns: 10_000_000,
          interruptAfterTimeLimit: Math.max(1, untilMs - Date.now()),
          markInterruptAsFailure: false,
          endOnFailure: false,
        });
        if (!details.failed || !details.counterexample) continue;
        const found = details.counterexample[0].map(describeRecipe).join(" ; ");
        counterexamples.push(
          `lane ${lane} seed ${seed} path ${details.counterexamplePath}: ${found}`,
        );
      }
    };
    return Promise.all(Array.from({ length: plan.lanes }, (_, index) => lane(index)));
  };

  const startedAt = Date.now();
  const seconds = () => Math.round((Date.now() - startedAt) / 1000);
  const samples: Array<{ s: number; rss: number; phase: string }> = [];
  let phase = "warm-up";
  const sampler = setInterval(() => {
    const rss = rssMiB(serve.child.pid, "VmRSS");
    if (rss !== undefined) samples.push({ s: seconds(), rss, phase });
  }, 1000);
  const reporter = setInterval(() => {
    const answers = h.formatCounts(tally.statuses);
    progress(`fuzz: ${seconds()} s, ${tally.requests} requests, answers ${answers}`);
  }, 30_000);
  const stopTimers = () => [sampler, reporter].forEach(clearInterval);
  context.later(stopTimers);
  progress(
    `fuzz: ${plan.lanes} fast-check lanes, batches of up to ${plan.batchMax}, against serve on :${port}: ${plan.warmupS} s warm-up, then ${plan.durationS} s between two RSS samples`,
  );
  await fuzzFor(plan.warmupS, 0);
  const rssStart = rssMiB(serve.child.pid, "VmRSS");
  phase = "fuzz";
  await fuzzFor(plan.durationS, 100);
  const rssEnd = rssMiB(serve.child.pid, "VmRSS");
  stopTimers();

  const busy = samples.filter((sample) => sample.phase === "fuzz").map((sample) => sample.rss);
  const quarter = Math.max(1, Math.floor(busy.length / 4));
  const firstQuarter = h.median(busy.slice(0, quarter));
  const lastQuarter = h.median(busy.slice(-quarter));
  const csv = samples.map((sample) => `${sample.s},${sample.rss.toFixed(1)},${sample.phase}`);
  writeFileSync(join(dir, "rss.csv"), `seconds,rss_mib,phase\n${csv.join("\n")}\n`);
  const alive = serve.child.alive();
  // Until the detailed /health (the loopback listener's: the public one has no queue) shows an
  // empty queue, 30 s at most.
  const deadline = Date.now() + 30_000;
  let finalHealth = await h.health(serve);
  while (alive && pendingOf(finalHealth) !== 0 && Date.now() < deadline) {
    await sleep(500);
    finalHealth = await h.health(serve);
  }
  const publicHealth = await h.ask(`${serve.origin}/health`);
  const publicFields = Object.keys(publicHealth.json);
  const publicOk =
    publicHealth.status === 200 &&
    publicHealth.json.ok === true &&
    publicFields.sort().join() === "instance,ok";
  const healthOk = publicOk && finalHealth.status === 200 && finalHealth.json.ok === true;
  const [pending, dead] = [pendingOf(finalHealth), finalHealth.json.dead];
  const stop = await h.stop(serve.child);
  const worker = logRecords(serve.child.log, "store error");
  const internalErrors = logRecords(serve.child.log, "internal error").count;
  const faultsFile = join(dir, "fuzz-faults.json");
  if (tally.faultExamples.length)
    writeFileSync(faultsFile, JSON.stringify(tally.faultExamples, null, 2));

  const describe = (answer: h.Answer, what: unknown) =>
    answer.status === undefined
      ? alive
        ? answer.error
        : "process gone"
      : `${answer.status} ${what}`;
  const publicFigure = `${describe(publicHealth, JSON.stringify(publicHealth.json.ok))}${publicOk || publicHealth.status === undefined ? "" : ` (fields ${publicFields.join(", ")})`}`;
  const trend =
    firstQuarter !== undefined && lastQuarter !== undefined
      ? lastQuarter - firstQuarter
      : undefined;
  return {
    rows: [
      h.row(
        "fuzz: no crash; /health ok at the end",
        `${tally.requests} requests in ${tally.batches} batches over ${seconds()} s; ${alive ? "alive" : "DEAD"}, public /health ${publicFigure}, loopback /health ${describe(finalHealth, finalHealth.json.status ?? "")}; stopped ${stop}`,
        "alive; public /health 200 {ok, instance}; loopback /health 200 ok",
        alive && healthOk && serverGoneAt === undefined,
      ),
      h.row(
        "fuzz: no 5xx other than a deliberate 503",
        `5xx: ${tally.serverErrors}, 503: ${tally.unavailable}, "internal error" log lines: ${internalErrors}; answers ${h.formatCounts(tally.statuses)}`,
        "0",
        tally.serverErrors === 0 && internalErrors === 0,
      ),
      h.row(
        "fuzz: every connection answered or closed",
        `${tally.timeouts} left hanging over 15 s (${tally.noAnswer} closed without an answer: malformed or cut short)`,
        "0 hanging",
        tally.timeouts === 0,
      ),
      h.row(
        "fuzz: well-formed requests get README.md's answer",
        `${tally.oracleChecked - tally.oracleMismatches}/${tally.oracleChecked} as specified${tally.resetUnread ? ` (${tally.resetUnread} of them refused before the body was read and reset before the answer could be read)` : ""}`,
        "all",
        tally.oracleMismatches === 0 && tally.oracleChecked > 0,
      ),
      h.row(
        "fuzz: accepted events delivered; the worker never fails on one",
        `${tally.accepted} accepted (200); then pending ${pending ?? "?"}, dead ${String(dead ?? "?")}; worker errors ("store error") ${worker.count}`,
        "0 pending, 0 dead, 0 errors",
        pending === 0 && dead === 0 && worker.count === 0,
      ),
      h.row(
        "fuzz: memory flat (child RSS over the long phase)",
        `${mib(rssStart)} at the start → ${mib(rssEnd)} at the end of ${plan.durationS} s (after ${plan.warmupS} s warm-up); median of the first quarter ${mib(firstQuarter)}, of the last ${mib(lastQuarter)}; range ${mib(Math.min(...busy))}–${mib(Math.max(...busy))}`,
        plan.judgeMemory
          ? `last-quarter median ≤ first-quarter median + ${RSS_SLACK_MIB} MiB`
          : "judged in the full run only (too short here)",
        plan.judgeMemory ? trend !== undefined && trend <= RSS_SLACK_MIB : "info",
      ),
    ],
    notes: [
      serverGoneAt && `fuzz: the server died during the batch: ${serverGoneAt}`,
      ...tally.faultExamples.map((example) => `fuzz: ${example.description} → ${example.got}`),
      tally.faultExamples.length > 0 && `fuzz: the raw requests (base64) are in ${faultsFile}`,
      ...counterexamples.map((example) => `fuzz: shrunk counterexample: ${example}`),
      ...tally.mismatchExamples.map((example) => `fuzz: answer differs from README.md: ${example}`),
      worker.count &&
        `fuzz: serve logged "store error" ${worker.count} times (${worker.reasons.join("; ")}): the delivery worker threw on an accepted event and tried it again a second later, holding the queue meanwhile`,
    ],
  };
}
