import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { openLoop, percentile, type RunStats } from "../load.js";
import * as h from "./harness.js";
import { startChaosChat } from "./peers.js";

/**
 * Resource pressure: hundreds of idle and trickling connections held open against serve while
 * signed events flow at a moderate fixed rate. Every event must still be acknowledged, with the
 * 10 ms acknowledgement target met at p99. The same load without the held connections runs first,
 * so a slow machine can be told apart from a server that suffers under the pressure.
 */
export const ACK_P99_TARGET_MS = 10;

/**
 * Connections that take a server's resources without completing a request: idle ones that never
 * send a byte, and trickling ones that send a request header a byte at a time, one a second (a
 * slowloris). serve's header and request timeouts close them after a while, which is what it
 * should do; each closed one is opened again at once, so the pressure holds for the whole phase.
 */
function holdConnections(port: number, counts: { idle: number; trickle: number }) {
  const stats = { opened: 0, closedByServer: 0, answered408: 0, otherAnswers: 0, errors: 0 };
  const sockets = new Set<Socket>();
  const samples: number[] = [];
  const connected = () => [...sockets].filter((socket) => !socket.connecting).length;
  let holding = true;
  let sampler: NodeJS.Timeout | undefined;
  const open = (trickle: boolean): void => {
    if (!holding) return;
    const socket = connect({ host: "127.0.0.1", port });
    stats.opened++;
    let answer = "";
    sockets.add(socket);
    socket.on("connect", () => {
      if (!trickle) return;
      socket.write("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ");
      const drip = () => {
        if (socket.destroyed) return;
        socket.write("a");
        setTimeout(drip, 1000);
      };
      // Staggered, so the drips do not all land in the same millisecond.
      setTimeout(drip, Math.random() * 1000);
    });
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
    });
    socket.on("error", () => stats.errors++);
    socket.on("close", () => {
      sockets.delete(socket);
      if (!holding) return;
      stats.closedByServer++;
      if (/^HTTP\/1\.[01] 408/.test(answer)) stats.answered408++;
      else if (answer.startsWith("HTTP/")) stats.otherAnswers++;
      setImmediate(() => open(trickle));
    });
  };
  return {
    /** Opens them all (spread over about a second), and keeps them open until release(). */
    async hold() {
      for (let index = 0; index < counts.idle + counts.trickle; index++) {
        open(index >= counts.idle);
        if (index % 50 === 49) await sleep(100);
      }
    },
    /** From now on, notes how many are open every 250 ms. */
    startSampling() {
      samples.push(connected());
      sampler = setInterval(() => samples.push(connected()), 250);
    },
    /** Closes them all; the stats as they were, with the fewest and the median open samples. */
    release() {
      holding = false;
      clearInterval(sampler);
      for (const socket of sockets) socket.destroy();
      return {
        ...stats,
        minOpen: Math.min(...samples),
        medianOpen: h.median(samples.slice(1)) ?? 0,
      };
    },
  };
}

/** p50, p99 and the max (the 100th percentile). */
const latencies = (stats: RunStats) =>
  [50, 99, 100]
    .map((p) => percentile(stats.latenciesMs, p) ?? Number.NaN)
    .map((value) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : "no answer"));

export async function runPressure(context: h.PartContext): Promise<h.PartResult> {
  const plan = context.budget.pressure;
  const chat = await startChaosChat(context, 4);
  const serve = await h.startServe(context, "pressure", chat.url);
  const held = holdConnections(serve.spec.port, plan);
  context.later(() => held.release());
  const target = { ...serve, secret: context.secrets.webhookSecret };
  const sending = { rate: plan.ratePerS, connections: 4, maxInFlight: 64, timeoutMs: 10_000 };
  const load = (durationS: number) => openLoop(target, { ...sending, durationS });

  // Not measured: JIT and connection set-up would otherwise land in the baseline's tail.
  await load(3);
  const { idle, trickle, ratePerS, durationS, baselineS } = plan;
  context.progress(`pressure: baseline, ${ratePerS} events/s for ${baselineS} s, nothing held`);
  const baseline = await load(baselineS);
  context.progress(
    `pressure: holding ${idle} idle + ${trickle} trickling connections, then ${ratePerS} events/s for ${durationS} s`,
  );
  await held.hold();
  await sleep(2000);
  held.startSampling();
  const loaded = await load(durationS);
  const heldStats = held.release();

  // The public /health shares the held listener; the loopback one says the store is fine.
  const publicHealth = await h.ask(`${serve.origin}/health`);
  const adminHealth = await h.health(serve);
  const alive = serve.child.alive();
  const stop = await h.stop(serve.child);
  const [p50, p99, max] = latencies(loaded);
  const [baseP50, baseP99, baseMax] = latencies(baseline);
  const healthy =
    publicHealth.status === 200 && adminHealth.status === 200 && adminHealth.json.store === "ok";
  const unhealthy = `NOT healthy (public /health ${publicHealth.status ?? publicHealth.error}, loopback ${adminHealth.status ? `${adminHealth.status} store ${String(adminHealth.json.store)}` : adminHealth.error})`;
  return {
    rows: [
      h.row(
        `pressure: every event acknowledged with ${idle} idle + ${trickle} trickling connections held`,
        `${loaded.ok}/${loaded.sent} at ${ratePerS}/s over ${durationS} s (other answers ${h.formatCounts(loaded.statuses)}, no answer ${h.formatCounts(loaded.errors)}); ${alive && healthy ? "alive, public and loopback /health 200" : unhealthy}, stopped ${stop}`,
        "all",
        loaded.ok === loaded.sent && loaded.sent > 0 && alive && healthy,
      ),
      h.row(
        "pressure: ack latency under pressure",
        `p50 ${p50}, p99 ${p99}, max ${max}`,
        `p99 ≤ ${ACK_P99_TARGET_MS} ms`,
        (percentile(loaded.latenciesMs, 99) ?? Number.NaN) <= ACK_P99_TARGET_MS,
      ),
      h.row(
        "pressure: ack latency, same load, nothing held (comparison)",
        `p50 ${baseP50}, p99 ${baseP99}, max ${baseMax}; ${baseline.ok}/${baseline.sent} acknowledged`,
        "—",
        "info",
      ),
      h.row(
        "pressure: the held connections",
        `${heldStats.opened} opened; the server closed ${heldStats.closedByServer} (${heldStats.answered408} with 408, ${heldStats.otherAnswers} other answers) and each was reopened at once; of ${idle + trickle}, ${heldStats.medianOpen} open at the median sample (4 a second), ${heldStats.minOpen} at the fewest (just after the server timed out a wave of them); ${heldStats.errors} socket errors`,
        "—",
        "info",
      ),
    ],
    notes: [],
  };
}
