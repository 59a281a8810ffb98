import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import chalk from "chalk";
import { type RunningAdapter, startAdapter } from "../../adapter/adapter.js";
import { type ChatPreview, headline, startChatPreview } from "../../chat/preview-server.js";
import { KNOWN_EVENT_TYPES } from "../../vast/event-types.js";
import { sampleEvent } from "../../vast/sample-events.js";
import { sendSignedEvent } from "../../vast/send-event.js";
import { CliError } from "../errors.js";
import type { GlobalOptions } from "../program.js";

/**
 * The whole data plane on this machine with no accounts: a signed sample of every known type goes
 * through the real receiver, store and worker into a local Chat preview; then a duplicate and a
 * badly signed delivery show what is refused. Everything lives in a temporary directory.
 */
export interface DemoContext {
  stdout: NodeJS.WritableStream;
}

const DELIVERY_TIMEOUT_MS = 30_000;

export async function demo(options: GlobalOptions, context: DemoContext): Promise<number> {
  const print = (line: string) => {
    if (!options.json) context.stdout.write(`${line}\n`);
  };
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "vast-gchat-demo-"));
  const secret = randomBytes(24).toString("hex");
  let preview: ChatPreview | undefined;
  let adapter: RunningAdapter | undefined;
  try {
    preview = await startChatPreview();
    adapter = await startAdapter({
      host: "127.0.0.1",
      port: 0,
      path: "/",
      secrets: () => [secret],
      chatUrl: preview.webhookUrl,
      format: "card",
      storePath: join(dir, "events.db"),
      // The preview is not Chat: no pacing, and every card on its own to look at.
      rate: 100,
      digest: false,
    });
    const url = `${adapter.origin}/`;
    print(
      chalk.bold(`vast-gchat demo: adapter on ${url}, Chat preview on ${preview.webhookUrl.host}`),
    );
    print(
      chalk.dim(`(a temporary directory, ${dir}, holds the event store; nothing else is written)`),
    );

    const delivered = new Set<string>();
    adapter.events.on("delivered", (event, latencyMs) => {
      delivered.add(event.eventId);
      print(
        `  ${chalk.green("delivered")} ${(event.notifType ?? "").padEnd(22)} in ${latencyMs} ms`,
      );
    });
    preview.events.on("message", (entry) =>
      print(`  ${chalk.cyan("in Chat")}   ${headline(entry.message)}`),
    );

    const sent: string[] = [];
    for (const slug of KNOWN_EVENT_TYPES.keys()) {
      const event = sampleEvent(slug);
      const { status } = await sendSignedEvent(url, secret, event);
      if (status !== 200)
        throw new CliError(`The adapter refused a valid ${slug} event (${status}).`);
      sent.push(event.event_id);
      print(`${chalk.bold("received")}    ${slug.padEnd(22)} 200, kept on disk`);
    }

    const first = sampleEvent("low_credit");
    await sendSignedEvent(url, secret, first);
    sent.push(first.event_id);
    const duplicate = await sendSignedEvent(url, secret, first, { attempt: 2 });
    print(
      `${chalk.yellow("duplicate")}   low_credit sent again by a retry: ${duplicate.status} ${JSON.stringify(duplicate.answer)}, not posted twice`,
    );
    const forged = await sendSignedEvent(url, "not-the-secret", sampleEvent("billing_failed"));
    print(
      `${chalk.red("rejected")}    billing_failed signed with the wrong secret: ${forged.status} ${JSON.stringify(forged.answer)}`,
    );

    await waitUntil(() => sent.every((id) => delivered.has(id)), adapter, DELIVERY_TIMEOUT_MS);
    const summary = {
      ok: true,
      sent: sent.length,
      delivered: delivered.size,
      duplicate_refused: (duplicate.answer as { duplicate?: boolean }).duplicate === true,
      bad_signature_status: forged.status,
      chat_messages: preview.messages.length,
      seconds: (Date.now() - started) / 1000,
    };
    if (options.json) context.stdout.write(`${JSON.stringify(summary)}\n`);
    print(
      chalk.bold.green(
        `\nDone: ${summary.delivered} of ${summary.sent} events delivered to the Chat preview in ${summary.seconds.toFixed(1)} s; the duplicate was posted once; the forged delivery was refused.`,
      ),
    );
    print(
      "Next: `vast-gchat serve` with GOOGLE_CHAT_URL and VAST_WEBHOOK_SECRET for your real space.",
    );
    return 0;
  } finally {
    await adapter?.close(1000);
    await preview?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function waitUntil(done: () => boolean, adapter: RunningAdapter, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (done()) return resolve();
    const timer = setTimeout(() => {
      adapter.events.off("delivered", check);
      reject(
        new CliError(`Not every event reached the Chat preview within ${timeoutMs / 1000} s.`),
      );
    }, timeoutMs);
    function check() {
      if (!done()) return;
      clearTimeout(timer);
      adapter.events.off("delivered", check);
      resolve();
    }
    adapter.events.on("delivered", check);
  });
}
