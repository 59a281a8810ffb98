import { setTimeout as sleep } from "node:timers/promises";
import { seededRandom } from "../burst.js";
import { checkAcknowledged } from "../durability.js";
import * as h from "./harness.js";
import { sendLikeVast, startChaosChat } from "./peers.js";

/**
 * Crashes: thousands of events into `serve` while it is killed with SIGKILL at random moments
 * (sometimes again while it starts) and restarted on the same store, and while Chat fails at
 * random. At the end every acknowledged event must be in Chat; an event may arrive twice only
 * when a crash fell between Chat's 2xx and the adapter's record of it, so repeated posts are
 * allowed up to one per crash.
 */
export async function runCrashes(context: h.PartContext): Promise<h.PartResult> {
  const plan = context.budget.crashes;
  const random = seededRandom(context.seed);
  const between = ([min, max]: readonly [number, number]) => min + random() * (max - min);
  const chat = await startChaosChat(context, 1);
  let serve = await h.startServe(context, "crashes", chat.url);
  const { spec } = serve;
  chat.setChaos(true);
  const events = h.makeSoakEvents("C", plan.events);
  const sendS = plan.events / plan.sendRatePerS;
  context.progress(
    `crashes: ${plan.events} events at ${plan.sendRatePerS}/s (~${Math.round(sendS)} s) into serve on :${spec.port}, kill -9 every ${plan.killAfterMs[0] / 1000}-${plan.killAfterMs[1] / 1000} s, Chat failing at random`,
  );
  let senderDone = false;
  const { concurrency, sendRatePerS: ratePerS } = plan;
  const options = { concurrency, ratePerS, seedOffset: 2, deadlineS: sendS + 120 };
  const sending = sendLikeVast(context, serve, events, options).finally(() => {
    senderDone = true;
  });

  let crashes = 0;
  let crashesDuringStart = 0;
  const startedAt = Date.now();
  for (let nextProgress = startedAt + 15_000; !senderDone; ) {
    await Promise.race([sleep(between(plan.killAfterMs)), sending]);
    if (senderDone) break;
    await h.stop(serve.child, "SIGKILL");
    crashes++;
    await sleep(between(plan.downMs));
    if (random() < plan.earlyKillChance) {
      // Killed again while it starts: opening the store, creating the schema, binding.
      const early = h.launchServe(spec);
      early.ready.catch(() => {});
      await sleep(random() * 400);
      await h.stop(early.child, "SIGKILL");
      crashes++;
      crashesDuringStart++;
    }
    // Restarting after a kill: a failure to start on the store a kill left behind is a finding.
    for (let attempt = 1; ; attempt++) {
      try {
        serve = await h.launchServe(spec).ready;
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
        await sleep(500);
      }
    }
    if (Date.now() >= nextProgress) {
      const seconds = Math.round((Date.now() - startedAt) / 1000);
      context.progress(
        `crashes: ${seconds} s, ${crashes} kills, ${chat.stats.accepted} messages in Chat`,
      );
      nextProgress += 15_000;
    }
  }
  const sender = await sending;
  const acked = [...sender.acked];
  context.progress(
    `crashes: sender done, ${acked.length}/${plan.events} acknowledged after ${crashes} kills; Chat calm, waiting for delivery`,
  );

  chat.setChaos(false);
  const drainStart = Date.now();
  const complete = await chat.waitForTokens(acked, plan.drainCapS * 1000);
  const drainS = (Date.now() - drainStart) / 1000;
  const { dead } = (await h.health(serve)).json;
  const stop = await h.stop(serve.child);

  const missing = chat.missing(acked);
  const duplicates = chat.duplicates(acked);
  const ackedIds = events.filter((event) => sender.acked.has(event.token)).map((e) => e.eventId);
  const onDisk = await checkAcknowledged(serve.storePath, ackedIds);
  const allAcked = acked.length === plan.events && sender.refused === 0;
  const notes = [
    missing.length && `crashes: missing in Chat, e.g. ${missing.slice(0, 5).join(", ")}`,
    onDisk.missing && `crashes: acknowledged but not in the store: ${onDisk.examples.join(", ")}`,
    !allAcked &&
      `crashes: sender: ${acked.length} acknowledged, refused ${sender.refused}, cut off ${sender.cutOff}`,
  ];
  const { stats } = chat;
  return {
    rows: [
      h.row(
        "crashes: every event acknowledged (sender retries like Vast.ai)",
        `${acked.length}/${plan.events} in ${sender.attempts} attempts; non-2xx ${h.formatCounts(sender.statuses)}; no answer ${h.formatCounts(sender.errors)}`,
        `${plan.events}/${plan.events}`,
        allAcked,
      ),
      h.row(
        "crashes: acknowledged events in Chat after kill -9",
        `${acked.length - missing.length}/${acked.length} in Chat, ${missing.length} missing; ${crashes} kills (${crashesDuringStart} during start-up); drained ${drainS.toFixed(1)} s after the last ack`,
        "0 missing",
        missing.length === 0 && complete && crashes > 0,
      ),
      h.row(
        "crashes: duplicates",
        `${chat.stats.repeatPosts} repeated posts for ${crashes} kills (${duplicates.events} events twice or more, at most ${duplicates.maxCopies} copies; ${chat.stats.repeatPostsWithKnownRequestId} reused a requestId Chat had accepted)`,
        "≤ 1 repeated post per kill",
        chat.stats.repeatPosts <= crashes,
      ),
      h.row(
        "crashes: acknowledged events in the store; no dead letters",
        `${onDisk.acknowledged - onDisk.missing}/${onDisk.acknowledged} in events.db; dead letters ${dead ?? "unknown"}; final stop ${stop}`,
        "all, 0 dead",
        onDisk.missing === 0 && dead === 0,
      ),
      h.row(
        "crashes: Chat's failures",
        `${stats.requests} posts: ${stats.accepted} accepted, 500×${stats.error500}, 429×${stats.throttle429}, hung ${stats.hang}, wrong key/token ${stats.wrongCredentials}`,
        "failures happened; 0 wrong key/token",
        stats.error500 * stats.throttle429 * stats.hang > 0 && stats.wrongCredentials === 0,
      ),
    ],
    notes,
  };
}
