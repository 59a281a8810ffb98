import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { eventStorePath } from "../../src/config/paths.js";
import { seededRandom } from "../burst.js";
import { checkAcknowledged } from "../durability.js";
import { ChaosChat } from "./chaos-chat.js";
import { killHard, stopGently } from "./processes.js";
import { countInto, formatCounts, type PartContext, type PartResult, verdict } from "./results.js";
import { redactor } from "./secret-values.js";
import {
  health,
  launchServe,
  partServeSpec,
  type RunningServe,
  type ServeSpec,
  startServe,
} from "./serve.js";
import { makeSoakEvents } from "./soak-events.js";
import { type SenderReport, SOAK_RETRY_POLICY, sendLikeVast } from "./vast-sender.js";

/**
 * Crashes: thousands of events into `serve` while it is killed with SIGKILL at random moments
 * (sometimes again while it starts) and restarted on the same store, and while Chat fails at
 * random. At the end every acknowledged event must be in Chat; an event may arrive twice only
 * when a crash fell between Chat's 2xx and the adapter's record of it, so repeated posts are
 * allowed up to one per crash.
 */
const between = (random: () => number, [min, max]: readonly [number, number]) =>
  min + random() * (max - min);

/** Restarting after a kill: a failure to start on the store a kill left behind is a finding. */
async function restart(spec: ServeSpec, attempts = 3): Promise<RunningServe> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startServe(spec);
    } catch (error) {
      lastError = error;
      await sleep(500);
    }
  }
  throw lastError;
}

export async function runCrashes(context: PartContext): Promise<PartResult> {
  const { budget, secrets, progress } = context;
  const plan = budget.crashes;
  const redact = redactor(secrets);
  const workdir = join(context.workdir, "crashes");
  mkdirSync(workdir, { recursive: true });
  const random = seededRandom(context.seed);
  const chat = await ChaosChat.start(secrets, seededRandom(context.seed + 1));
  const spec = await partServeSpec("crashes", workdir, chat.url, context);
  const notes: string[] = [];
  let serve: RunningServe | undefined;
  try {
    serve = await startServe(spec);
    chat.setChaos(true);
    const events = makeSoakEvents("C", plan.events);
    const sendS = plan.events / plan.sendRatePerS;
    progress(
      `crashes: ${plan.events} events at ${plan.sendRatePerS}/s (~${Math.round(sendS)} s) into serve on :${spec.port}, kill -9 every ${plan.killAfterMs[0] / 1000}-${plan.killAfterMs[1] / 1000} s, Chat failing at random`,
    );
    let senderDone = false;
    const sending = sendLikeVast(
      { origin: serve.origin, path: serve.path, secret: secrets.webhookSecret },
      events,
      {
        concurrency: plan.concurrency,
        ratePerS: plan.sendRatePerS,
        policy: SOAK_RETRY_POLICY,
        random: seededRandom(context.seed + 2),
        deadline: Date.now() + (sendS + 120) * 1000,
      },
    ).finally(() => {
      senderDone = true;
    });

    let crashes = 0;
    let crashesDuringStart = 0;
    const startedAt = Date.now();
    let nextProgress = startedAt + 15_000;
    while (!senderDone) {
      await Promise.race([sleep(between(random, plan.killAfterMs)), sending]);
      if (senderDone) break;
      await killHard(serve.proc);
      crashes++;
      await sleep(between(random, plan.downMs));
      if (random() < plan.earlyKillChance) {
        // Killed again while it starts: opening the store, creating the schema, binding.
        const early = launchServe(spec);
        early.ready.catch(() => {});
        await sleep(random() * 400);
        await killHard(early.proc);
        crashes++;
        crashesDuringStart++;
      }
      serve = await restart(spec);
      if (Date.now() >= nextProgress) {
        progress(
          `crashes: ${Math.round((Date.now() - startedAt) / 1000)} s, ${crashes} kills, ${chat.stats.accepted} messages in Chat`,
        );
        nextProgress += 15_000;
      }
    }
    const sender: SenderReport = await sending;
    const acked = [...sender.acked];
    progress(
      `crashes: sender done, ${acked.length}/${plan.events} acknowledged after ${crashes} kills; Chat calm, waiting for delivery`,
    );

    chat.setChaos(false);
    const drainStart = Date.now();
    const complete = await chat.waitForTokens(acked, plan.drainCapS * 1000);
    const drainS = (Date.now() - drainStart) / 1000;
    // The dead letters are in the detailed /health, on the loopback listener.
    const finalHealth = await health(serve.adminOrigin);
    const stop = await stopGently(serve.proc);
    serve = undefined;

    const missing = chat.ledger.missing(acked);
    const duplicates = chat.ledger.duplicates(acked);
    const onDisk = checkAcknowledged(
      eventStorePath(spec.configDir),
      events.filter((event) => sender.acked.has(event.token)).map((event) => event.eventId),
    );
    const dead =
      "body" in finalHealth && typeof finalHealth.body.dead === "number"
        ? finalHealth.body.dead
        : undefined;

    const allAcked = acked.length === plan.events && sender.refused.size === 0;
    if (missing.length)
      notes.push(`crashes: missing in Chat, e.g. ${missing.slice(0, 5).join(", ")}`);
    if (onDisk.missing)
      notes.push(`crashes: acknowledged but not in the store: ${onDisk.examples.join(", ")}`);
    if (!allAcked) {
      const refused = new Map<number, number>();
      for (const status of sender.refused.values()) countInto(refused, status);
      notes.push(
        `crashes: sender: ${acked.length} acknowledged, refused ${formatCounts(refused)}, cut off ${sender.cutOff}`,
      );
    }
    const { stats } = chat;
    return {
      rows: [
        {
          part: "crashes",
          check: "crashes: every event acknowledged (sender retries like Vast.ai)",
          figure: `${acked.length}/${plan.events} in ${sender.attempts} attempts; non-2xx ${formatCounts(sender.statuses)}; no answer ${formatCounts(sender.errors)}`,
          target: `${plan.events}/${plan.events}`,
          verdict: verdict(allAcked),
        },
        {
          part: "crashes",
          check: "crashes: acknowledged events in Chat after kill -9",
          figure: `${acked.length - missing.length}/${acked.length} in Chat, ${missing.length} missing; ${crashes} kills (${crashesDuringStart} during start-up); drained ${drainS.toFixed(1)} s after the last ack`,
          target: "0 missing",
          verdict: verdict(missing.length === 0 && complete && crashes > 0),
        },
        {
          part: "crashes",
          check: "crashes: duplicates",
          figure: `${chat.ledger.repeatPosts} repeated posts for ${crashes} kills (${duplicates.events} events twice or more, at most ${duplicates.maxCopies} copies; ${chat.ledger.repeatPostsWithKnownRequestId} reused a requestId Chat had accepted)`,
          target: "≤ 1 repeated post per kill",
          verdict: verdict(chat.ledger.repeatPosts <= crashes),
        },
        {
          part: "crashes",
          check: "crashes: acknowledged events in the store; no dead letters",
          figure: `${onDisk.acknowledged - onDisk.missing}/${onDisk.acknowledged} in events.db; dead letters ${dead ?? "unknown"}; final stop ${stop.signal ?? `exit ${stop.code}`}`,
          target: "all, 0 dead",
          verdict: verdict(onDisk.missing === 0 && dead === 0),
        },
        {
          part: "crashes",
          check: "crashes: Chat's failures",
          figure: `${stats.requests} posts: ${stats.accepted} accepted, 500×${stats.answered500}, 429×${stats.answered429}, hung ${stats.hung}, wrong key/token ${stats.wrongCredentials}`,
          target: "failures happened; 0 wrong key/token",
          verdict: verdict(
            stats.answered500 > 0 &&
              stats.answered429 > 0 &&
              stats.hung > 0 &&
              stats.wrongCredentials === 0,
          ),
        },
      ],
      notes: notes.map(redact),
    };
  } finally {
    if (serve) await killHard(serve.proc);
    await chat.close();
  }
}
