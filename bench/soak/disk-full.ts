import { closeSync, mkdirSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execaSync } from "execa";
import { vastHeaders } from "../../test/support/sign.js";
import { checkAcknowledged, integrityCheck } from "../durability.js";
import * as h from "./harness.js";
import { sendLikeVast, startChaosChat } from "./peers.js";

/**
 * Disk full: serve's config directory (and so its store) on a 2 MiB tmpfs, filled to the last
 * page by a filler file. Events must then be refused with 503 `unavailable` (Vast.ai retries),
 * never answered 200 unless they were kept, while the process stays up. With the filler gone,
 * events are accepted again and everything acknowledged reaches Chat; the store passes
 * `PRAGMA integrity_check` at the end. Needs root for the mount; skipped (not failed) without.
 */
const TMPFS_SIZE = "2m";
const UNAVAILABLE = JSON.stringify({ ok: false, error: "unavailable" });

/** Every mount is remembered, so it is undone however the suite ends (end, error, Ctrl+C). */
const mounted = new Set<string>();
const run = (command: string, args: string[]) =>
  execaSync(command, args, { reject: false, timeout: 10_000 });

/** Unmounts, falling back to a lazy unmount if something still holds a file open. */
export function unmountAll(): void {
  for (const dir of mounted) {
    if (run("umount", [dir]).failed && run("umount", ["-l", dir]).failed) {
      console.error(`[soak] disk: could not unmount ${dir}`);
      continue;
    }
    mounted.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes until the file system refuses: big blocks first, then down to single bytes. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (const size of [64 * 1024, 4096, 512, 1]) {
      const block = Buffer.alloc(size, 0x66);
      try {
        for (;;) written += writeSync(fd, block);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

export async function runDiskFull(context: h.PartContext): Promise<h.PartResult> {
  const plan = context.budget.disk;
  const mountDir = join(context.dir, "tmpfs");
  mkdirSync(mountDir, { recursive: true });
  const options = `size=${TMPFS_SIZE},mode=0700`;
  const mount = run("mount", ["-t", "tmpfs", "-o", options, "tmpfs", mountDir]);
  if (mount.failed) {
    const reason = String(mount.stderr || mount.shortMessage).trim();
    context.progress(`disk: cannot mount a tmpfs (${reason}): skipped`);
    const figure = `skipped: needs root (mount -t tmpfs failed: ${reason})`;
    const check = "disk full: 503 while full, recovery, integrity";
    return { rows: [h.row(check, figure, "—", "SKIP")], notes: [] };
  }
  mounted.add(mountDir);
  context.later(unmountAll);

  const chat = await startChaosChat(context, 5);
  const configDir = join(mountDir, "config");
  const filler = join(mountDir, "filler");
  const serve = await h.startServe(context, "disk full", chat.url, { configDir });
  const send = (events: h.SoakEvent[], deadlineS: number) => {
    const sending = { concurrency: 4, ratePerS: 20, seedOffset: 6, deadlineS };
    return sendLikeVast(context, serve, events, sending);
  };

  // A store in use first: the schema, some events, a WAL that has seen writes.
  const before = h.makeSoakEvents("D", 10);
  const warm = await send(before, 20);

  const fillerKiB = (fill(filler) / 1024).toFixed(0);
  context.progress(
    `disk: tmpfs of ${TMPFS_SIZE} filled (${fillerKiB} KiB filler); sending ${plan.whileFull} events once each`,
  );
  const whileFull = h.makeSoakEvents("D", plan.whileFull, before.length);
  const answers = new Map<string | number, number>();
  const [acceptedWhileFull, refusedWhileFull]: [h.SoakEvent[], h.SoakEvent[]] = [[], []];
  let wrongBodies = 0;
  for (const event of whileFull) {
    // One attempt per event, as the first delivery of each: what does a full disk answer?
    const { status = "no answer", text } = await h.ask(`${serve.origin}${serve.path}`, {
      method: "POST",
      headers: vastHeaders(context.secrets.webhookSecret, event.body, { eventId: event.eventId }),
      body: event.body,
    });
    h.countInto(answers, status);
    (status === 200 ? acceptedWhileFull : refusedWhileFull).push(event);
    if (status === 503 && text !== UNAVAILABLE) wrongBodies++;
    await sleep(50);
  }
  const aliveWhileFull = serve.child.alive();
  const healthWhileFull = await h.health(serve);

  unlinkSync(filler);
  const freedAt = Date.now();
  context.progress(
    `disk: filler removed; sending the ${refusedWhileFull.length} refused events again and ${plan.afterFreeing} new ones`,
  );
  const after = h.makeSoakEvents("D", plan.afterFreeing, before.length + whileFull.length);
  const again = [...refusedWhileFull, ...after];
  // The first one alone, retried until accepted: how long until the store takes writes again.
  const first = await send(again.slice(0, 1), 30);
  const recoveredS = (Date.now() - freedAt) / 1000;
  const rest = await send(again.slice(1), 30);
  for (const [status, count] of first.statuses) h.countInto(rest.statuses, status, count);
  const againAcked = new Set([...first.acked, ...rest.acked]);

  const acked = [
    ...before.filter((event) => warm.acked.has(event.token)),
    ...acceptedWhileFull,
    ...again.filter((event) => againAcked.has(event.token)),
  ];
  const ackedTokens = acked.map((event) => event.token);
  const ackedIds = acked.map((event) => event.eventId);
  const allSent = before.length + whileFull.length + after.length;
  const delivered = await chat.waitForTokens(ackedTokens, plan.deliverCapS * 1000);
  const missing = chat.missing(ackedTokens);
  const alive = serve.child.alive();
  const stop = await h.stop(serve.child);
  const onDisk = await checkAcknowledged(serve.storePath, ackedIds);
  const integrity = await integrityCheck(serve.storePath);

  const only200or503 = [...answers.keys()].every((status) => status === 200 || status === 503);
  const keptWhileFull =
    acceptedWhileFull.every((event) => !missing.includes(event.token)) && onDisk.missing === 0;
  const { status, json, error } = healthWhileFull;
  const healthFigure = status
    ? `loopback /health ${status} ${String(json.status ?? json.error ?? "")}`
    : `loopback /health: ${aliveWhileFull ? error : "process gone"}`;
  return {
    rows: [
      h.row(
        "disk full: events refused with 503 unavailable, never 200 unless kept",
        `${plan.whileFull} sent while full: ${h.formatCounts(answers)} (503 bodies not {"ok":false,"error":"unavailable"}: ${wrongBodies}); the ${acceptedWhileFull.length} answered 200 are in the store and in Chat: ${keptWhileFull ? "yes" : "NO"}`,
        "503 unavailable; no other status",
        only200or503 && (answers.get(503) ?? 0) > 0 && wrongBodies === 0 && onDisk.missing === 0,
      ),
      h.row(
        "disk full: process stays up; accepts again once space is back",
        `${aliveWhileFull ? "alive" : "DEAD"} while full (${healthFigure}); first 200 ${recoveredS.toFixed(1)} s after freeing; then ${againAcked.size}/${again.length} acknowledged (non-2xx ${h.formatCounts(rest.statuses)})`,
        "alive; all acknowledged",
        aliveWhileFull && alive && againAcked.size === again.length,
      ),
      h.row(
        "disk full: everything acknowledged delivered to Chat",
        `${acked.length - missing.length}/${acked.length} acknowledged in Chat (${allSent} sent); stopped ${stop}`,
        "0 missing",
        delivered && missing.length === 0 && acked.length === allSent,
      ),
      h.row("disk full: PRAGMA integrity_check of events.db", integrity, "ok", integrity === "ok"),
    ],
    notes: [missing.length && `disk: missing in Chat: ${missing.slice(0, 5).join(", ")}`],
  };
}
