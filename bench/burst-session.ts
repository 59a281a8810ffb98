import { mkdirSync } from "node:fs";
import { FakeChat } from "../test/support/fake-chat.js";
import { type BurstResult, makeBurst, runBurst } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { Progress } from "./sessions.js";
import { newSecret, type OursOptions, stopTarget, type Target, tailOf } from "./targets.js";

/**
 * One burst run: a fresh adapter and a fresh fake Chat limited to burstChatRate messages a second
 * in its one space, so Chat's limit starts fresh: nothing was posted before the burst.
 */

/** The same seed for every run: the senders draw the same jitter sequence. */
const BURST_SEED = 0x5eed_b0b5;

export interface BurstSessionOptions {
  label: string;
  workdir: string;
  start: (options: OursOptions) => Promise<Target>;
  /** Ours queues and delivers after its 2xx; the tutorial posts inside the request. */
  deliversAfterAck: boolean;
  capS: number;
}

export async function burstSession(
  config: BenchConfig,
  options: BurstSessionOptions,
  progress: Progress,
): Promise<BurstResult> {
  const { label, capS } = options;
  mkdirSync(options.workdir, { recursive: true });
  const secret = newSecret();
  const chat = await FakeChat.start();
  let target: Target | undefined;
  try {
    chat.behaviour = { kind: "ok", delayMs: config.burstChatDelayMs };
    chat.ratePerSecond = config.burstChatRate;
    target = await options.start({ workdir: options.workdir, chatUrl: chat.webhookUrl(), secret });
    const events = makeBurst(config.burstEvents);
    progress(
      `  ${label}: burst of ${events.length} events, ${config.burstConcurrency} in flight, Chat at ${config.burstChatRate}/s, cap ${capS} s`,
    );
    const result = await runBurst({
      chat,
      target: { origin: target.origin, path: target.path, secret },
      events,
      concurrency: config.burstConcurrency,
      policy: {
        initialDelayMs: config.burstInitialDelayMs,
        maxDelayMs: config.burstMaxDelayMs,
        maxAttempts: config.burstMaxAttempts,
        timeoutMs: config.requestTimeoutMs,
      },
      seed: BURST_SEED,
      capS,
      deliversAfterAck: options.deliversAfterAck,
      progress,
    });
    progress(
      `  ${label}: ${result.visible} of ${result.events} visible` +
        (result.allVisibleS === undefined
          ? ` when the run ended after ${result.endedS.toFixed(1)} s`
          : ` after ${result.allVisibleS.toFixed(1)} s`) +
        `; ${result.posts} posts, ${result.throttled} 429s, ${result.accepted} messages;` +
        ` sender: ${result.sender.attempts} deliveries, ${result.sender.gaveUp} given up`,
    );
    return result;
  } catch (error) {
    if (target) progress(`${label} log tail:\n${tailOf(target)}`);
    throw error;
  } finally {
    if (target) await stopTarget(target);
    await chat.close();
  }
}
