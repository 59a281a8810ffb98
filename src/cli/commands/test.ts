import { type AdapterRuntime, readRuntimeState } from "../../config/runtime-state.js";
import type { DeliveryState, EventStore, StoredEvent } from "../../delivery/event-store.js";
import { eventStoreExists } from "../../delivery/open-store.js";
import { type TestDelivery, VastApiError } from "../../vast/api-client.js";
import { isPlaceholderUrl, type Webhook } from "../../vast/api-types.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { CliError } from "../errors.js";
import { createOutput, type OutputStreams } from "../output.js";
import { resolveStoreLocation, withStore } from "../store-access.js";

/**
 * `test`: asks Vast.ai for its test event and, when an adapter runs here, follows it through the
 * adapter's store until Chat has it: the whole chain checked in one command. Vast.ai answers once
 * its delivery is over, so a failure there is about the adapter, and is reported as such.
 */
export interface TestOptions extends GlobalOptions {
  /** Seconds, checked where commander parses it. */
  wait?: number;
}

export interface TestContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

const POLL_MS = 100;

export async function test(options: TestOptions, context: TestContext): Promise<number> {
  const out = createOutput(context, options);
  const waitSeconds = options.wait ?? 30;
  const config = openConfig(options, context.env);
  const id = config.webhookId();
  const client = config.client();
  const webhook = await client.findWebhook(id);
  if (!webhook) {
    throw new CliError(`The webhook ${id} no longer exists on Vast.ai.`, {
      hint: "Run `vast-gchat init` to set up a new one.",
    });
  }
  if (isPlaceholderUrl(webhook.webhook_url)) {
    throw new CliError(
      `The webhook ${id} is waiting for serve: it points at a placeholder, so Vast.ai has nowhere to send.`,
      {
        hint: "Start `vast-gchat serve`: it opens the tunnel and points the webhook at it.",
      },
    );
  }

  const runtime = readRuntimeState(config.configDir);
  const askedAt = Date.now();
  let delivery: TestDelivery;
  try {
    delivery = await out.step(
      `Asking Vast.ai to send its test event to ${webhook.webhook_url}`,
      () => client.testWebhook(id),
    );
  } catch (error) {
    if (error instanceof VastApiError && error.reason === "adapter_unreachable") {
      throw new CliError(`${error.message} ${whereTheAdapterIs(webhook, runtime)}`, {
        hint: runtime
          ? "`vast-gchat status` shows the tunnel and where the webhook points; restarting `vast-gchat serve` opens a new tunnel."
          : "Start `vast-gchat serve`: it opens the tunnel and points the webhook at it.",
      });
    }
    if (error instanceof VastApiError && error.reason === "adapter_refused") {
      throw new CliError(error.message, error.hint === undefined ? {} : { hint: error.hint });
    }
    throw error;
  }

  const storePath = resolveStoreLocation(undefined, context.env, config.configDir, out.warn);
  if (!runtime || !eventStoreExists(storePath)) {
    out.warn("No adapter is running here, so whether the event reached Chat cannot be checked.");
    out.result({ ok: true, requested: true, adapter_running: false });
    out.line("Vast.ai accepted the test request. Start `vast-gchat serve` to follow it into Chat.");
    return 0;
  }

  // A busy or broken store is a sentence for the user (withStore), never "a bug".
  const event = await withStore(storePath, (store) =>
    out.step(
      `Waiting up to ${waitSeconds} s for the event to reach Google Chat`,
      () => followTestEvent(store, delivery.eventId, askedAt, waitSeconds * 1000),
      (found) =>
        found && arrived(found)
          ? "The event reached Google Chat"
          : { failed: "The event has not reached Google Chat" },
    ),
  );
  const first = event && arrived(event);
  if (event && first?.deliveredAt != null) {
    const seconds = (first.deliveredAt - askedAt) / 1000;
    out.result({
      ok: true,
      delivered: true,
      event_id: event.eventId,
      route: first.route,
      seconds,
    });
    out.line(
      `Vast.ai -> adapter -> Google Chat in ${seconds.toFixed(1)} s${event.deliveries.length > 1 ? ` (the route ${first.route} first)` : ""}.`,
    );
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
}

/** The first of the event's deliveries to reach its space, if one has. */
function arrived(event: StoredEvent): DeliveryState | undefined {
  return event.deliveries
    .filter((delivery) => delivery.state === "delivered" && delivery.deliveredAt !== null)
    .sort((a, b) => (a.deliveredAt ?? 0) - (b.deliveredAt ?? 0))[0];
}

/**
 * Waits until the adapter has delivered the test event to any route it goes to, or given it up for
 * every one, or time is up. Vast.ai names the event it sent (`event_id`); an answer without one
 * (the merged spec's `{msg}` form) is matched as the newest webhook_test received since the request.
 */
async function followTestEvent(
  store: EventStore,
  eventId: string | undefined,
  since: number,
  timeoutMs: number,
): Promise<StoredEvent | undefined> {
  const find = () =>
    eventId === undefined ? store.latestOfType("webhook_test", since - 1000) : store.get(eventId);
  // The adapter runs in another process: its store is the only thing to watch, so poll it.
  const deadline = Date.now() + timeoutMs;
  const settled = (event: StoredEvent | undefined) =>
    event !== undefined && (arrived(event) !== undefined || event.state === "dead");
  let event = await find();
  while (!settled(event) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    event = await find();
  }
  return event;
}

/** What this machine knows about the adapter Vast.ai could not reach, in one sentence. */
function whereTheAdapterIs(webhook: Webhook, runtime: AdapterRuntime | undefined): string {
  if (!runtime) return "No adapter is running here.";
  const expected = runtime.publicUrl
    ? `${runtime.publicUrl.replace(/\/+$/, "")}${runtime.path}`
    : undefined;
  const probe = runtime.tunnel?.lastProbe;
  const tunnel = probe
    ? probe.ok
      ? " and its tunnel answered its last probe"
      : ` but its tunnel failed its last probe (${probe.error ?? "no answer"})`
    : "";
  if (!expected) return `The adapter here (pid ${runtime.pid}) has no public URL.`;
  if (expected !== webhook.webhook_url) {
    return `The adapter here (pid ${runtime.pid}) is at ${expected}, but the webhook points at ${webhook.webhook_url}.`;
  }
  return `The adapter here (pid ${runtime.pid}) runs at that URL${tunnel}.`;
}
