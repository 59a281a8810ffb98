import { startAdapter } from "../../adapter/adapter.js";
import type { MessageFormat } from "../../chat/render.js";
import { eventStorePath, resolveConfigDir } from "../../config/paths.js";
import { StoreUnavailableError } from "../../delivery/store.js";
import { CliError, ExitCode } from "../errors.js";
import { createLogger } from "../logger.js";
import type { GlobalOptions } from "../program.js";
import {
  DEFAULT_HOST,
  parsePort,
  parseWebhookPath,
  resolveChatUrl,
  resolveSecrets,
} from "../serve-options.js";

export interface ServeOptions extends GlobalOptions {
  port?: string;
  host?: string;
  path?: string;
  format?: string;
}

export interface ServeContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Where SIGINT and SIGTERM arrive (the process, or a test's emitter). */
  signals: NodeJS.EventEmitter;
}

export async function serve(options: ServeOptions, context: ServeContext): Promise<number> {
  const { env } = context;
  const port = parsePort(options.port ?? env.PORT, options.port ? "--port" : "PORT");
  const path = parseWebhookPath(options.path);
  // commander has already checked --format against its choices.
  const format = (options.format ?? "card") as MessageFormat;
  const secrets = resolveSecrets(env);
  const chat = resolveChatUrl(env);
  const storePath = eventStorePath(resolveConfigDir(options.configDir, env));

  const log = createLogger({
    pretty: Boolean(context.stdout.isTTY),
    level: options.quiet ? "warn" : options.verbose ? "debug" : "info",
    out: context.stdout,
  });
  if (chat.warning) log.warn({}, chat.warning);

  let adapter: Awaited<ReturnType<typeof startAdapter>>;
  try {
    adapter = await startAdapter({
      host: options.host ?? DEFAULT_HOST,
      port,
      path,
      secrets: () => secrets,
      chatUrl: chat.url,
      format,
      storePath,
      log,
    });
  } catch (error) {
    throw startupError(error, port, storePath);
  }

  log.info(
    { url: `${adapter.origin}${path}`, chat: chat.label, format, store: storePath },
    "ready",
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second Ctrl+C: the user does not want to wait for the post in flight.
        resolve(ExitCode.Interrupted);
        return;
      }
      stopping = true;
      log.info({ signal }, "stopping");
      adapter.close().then(() => {
        log.info({}, "stopped");
        resolve(ExitCode.Ok);
      });
    };
    context.signals.on("SIGINT", () => stop("SIGINT"));
    context.signals.on("SIGTERM", () => stop("SIGTERM"));
  });
}

function startupError(error: unknown, port: number, storePath: string): CliError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    return new CliError(`Port ${port} is already in use (another adapter running?).`, {
      hint: "Stop the other process or choose another port with --port.",
      exitCode: ExitCode.Usage,
    });
  }
  if (code === "EACCES" || code === "EADDRNOTAVAIL") {
    return new CliError(`Cannot listen on port ${port} (${code}).`, {
      hint: "Choose another --port or --host.",
      exitCode: ExitCode.Usage,
    });
  }
  if (error instanceof StoreUnavailableError) {
    return new CliError(`Cannot open the event store ${storePath}: ${error.message}.`, {
      hint: "Check that the config directory is writable, or choose another with --config-dir.",
    });
  }
  return new CliError(`The adapter could not start: ${(error as Error).message}`, { cause: error });
}
