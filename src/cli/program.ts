import { Command, Option } from "commander";
import { DEFAULT_HOST, DEFAULT_PATH } from "./serve-options.js";

/**
 * The commander program. Built by a function so tests can drive it; every command's code is
 * imported only when that command runs, which keeps `--help` fast.
 */
export interface GlobalOptions {
  configDir?: string;
  json?: boolean;
  color?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export interface ProgramContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  signals: NodeJS.EventEmitter;
  /** Receives each command's exit code. */
  setExitCode(code: number): void;
}

export const VERSION = "0.1.0";

export function createProgram(context: ProgramContext): Command {
  const program = new Command("vast-gchat")
    .description(
      "Vast.ai notifications in a Google Chat space: verified, kept safely, delivered once.",
    )
    .version(VERSION, "-V, --version")
    .option(
      "--config-dir <dir>",
      "where configuration, secrets and the event store live (VAST_GCHAT_CONFIG_DIR)",
    )
    .option("--json", "machine-readable output on stdout")
    .option("--no-color", "no colour (also NO_COLOR)")
    .option("-q, --quiet", "only warnings and errors")
    .option("-v, --verbose", "more detail")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (text) => context.stdout.write(text),
      writeErr: (text) => context.stderr.write(text),
    })
    .exitOverride();

  program
    .command("serve")
    .summary("run the adapter: verify, keep and deliver notifications to Google Chat")
    .description(
      "Run the adapter: receive Vast.ai notifications, verify their signature, keep them on disk and deliver them to Google Chat.\n\nReads VAST_WEBHOOK_SECRET (and VAST_WEBHOOK_SECRET_PREVIOUS during a rotation), GOOGLE_CHAT_URL and PORT.",
    )
    .option("--port <n>", "port to listen on (PORT, default 8787)")
    .option("--host <addr>", "address to listen on", DEFAULT_HOST)
    .option("--path <p>", "the webhook path", DEFAULT_PATH)
    .addOption(
      new Option("--format <format>", "how messages look in Chat")
        .choices(["card", "text"])
        .default("card"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  GOOGLE_CHAT_URL=... VAST_WEBHOOK_SECRET=... vast-gchat serve\n  vast-gchat serve --port 9000 --format text",
    )
    .action(async (_options, command: Command) => {
      const { serve } = await import("./commands/serve.js");
      context.setExitCode(await serve(command.optsWithGlobals(), context));
    });

  program
    .command("trigger")
    .summary("send a signed sample notification of a given type to the running adapter")
    .description(
      "Sign a realistic sample notification of TYPE with VAST_WEBHOOK_SECRET and POST it to the running adapter, to see how it looks in Chat.",
    )
    .argument("<type>", "event type, e.g. low_credit or client:instance_stopped")
    .option("--url <url>", "the adapter's webhook URL (default http://127.0.0.1:$PORT/)")
    .option("--subject <text>", "the notification's subject")
    .option("--message <text>", "the notification's message")
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat trigger low_credit\n  vast-gchat trigger instance_stopped --message 'Instance 42 stopped'",
    )
    .action(async (type: string, _options, command: Command) => {
      const { trigger } = await import("./commands/trigger.js");
      context.setExitCode(await trigger(type, command.optsWithGlobals(), context));
    });

  program
    .command("demo")
    .summary("the whole chain on this machine, with no accounts, into a local Chat preview")
    .description(
      "Run the real adapter (receiver, store, worker) against a local Chat preview: one signed sample of every known type, a duplicate and a forged delivery. Needs no account and writes only to a temporary directory.",
    )
    .addHelpText("after", "\nExamples:\n  vast-gchat demo\n  vast-gchat demo --json")
    .action(async (_options, command: Command) => {
      const { demo } = await import("./commands/demo.js");
      context.setExitCode(await demo(command.optsWithGlobals(), context));
    });

  // --no-color must win over chalk's own detection; NO_COLOR and FORCE_COLOR chalk reads itself.
  program.hook("preAction", async (_program, command) => {
    if (command.optsWithGlobals<GlobalOptions>().color === false) {
      const { default: chalk } = await import("chalk");
      chalk.level = 0;
    }
  });

  return program;
}
