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
  /** e.g. http://127.0.0.1:8787, and the webhook path, e.g. `/`. */
  origin: string;
  path: string;
  secret: string;
}

/** What one run saw; summarize() keeps the figures the report needs. */
export class RunStats {
  /** Requests handed to the connection pool, and 2xx answers (events the adapter acknowledged). */
  sent = 0;
  ok = 0;
  /** Closed loop: 2xx answers that arrived within the measured window, and the window. */
  okInWindow = 0;
  windowS = 0;
  /** Non-2xx answers by status; requests without an answer by error code. */
  statuses = new Map<number, number>();
  errors = new Map<string, number>();
  /** Ack latency of every sent request; Infinity when it never got an answer. */
  latenciesMs: number[] = [];
  /** Open loop: the same from the scheduled send time, and how late each send left. */
  fromScheduleMs: number[] = [];
  sendLagMs: number[] = [];
  /** Open loop: sends skipped because maxInFlight requests were already outstanding. */
  skipped = 0;
  /** Event ids that got a 2xx, for the durability check. */
  ackedIds: string[] = [];
  /** Wall time of the run, first send to last answer; open loop: first to last send. */
  elapsedS = 0;
  sendSpanS = 0;
  /** CPU seconds the bench process (the generator, and the fake Chat) used during the run. */
  generatorCpuS = 0;
}

export const countInto = <K>(map: Map<K, number>, key: K, by = 1) =>
  map.set(key, (map.get(key) ?? 0) + by);
const total = (map: Map<unknown, number>) => [...map.values()].reduce((sum, n) => sum + n, 0);

/** CPU seconds this process has used since `since` (a process.cpuUsage() reading). */
const cpuSecondsSince = (since: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
};

const nowNs = () => process.hrtime.bigint();
const nsToMs = (ns: bigint) => Number(ns) / 1e6;

// A mix of real types so bodies vary in length like real traffic.
const EVENT_TYPES = ["low_credit", "instance_stopped", "outbid", "machine_error", "billing_failed"];
let typeCursor = 0;

/** One delivery as Vast.ai sends it: unique event id, signature over a timestamp taken now. */
function makeDelivery(secret: string) {
  const event = sampleEvent(EVENT_TYPES[typeCursor++ % EVENT_TYPES.length] ?? "low_credit");
  const body = Buffer.from(JSON.stringify(event), "utf8");
  return {
    eventId: event.event_id,
    body,
    headers: vastHeaders(secret, body, { eventId: event.event_id }),
  };
}

export function createPool(origin: string, connections: number, timeoutMs: number): Pool {
  return new Pool(origin, {
    connections,
    // One request per connection at a time: what a webhook sender does, and what a plain
    // HTTP/1.0 server (the tutorial's) can handle.
    pipelining: 1,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
}

/** Open loop: sends one delivery and records its outcome. Never throws. */
async function sendOne(pool: Pool, target: LoadTarget, stats: RunStats, scheduled: bigint) {
  // Built and signed before the clock starts: the latency is the adapter's, not the signing's.
  const delivery = makeDelivery(target.secret);
  stats.sent++;
  const start = nowNs();
  stats.sendLagMs.push(nsToMs(start - scheduled));
  try {
    const { headers, body } = delivery;
    const response = await pool.request({ path: target.path, method: "POST", headers, body });
    await response.body.text();
    const end = nowNs();
    stats.latenciesMs.push(nsToMs(end - start));
    stats.fromScheduleMs.push(nsToMs(end - scheduled));
    if (response.statusCode >= 200 && response.statusCode < 300) {
      stats.ok++;
      stats.ackedIds.push(delivery.eventId);
    } else {
      countInto(stats.statuses, response.statusCode);
    }
  } catch (error) {
    const { code, name } = error as { code?: string; name?: string };
    countInto(stats.errors, code ?? name ?? "error");
    stats.latenciesMs.push(Number.POSITIVE_INFINITY);
    stats.fromScheduleMs.push(Number.POSITIVE_INFINITY);
  }
}

interface OpenLoopOptions {
  rate: number;
  durationS: number;
  connections: number;
  maxInFlight: number;
  timeoutMs: number;
}

/**
 * Fixed-rate open loop: send i leaves at start + i/rate whatever the earlier ones are doing (no
 * coordinated omission). A timer wakes the loop at the next due send; whatever is due goes out.
 */
export async function openLoop(target: LoadTarget, options: OpenLoopOptions): Promise<RunStats> {
  const stats = new RunStats();
  const pool = createPool(target.origin, options.connections, options.timeoutMs);
  const sends = Math.round(options.rate * options.durationS);
  const intervalNs = BigInt(Math.round(1e9 / options.rate));
  const pending = new Set<Promise<void>>();
  const cpuStart = process.cpuUsage();
  const start = nowNs();
  let lastSend = start;
  let next = 0;

  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowNs();
        while (next < sends && start + BigInt(next) * intervalNs <= now) {
          const scheduled = start + BigInt(next) * intervalNs;
          next++;
          if (pending.size >= options.maxInFlight) {
            stats.skipped++;
            continue;
          }
          const sending = sendOne(pool, target, stats, scheduled);
          pending.add(sending);
          void sending.then(() => pending.delete(sending));
          lastSend = nowNs();
        }
        if (next >= sends) return resolve();
        const dueInMs = nsToMs(start + BigInt(next) * intervalNs - nowNs());
        setTimeout(tick, Math.max(0, Math.floor(dueInMs)));
      };
      tick();
    });
    stats.sendSpanS = nsToMs(lastSend - start) / 1000;

    // Every request has the pool's own timeouts; this also covers ones still queued for a
    // connection, which those timeouts do not.
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
    if (status >= 200 && status < 300) {
      stats.ok++;
      if (stoppedAt === undefined) stats.okInWindow++;
    } else {
      countInto(stats.statuses, status);
    }
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
  try {
    await done;
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  // Requests still in flight when autocannon stopped were dropped: not counted as sent.
  stats.sent = stats.latenciesMs.length;
  stats.windowS = stoppedAt === undefined ? durationS : nsToMs(stoppedAt - start) / 1000;
  stats.elapsedS = nsToMs(nowNs() - start) / 1000;
  stats.generatorCpuS = cpuSecondsSince(cpuStart);
  return stats;
}

/** Nearest-rank percentile; Infinity when the rank falls on a request without an answer. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** The figures the report needs from one run, so its raw latencies need not be kept. */
export type RunSummary = ReturnType<typeof summarize>;

export function summarize(stats: RunStats) {
  /** Non-2xx answers and errors by label ("HTTP 502", "ECONNRESET"). */
  const problems = new Map<string, number>();
  for (const [status, n] of stats.statuses) problems.set(`HTTP ${status}`, n);
  for (const [code, n] of stats.errors) problems.set(code, (problems.get(code) ?? 0) + n);
  return {
    sent: stats.sent,
    ok: stats.ok,
    non2xx: total(stats.statuses),
    noAnswer: total(stats.errors),
    skipped: stats.skipped,
    p50Ms: percentile(stats.latenciesMs, 50),
    p99Ms: percentile(stats.latenciesMs, 99),
    maxMs: percentile(stats.latenciesMs, 100),
    fromScheduleP99Ms: percentile(stats.fromScheduleMs, 99),
    sendLagP99Ms: percentile(stats.sendLagMs, 99),
    /** Open loop: the rate the generator really sent at (n sends span n - 1 intervals). */
    achievedRate: stats.sendSpanS > 0 ? (stats.sent - 1) / stats.sendSpanS : undefined,
    /** Closed loop: the sustained accept rate, 2xx answers per second of the measured window. */
    acceptedPerS: stats.windowS > 0 ? stats.okInWindow / stats.windowS : 0,
    windowS: stats.windowS,
    /** The bench process's CPU per request sent, µs, and its share of one core over the run. */
    generatorCpuPerRequestUs: stats.sent > 0 ? (stats.generatorCpuS / stats.sent) * 1e6 : undefined,
    generatorCpuShare: stats.elapsedS > 0 ? stats.generatorCpuS / stats.elapsedS : undefined,
    problems,
  };
}

/** One line for the progress log. */
export function describeRun(label: string, run: RunSummary): string {
  const rate = run.windowS > 0 ? run.acceptedPerS : (run.achievedRate ?? 0);
  const bad = run.sent - run.ok;
  return (
    `${label}: ${run.ok} acknowledged of ${run.sent} (${rate.toFixed(0)}/s` +
    `, p50 ${run.p50Ms?.toFixed(2) ?? "–"} ms, p99 ${run.p99Ms?.toFixed(2) ?? "–"} ms)` +
    (bad ? `, ${bad} not 2xx` : "")
  );
}
