import { existsSync } from "node:fs";
import { eventStorePath } from "../../config/paths.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import { EventStore, type StoredEvent } from "../../delivery/store.js";
import { VastApiError } from "../../vast/api-client.js";
import { PLACEHOLDER_WEBHOOK_URL } from "../../vast/api-types.js";
import { openConfig } from "../config-context.js";
import { CliError, usageError } from "../errors.js";
import { createOutput, type OutputStreams } from "../output.js";
import type { GlobalOptions } from "../program.js";

/**
 * `test`: asks Vast.ai for its test event and, when an adapter runs here, follows it through the
 * adapter's store until Chat has it: the whole chain checked in one command.
 */
export interface TestOptions extends GlobalOptions {
  wait?: string;
}

export interface TestContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

const POLL_MS = 100;

export async function test(options: TestOptions, context: TestContext): Promise<number> {
  const out = createOutput(context, options);
  const waitSeconds = Number(options.wait ?? 30);
  if (!Number.isFinite(waitSeconds) || waitSeconds <= 0) {
    throw usageError(`--wait must be a number of seconds above 0, not "${options.wait}".`);
  }
  const config = openConfig(options, context.env);
  const id = config.webhookId();
  const client = config.client();
  const webhook = await client.findWebhook(id);
  if (!webhook) {
    throw new CliError(`The webhook ${id} no longer exists on Vast.ai.`, {
      hint: "Run `vast-gchat init` to set up a new one.",
    });
  }
  if (webhook.webhook_url === PLACEHOLDER_WEBHOOK_URL) {
    throw new CliError(
      `The webhook ${id} still points to the placeholder URL, so Vast.ai has nowhere to send.`,
      {
        hint: "Start `vast-gchat serve`: it opens the tunnel and points the webhook at it.",
      },
    );
  }

  const runtime = readRuntimeState(config.configDir);
  const askedAt = Date.now();
  try {
    await out.step(`Asking Vast.ai to send its test event to ${webhook.webhook_url}`, () =>
      client.testWebhook(id),
    );
  } catch (error) {
    if (error instanceof VastApiError && error.kind === "invalid") {
      throw new CliError(
        `Vast.ai could not deliver the test event to ${webhook.webhook_url}. ${error.message}`,
        {
          hint: "Is `vast-gchat serve` running, and its tunnel up? `vast-gchat status` shows both.",
        },
      );
    }
    throw error;
  }

  const storePath = eventStorePath(config.configDir);
  if (!runtime || !existsSync(storePath)) {
    out.warn("No adapter is running here, so whether the event reached Chat cannot be checked.");
    out.result({ ok: true, requested: true, adapter_running: false });
    out.line("Vast.ai accepted the test request. Start `vast-gchat serve` to follow it into Chat.");
    return 0;
  }

  const store = EventStore.open(storePath);
  try {
    const event = await out.step(
      `Waiting up to ${waitSeconds} s for the event to reach Google Chat`,
      () => followTestEvent(store, askedAt, waitSeconds * 1000),
      (found) =>
        found?.state === "delivered"
          ? "The event reached Google Chat"
          : { failed: "The event has not reached Google Chat" },
    );
    if (event?.state === "delivered" && event.deliveredAt !== null) {
      const seconds = (event.deliveredAt - askedAt) / 1000;
      out.result({ ok: true, delivered: true, event_id: event.eventId, seconds });
      out.line(`Vast.ai -> adapter -> Google Chat in ${seconds.toFixed(1)} s.`);
      return 0;
    }
    out.result({
      ok: false,
      received: event !== undefined,
      delivered: false,
      reason: event?.lastError ?? null,
    });
    if (event) {
      const why = event.lastError ? `: ${event.lastError}` : "";
      const hint =
        event.state === "dead"
          ? "Chat refused it for good: check the Chat URL (`vast-gchat status`)."
          : "Check the Chat URL (`vast-gchat status`); the adapter keeps retrying.";
      throw new CliError(
        `The adapter received the test event but Google Chat has not taken it${why}.`,
        {
          hint,
        },
      );
    }
    throw new CliError(`The test event did not reach the adapter within ${waitSeconds} s.`, {
      hint: `Vast.ai sends to ${webhook.webhook_url}; check that the tunnel forwards to ${runtime.origin}${runtime.path} (\`vast-gchat status\`).`,
    });
  } finally {
    store.close();
  }
}

/** Waits until the adapter has delivered a webhook_test received after `since`, or time is up. */
async function followTestEvent(
  store: EventStore,
  since: number,
  timeoutMs: number,
): Promise<StoredEvent | undefined> {
  // The adapter runs in another process: its store is the only thing to watch, so poll it.
  const deadline = Date.now() + timeoutMs;
  let event = store.latestOfType("webhook_test", since - 1000);
  while (event?.state !== "delivered" && event?.state !== "dead" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    event = store.latestOfType("webhook_test", since - 1000);
  }
  return event;
}
