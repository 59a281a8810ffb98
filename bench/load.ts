import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { Pool } from "undici";
import { sampleEvent } from "../src/vast/sample-events.js";
import { vastHeaders } from "../test/support/sign.js";

/**
 * The load generator: our open-loop fixed-rate run and autocannon's closed-loop saturation run,
 * both sending signed deliveries as Vast.ai would (BENCHMARKS.md, the method). It shares the
 * machine with the adapter under test, so it is kept lean: no per-request timers, plain arrays.
 */
export interface LoadTarget {
  origin: string;
  path: string;
  secret: string;
}

/** What one run saw; summarize() keeps the figures the report needs. */
export class RunStats {
  sent = 0;
  ok = 0;
  /** Closed loop: 2xx answers within the measured window, and the window. */
  okInWindow = 0;
  windowS = 0;
  statuses = new Map<number, number>();
  errors = new Map<string, number>();
  /** Ack latency of every sent request; Infinity when it never got an answer. */
  latenciesMs: number[] = [];
  /** Open loop: the same from the scheduled send time, and how late each send left. */
  fromScheduleMs: number[] = [];
  sendLagMs: number[] = [];
  /** Open loop: sends skipped because maxInFlight requests were already outstanding. */
  skipped = 0;
  ackedIds: string[] = [];
  /** First send to last answer; open loop: first to last send. */
  elapsedS = 0;
  sendSpanS = 0;
  /** CPU seconds the bench process (the generator, and the fake Chat) used during the run. */
  generatorCpuS = 0;
}

export const countInto = <K>(map: Map<K, number>, key: K, by = 1) =>
  map.set(key, (map.get(key) ?? 0) + by);
const total = (map: Map<unknown, number>) => [...map.values()].reduce((sum, n) => sum + n, 0);
const cpuSecondsSince = (since: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
};
const nowNs = () => process.hrtime.bigint();
const nsToMs = (ns: bigint) => Number(ns) / 1e6;
const errorCode = (error: unknown) => {
  const { code, name } = error as { code?: string; name?: string };
  return code ?? name ?? "error";
};

/** A mix of real types, in turn, so bodies vary like real traffic. */
const EVENT_TYPES = ["low_credit", "instance_stopped", "outbid", "machine_error", "billing_failed"];
let typeCursor = 0;

/** One delivery as Vast.ai sends it: unique event id, signature over a timestamp taken now. */
function makeDelivery(secret: string) {
  const event = sampleEvent(EVENT_TYPES[typeCursor++ % EVENT_TYPES.length] ?? "low_credit");
  const body = Buffer.from(JSON.stringify(event), "utf8");
  const headers = vastHeaders(secret, body, { eventId: event.event_id });
  return { eventId: event.event_id, body, headers };
}

/** One request per connection at a time: what a webhook sender does, and all HTTP/1.0 takes. */
export const createPool = (origin: string, connections: number, timeoutMs: number) =>
  new Pool(origin, {
    connections,
    pipelining: 1,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });

/** Open loop: sends one delivery and records its outcome. Never throws. */
async function sendOne(pool: Pool, target: LoadTarget, stats: RunStats, scheduled: bigint) {
  // Built and signed before the clock starts: the latency is the adapter's, not the signing's.
  const { headers, body, eventId } = makeDelivery(target.secret);
  stats.sent++;
  const start = nowNs();
  stats.sendLagMs.push(nsToMs(start - scheduled));
  let end: bigint | undefined;
  try {
    const response = await pool.request({ path: target.path, method: "POST", headers, body });
    await response.body.text();
    end = nowNs();
    if (response.statusCode >= 200 && response.statusCode < 300) {
      stats.ok++;
      stats.ackedIds.push(eventId);
    } else {
      countInto(stats.statuses, response.statusCode);
    }
  } catch (error) {
    countInto(stats.errors, errorCode(error));
  }
  const ms = (from: bigint) => (end === undefined ? Number.POSITIVE_INFINITY : nsToMs(end - from));
  stats.latenciesMs.push(ms(start));
  stats.fromScheduleMs.push(ms(scheduled));
}

/**
 * Fixed-rate open loop: send i leaves at start + i/rate whatever the earlier ones are doing (no
 * coordinated omission). A timer wakes the loop at the next due send; whatever is due goes out.
 */
export async function openLoop(
  target: LoadTarget,
  options: {
    rate: number;
    durationS: number;
    connections: number;
    maxInFlight: number;
    timeoutMs: number;
  },
): Promise<RunStats> {
  const stats = new RunStats();
  const pool = createPool(target.origin, options.connections, options.timeoutMs);
  const sends = Math.round(options.rate * options.durationS);
  const intervalNs = BigInt(Math.round(1e9 / options.rate));
  const pending = new Set<Promise<void>>();
  const cpuStart = process.cpuUsage();
  const start = nowNs();
  const due = (i: number) => start + BigInt(i) * intervalNs;
  let [lastSend, next] = [start, 0];
  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        for (; next < sends && due(next) <= nowNs(); next++) {
          if (pending.size >= options.maxInFlight) {
            stats.skipped++;
            continue;
          }
          const sending = sendOne(pool, target, stats, due(next));
          pending.add(sending);
          void sending.then(() => pending.delete(sending));
          lastSend = nowNs();
        }
        if (next >= sends) return resolve();
        setTimeout(tick, Math.max(0, Math.floor(nsToMs(due(next) - nowNs()))));
      };
      tick();
    });
    stats.sendSpanS = nsToMs(lastSend - start) / 1000;
    // The pool's timeouts do not cover requests still queued for a connection; this does.
    const timer = new AbortController();
    await Promise.race([
      Promise.allSettled([...pending]),
      sleep(options.timeoutMs, undefined, { signal: timer.signal }).catch(() => {}),
    ]);
    timer.abort();
  } finally {
    // Whatever is still outstanding fails now and is counted as "no answer".
    await pool.destroy();
    await Promise.allSettled([...pending]);
  }
  stats.elapsedS = nsToMs(nowNs() - start) / 1000;
  stats.generatorCpuS = cpuSecondsSince(cpuStart);
  return stats;
}

/**
 * Closed loop, driven by autocannon: `concurrency` connections, each sending its next delivery
 * (signed in setupRequest) as soon as the last one is answered. `signal` stops it early (kill -9).
 */
export async function closedLoop(
  target: LoadTarget,
  { concurrency, requestTimeoutMs }: { concurrency: number; requestTimeoutMs: number },
  durationS: number,
  signal?: AbortSignal,
): Promise<RunStats> {
  const stats = new RunStats();
  const cpuStart = process.cpuUsage();
  const start = nowNs();
  let stoppedAt: bigint | undefined;
  let finished: (error: Error | null) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    finished = (error) => (error ? reject(error) : resolve());
  });
  const instance = autocannon(
    {
      url: target.origin,
      connections: concurrency,
      pipelining: 1,
      duration: durationS,
      timeout: Math.max(1, Math.round(requestTimeoutMs / 1000)),
      requests: [
        {
          method: "POST",
          path: target.path,
          setupRequest: (request, context) => {
            const { eventId, headers, body } = makeDelivery(target.secret);
            Object.assign(context, { eventId });
            return { ...request, headers, body };
          },
          onResponse: (status, _body, context) => {
            const { eventId } = context as { eventId?: string };
            if (status >= 200 && status < 300 && eventId) stats.ackedIds.push(eventId);
          },
        },
      ],
    },
    (error) => finished(error),
  );
  instance.on("response", (_client, status, _bytes, ms) => {
    stats.latenciesMs.push(ms);
    if (status < 200 || status >= 300) return void countInto(stats.statuses, status);
    stats.ok++;
    if (stoppedAt === undefined) stats.okInWindow++;
  });
  instance.on("reqError", (error: Error & { code?: string }) => {
    const timedOut = error.message === "request timed out";
    countInto(stats.errors, error.code ?? (timedOut ? "timeout" : "error"));
    stats.latenciesMs.push(Number.POSITIVE_INFINITY);
  });
  const stop = () => {
    stoppedAt ??= nowNs();
    instance.stop();
  };
  signal?.addEventListener("abort", stop, { once: true });
  await done.finally(() => signal?.removeEventListener("abort", stop));
  // Requests still in flight when autocannon stopped were dropped: not counted as sent.
  stats.sent = stats.latenciesMs.length;
  stats.windowS = stoppedAt === undefined ? durationS : nsToMs(stoppedAt - start) / 1000;
  stats.elapsedS = nsToMs(nowNs() - start) / 1000;
  stats.generatorCpuS = cpuSecondsSince(cpuStart);
  return stats;
}

/** Nearest-rank percentile; Infinity when the rank falls on a request without an answer. */
export function percentile(values: readonly number[], p: number): number | undefined {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

/** The figures the report needs from one run, so its raw latencies need not be kept. */
export type RunSummary = ReturnType<typeof summarize>;
export function summarize(stats: RunStats) {
  const statuses = [...stats.statuses].map(([status, n]) => [`HTTP ${status}`, n] as const);
  const problems = new Map<string, number>([...statuses, ...stats.errors]);
  const { sent, ok, skipped, latenciesMs, windowS, elapsedS, generatorCpuS: cpuS } = stats;
  return {
    sent,
    ok,
    non2xx: total(stats.statuses),
    noAnswer: total(stats.errors),
    skipped,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    fromScheduleP99Ms: percentile(stats.fromScheduleMs, 99),
    sendLagP99Ms: percentile(stats.sendLagMs, 99),
    /** Open loop: the rate the generator really sent at (n sends span n - 1 intervals). */
    achievedRate: stats.sendSpanS > 0 ? (sent - 1) / stats.sendSpanS : undefined,
    /** Closed loop: 2xx answers per second of the measured window. */
    acceptedPerS: windowS > 0 ? stats.okInWindow / windowS : 0,
    windowS,
    generatorCpuPerRequestUs: sent > 0 ? (cpuS / sent) * 1e6 : undefined,
    generatorCpuShare: elapsedS > 0 ? cpuS / elapsedS : undefined,
    problems,
  };
}

/** One line for the progress log. */
export function describeRun(label: string, run: RunSummary): string {
  const rate = run.windowS > 0 ? run.acceptedPerS : (run.achievedRate ?? 0);
  const [p50, p99] = [run.p50Ms, run.p99Ms].map((v) => v?.toFixed(2) ?? "–");
  const bad = run.sent - run.ok;
  return `${label}: ${run.ok} acknowledged of ${run.sent} (${rate.toFixed(0)}/s, p50 ${p50} ms, p99 ${p99} ms)${bad ? `, ${bad} not 2xx` : ""}`;
}
