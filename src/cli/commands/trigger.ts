import { resolveConfigDir } from "../../config/paths.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import { checkServiceUrl } from "../../service-url.js";
import { KNOWN_EVENT_TYPES } from "../../vast/event-types.js";
import { sampleEvent } from "../../vast/sample-events.js";
import { type SentEvent, sendSignedEvent } from "../../vast/send-event.js";
import { openConfig } from "../config-context.js";
import type { GlobalOptions } from "../context.js";
import { CliError, usageError } from "../errors.js";
import { withSecretFiles } from "../secret-files.js";
import { DEFAULT_PATH, parsePort, resolveSecrets } from "../serve-options.js";

export interface TriggerOptions extends GlobalOptions {
  url?: string;
  subject?: string;
  message?: string;
}

export interface TriggerContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const TYPE_PATTERN = /^((client|host):)?[a-z0-9_]{1,64}$/;

/** --url, else PORT, else the adapter `serve` says is running here, else the default port. */
function targetUrl(flag: string | undefined, env: NodeJS.ProcessEnv, configDir: string): URL {
  const running = flag || env.PORT ? undefined : readRuntimeState(configDir);
  const raw =
    flag ??
    (running
      ? `${running.origin}${running.path}`
      : `http://127.0.0.1:${parsePort(env.PORT, "PORT")}${DEFAULT_PATH}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`--url is not a URL: "${raw}".`);
  }
  const problem = checkServiceUrl(url);
  if (problem) throw usageError(`--url is not usable: ${problem}.`);
  return url;
}

/** VAST_WEBHOOK_SECRET, else the secret `init` stored (also what `route test` signs with). */
export function signingSecret(options: GlobalOptions, env: NodeJS.ProcessEnv): string {
  if (env.VAST_WEBHOOK_SECRET) return resolveSecrets(env)[0];
  const stored = openConfig(options, env).secrets.get("webhookSecret");
  return resolveSecrets(env, { webhookSecret: stored })[0];
}

/**
 * Signs a realistic sample event of one type, exactly as Vast.ai would, and POSTs it to the
 * running adapter, so a user can see any type in Chat without waiting for Vast.ai to send one.
 */
export async function trigger(
  type: string,
  options: TriggerOptions,
  context: TriggerContext,
): Promise<number> {
  if (!TYPE_PATTERN.test(type)) {
    throw usageError(
      `"${type}" is not an event type.`,
      `Use a type such as low_credit or client:instance_stopped; known: ${[...KNOWN_EVENT_TYPES.keys()].join(", ")}.`,
    );
  }
  const url = targetUrl(options.url, context.env, resolveConfigDir(options.configDir, context.env));
  const secret = signingSecret(options, withSecretFiles(context.env));
  const event = sampleEvent(type, { subject: options.subject, message: options.message });

  let sent: SentEvent;
  try {
    sent = await sendSignedEvent(url, secret, event);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new CliError(
      `Could not reach the adapter at ${url.origin} (${code ?? "network error"}).`,
      {
        hint: "Start it with `vast-gchat serve`, or pass --url with its address.",
      },
    );
  }

  const { status, answer } = sent;
  const ok = status >= 200 && status < 300;
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ ok, status, url: url.href, event, answer })}\n`);
  } else {
    const line = `${event.notif_type} event ${event.event_id} -> ${url.href}: ${status} ${JSON.stringify(answer)}`;
    (ok ? context.stdout : context.stderr).write(`${ok ? "Sent" : "Refused"}: ${line}\n`);
    if (!KNOWN_EVENT_TYPES.has(event.notif_type)) {
      context.stderr.write(
        `Note: ${event.notif_type} is not a type vast-gchat knows; it was sent anyway.\n`,
      );
    }
  }
  return ok ? 0 : 1;
}
