import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { seededRandom } from "../burst.js";
import { openLoop, percentile, type RunStats } from "../load.js";
import { ChaosChat } from "./chaos-chat.js";
import { HeldConnections } from "./held-connections.js";
import { killHard, stopGently } from "./processes.js";
import { formatCounts, type PartContext, type PartResult, verdict } from "./results.js";
import { health, partServeSpec, type RunningServe, startServe } from "./serve.js";

/**
 * Resource pressure: hundreds of idle and trickling connections held open against serve while
 * signed events flow at a moderate fixed rate. Every event must still be acknowledged, with the
 * 10 ms acknowledgement target met at p99. The same load without the held connections runs first,
 * so a slow machine can be told apart from a server that suffers under the pressure.
 */
export const ACK_P99_TARGET_MS = 10;

function latencies(stats: RunStats): { p50: number; p99: number; max: number } {
  return {
    p50: percentile(stats.latenciesMs, 50) ?? Number.NaN,
    p99: percentile(stats.latenciesMs, 99) ?? Number.NaN,
    max: Math.max(...stats.latenciesMs),
  };
}

const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : "no answer");

function unanswered(stats: RunStats): string {
  const answers = formatCounts(stats.statuses);
  const errors = formatCounts(stats.errors);
  return `other answers ${answers}, no answer ${errors}`;
}

export async function runPressure(context: PartContext): Promise<PartResult> {
  const { budget, secrets, progress } = context;
  const plan = budget.pressure;
  const workdir = join(context.workdir, "pressure");
  mkdirSync(workdir, { recursive: true });
  const chat = await ChaosChat.start(secrets, seededRandom(context.seed + 4));
  const spec = await partServeSpec("pressure", workdir, chat.url, context);
  let serve: RunningServe | undefined;
  const held = new HeldConnections(spec.port, { idle: plan.idle, trickle: plan.trickle });
  try {
    serve = await startServe(spec);
    const target = { origin: serve.origin, path: serve.path, secret: secrets.webhookSecret };
    const load = (durationS: number) =>
      openLoop(target, {
        rate: plan.ratePerS,
        durationS,
        connections: 4,
        maxInFlight: 64,
        timeoutMs: 10_000,
      });

    // Not measured: JIT and connection set-up would otherwise land in the baseline's tail.
    await load(3);
    progress(`pressure: baseline, ${plan.ratePerS} events/s for ${plan.baselineS} s, nothing held`);
    const baseline = await load(plan.baselineS);

    progress(
      `pressure: holding ${plan.idle} idle + ${plan.trickle} trickling connections, then ${plan.ratePerS} events/s for ${plan.durationS} s`,
    );
    await held.hold();
    await sleep(2000);
    held.startSampling();
    const loaded = await load(plan.durationS);
    const heldStats = { ...held.stats };
    held.release();

    // The public /health shares the held listener; the loopback one says the store is fine.
    const finalHealth = await health(serve.origin);
    const adminHealth = await health(serve.adminOrigin);
    const alive = serve.proc.isAlive();
    const stop = await stopGently(serve.proc);
    serve = undefined;

    const base = latencies(baseline);
    const under = latencies(loaded);
    const allAcked = loaded.ok === loaded.sent && loaded.sent > 0;
    const healthy =
      "status" in finalHealth &&
      finalHealth.status === 200 &&
      "status" in adminHealth &&
      adminHealth.status === 200 &&
      adminHealth.body.store === "ok";
    return {
      rows: [
        {
          part: "pressure",
          check: `pressure: every event acknowledged with ${plan.idle} idle + ${plan.trickle} trickling connections held`,
          figure: `${loaded.ok}/${loaded.sent} at ${plan.ratePerS}/s over ${plan.durationS} s (${unanswered(loaded)}); ${alive && healthy ? "alive, public and loopback /health 200" : `NOT healthy (public /health ${"status" in finalHealth ? finalHealth.status : finalHealth.error}, loopback ${"status" in adminHealth ? `${adminHealth.status} store ${String(adminHealth.body.store)}` : adminHealth.error})`}, stopped ${stop.signal ?? `exit ${stop.code}`}`,
          target: "all",
          verdict: verdict(allAcked && alive && healthy),
        },
        {
          part: "pressure",
          check: "pressure: ack latency under pressure",
          figure: `p50 ${ms(under.p50)}, p99 ${ms(under.p99)}, max ${ms(under.max)}`,
          target: `p99 ≤ ${ACK_P99_TARGET_MS} ms`,
          verdict: verdict(under.p99 <= ACK_P99_TARGET_MS),
        },
        {
          part: "pressure",
          check: "pressure: ack latency, same load, nothing held (comparison)",
          figure: `p50 ${ms(base.p50)}, p99 ${ms(base.p99)}, max ${ms(base.max)}; ${baseline.ok}/${baseline.sent} acknowledged`,
          target: "—",
          verdict: "info",
        },
        {
          part: "pressure",
          check: "pressure: the held connections",
          figure: `${heldStats.opened} opened; the server closed ${heldStats.closedByServer} (${heldStats.answered408} with 408, ${heldStats.otherAnswers} other answers) and each was reopened at once; of ${plan.idle + plan.trickle}, ${heldStats.medianOpen} open at the median sample (4 a second), ${Number.isFinite(heldStats.minOpen) ? heldStats.minOpen : 0} at the fewest (just after the server timed out a wave of them); ${heldStats.errors} socket errors`,
          target: "—",
          verdict: "info",
        },
      ],
      notes: [],
    };
  } finally {
    held.release();
    if (serve) await killHard(serve.proc);
    await chat.close();
  }
}
