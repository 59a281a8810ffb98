import { closeSync, mkdirSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { Pool } from "undici";
import { eventStorePath } from "../../src/config/paths.js";
import { vastHeaders } from "../../test/support/sign.js";
import { seededRandom } from "../burst.js";
import { checkAcknowledged } from "../durability.js";
import { ChaosChat } from "./chaos-chat.js";
import { killHard, stopGently } from "./processes.js";
import { countInto, formatCounts, type PartContext, type PartResult, verdict } from "./results.js";
import { redactor } from "./secret-values.js";
import { health, partServeSpec, type RunningServe, startServe } from "./serve.js";
import { makeSoakEvents, type SoakEvent } from "./soak-events.js";
import { mountTmpfs, unmount } from "./tmpfs.js";
import { SOAK_RETRY_POLICY, sendLikeVast } from "./vast-sender.js";

/**
 * Disk full: serve's config directory (and so its store) on a 2 MiB tmpfs, filled to the last
 * page by a filler file. Events must then be refused with 503 `unavailable` (Vast.ai retries),
 * never answered 200 unless they were kept, while the process stays up. With the filler gone,
 * events are accepted again and everything acknowledged reaches Chat; the store passes
 * `PRAGMA integrity_check` at the end. Needs root for the mount; skipped (not failed) without.
 */
const TMPFS_SIZE = "2m";
const UNAVAILABLE = JSON.stringify({ ok: false, error: "unavailable" });

/** Writes until the file system refuses: big blocks first, then down to single bytes. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (const size of [64 * 1024, 4096, 512, 1]) {
      const block = Buffer.alloc(size, 0x66);
      for (;;) {
        try {
          written += writeSync(fd, block);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

interface OneShot {
  status: number | "no answer";
  body: string;
}

/** One attempt per event, as the first delivery of each: what does a full disk answer? */
async function sendOnce(
  path: string,
  secret: string,
  event: SoakEvent,
  pool: Pool,
): Promise<OneShot> {
  try {
    const response = await pool.request({
      path,
      method: "POST",
      headers: vastHeaders(secret, event.body, { eventId: event.eventId }),
      body: event.body,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.statusCode, body: await response.body.text() };
  } catch (error) {
    return { status: "no answer", body: (error as Error).message };
  }
}

function integrityCheck(storePath: string): string {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma("integrity_check") as Array<{ integrity_check: string }>;
    return rows.map((row) => row.integrity_check).join("; ");
  } finally {
    db.close();
  }
}

export async function runDiskFull(context: PartContext): Promise<PartResult> {
  const { budget, secrets, progress } = context;
  const plan = budget.disk;
  const redact = redactor(secrets);
  const workdir = join(context.workdir, "disk");
  const mountDir = join(workdir, "tmpfs");
  mkdirSync(mountDir, { recursive: true });
  const mounted = mountTmpfs(mountDir, TMPFS_SIZE);
  if (!mounted.ok) {
    progress(`disk: cannot mount a tmpfs (${mounted.reason}): skipped`);
    return {
      rows: [
        {
          part: "disk",
          check: "disk full: 503 while full, recovery, integrity",
          figure: `skipped: needs root (mount -t tmpfs failed: ${mounted.reason})`,
          target: "—",
          verdict: "SKIP",
        },
      ],
      notes: [],
    };
  }

  const chat = await ChaosChat.start(secrets, seededRandom(context.seed + 5));
  const configDir = join(mountDir, "config");
  const filler = join(mountDir, "filler");
  let serve: RunningServe | undefined;
  const pool = { current: undefined as Pool | undefined };
  try {
    serve = await startServe(
      await partServeSpec("disk full", workdir, chat.url, context, { configDir }),
    );
    const target = { origin: serve.origin, path: serve.path, secret: secrets.webhookSecret };
    const sender = (deadlineS: number) => ({
      concurrency: 4,
      ratePerS: 20,
      policy: SOAK_RETRY_POLICY,
      random: seededRandom(context.seed + 6),
      deadline: Date.now() + deadlineS * 1000,
    });

    // A store in use first: the schema, some events, a WAL that has seen writes.
    const before = makeSoakEvents("D", 10);
    const warm = await sendLikeVast(target, before, sender(20));

    const fillerBytes = fill(filler);
    progress(
      `disk: tmpfs of ${TMPFS_SIZE} filled (${(fillerBytes / 1024).toFixed(0)} KiB filler); sending ${plan.whileFull} events once each`,
    );
    const whileFull = makeSoakEvents("D", plan.whileFull, before.length);
    pool.current = new Pool(serve.origin, { connections: 2, pipelining: 1 });
    const answers = new Map<string | number, number>();
    const acceptedWhileFull: SoakEvent[] = [];
    const refusedWhileFull: SoakEvent[] = [];
    let wrongBodies = 0;
    for (const event of whileFull) {
      const answer = await sendOnce(serve.path, target.secret, event, pool.current);
      countInto(answers, answer.status);
      if (answer.status === 200) acceptedWhileFull.push(event);
      else refusedWhileFull.push(event);
      if (answer.status === 503 && answer.body !== UNAVAILABLE) wrongBodies++;
      await sleep(50);
    }
    const aliveWhileFull = serve.proc.isAlive();
    // The detailed /health (store, queue) is the loopback listener's.
    const healthWhileFull = aliveWhileFull
      ? await health(serve.adminOrigin)
      : { error: "process gone" };
    await pool.current.close();
    pool.current = undefined;

    unlinkSync(filler);
    const freedAt = Date.now();
    progress(
      `disk: filler removed; sending the ${refusedWhileFull.length} refused events again and ${plan.afterFreeing} new ones`,
    );
    const after = makeSoakEvents("D", plan.afterFreeing, before.length + whileFull.length);
    const again = [...refusedWhileFull, ...after];
    // The first one alone, retried until accepted: how long until the store takes writes again.
    const first = await sendLikeVast(target, again.slice(0, 1), sender(30));
    const recoveredS = (Date.now() - freedAt) / 1000;
    const rest = await sendLikeVast(target, again.slice(1), sender(30));
    const statuses = new Map(rest.statuses);
    for (const [status, count] of first.statuses) countInto(statuses, status, count);
    const retried = { acked: new Set([...first.acked, ...rest.acked]), statuses };

    const acked = [
      ...before.filter((event) => warm.acked.has(event.token)),
      ...acceptedWhileFull,
      ...again.filter((event) => retried.acked.has(event.token)),
    ];
    const allSent = before.length + whileFull.length + after.length;
    const delivered = await chat.waitForTokens(
      acked.map((event) => event.token),
      plan.deliverCapS * 1000,
    );
    const missing = chat.ledger.missing(acked.map((event) => event.token));
    const alive = serve.proc.isAlive();
    const stop = await stopGently(serve.proc);
    serve = undefined;
    const storePath = eventStorePath(configDir);
    const onDisk = checkAcknowledged(
      storePath,
      acked.map((event) => event.eventId),
    );
    const integrity = integrityCheck(storePath);

    const only200or503 = [...answers.keys()].every((status) => status === 200 || status === 503);
    const refused503 = answers.get(503) ?? 0;
    const healthFigure =
      "status" in healthWhileFull
        ? `loopback /health ${healthWhileFull.status} ${String(healthWhileFull.body.status ?? healthWhileFull.body.error ?? "")}`
        : `loopback /health: ${healthWhileFull.error}`;
    return {
      rows: [
        {
          part: "disk",
          check: "disk full: events refused with 503 unavailable, never 200 unless kept",
          figure: `${plan.whileFull} sent while full: ${formatCounts(answers)} (503 bodies not {"ok":false,"error":"unavailable"}: ${wrongBodies}); the ${acceptedWhileFull.length} answered 200 are in the store and in Chat: ${acceptedWhileFull.every((event) => !missing.includes(event.token)) && onDisk.missing === 0 ? "yes" : "NO"}`,
          target: "503 unavailable; no other status",
          verdict: verdict(
            only200or503 && refused503 > 0 && wrongBodies === 0 && onDisk.missing === 0,
          ),
        },
        {
          part: "disk",
          check: "disk full: process stays up; accepts again once space is back",
          figure: `${aliveWhileFull ? "alive" : "DEAD"} while full (${healthFigure}); first 200 ${recoveredS.toFixed(1)} s after freeing; then ${retried.acked.size}/${again.length} acknowledged (non-2xx ${formatCounts(retried.statuses)})`,
          target: "alive; all acknowledged",
          verdict: verdict(aliveWhileFull && alive && retried.acked.size === again.length),
        },
        {
          part: "disk",
          check: "disk full: everything acknowledged delivered to Chat",
          figure: `${acked.length - missing.length}/${acked.length} acknowledged in Chat (${allSent} sent); stopped ${stop.signal ?? `exit ${stop.code}`}`,
          target: "0 missing",
          verdict: verdict(delivered && missing.length === 0 && acked.length === allSent),
        },
        {
          part: "disk",
          check: "disk full: PRAGMA integrity_check of events.db",
          figure: integrity,
          target: "ok",
          verdict: verdict(integrity === "ok"),
        },
      ],
      notes: missing.length
        ? [redact(`disk: missing in Chat: ${missing.slice(0, 5).join(", ")}`)]
        : [],
    };
  } finally {
    await pool.current?.destroy();
    if (serve) await killHard(serve.proc);
    await chat.close();
    const unmounted = unmount(mountDir);
    if (!unmounted.ok) progress(`disk: could not unmount ${mountDir}: ${unmounted.reason}`);
    else rmSync(mountDir, { recursive: true, force: true });
  }
}
