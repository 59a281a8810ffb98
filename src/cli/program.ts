import { TUNNEL_CHOICES } from "../config/tunnel-choices.js";
import { VERSION } from "../version.js";
import { Command, Option } from "./commander.js";
import type { EventsAction, EventsOptions } from "./commands/events.js";
import type { RouteAction, RouteOptions } from "./commands/route.js";
import type { GlobalOptions, ProgramContext } from "./context.js";
import { durationArgument } from "./duration-argument.js";
import {
  countArgument,
  mentionArgument,
  portArgument,
  positiveNumberArgument,
  routeNameArgument,
} from "./option-parsers.js";
import { DEFAULT_HOST, DEFAULT_PATH } from "./serve-defaults.js";

/**
 * The chain watch's periods (issue 18): at 1 s, one call a second to one route, within the client's
 * own pacing (0.5 s per route) and Vast.ai's `x-rateLimit: 2.0` read as two a second; meant for
 * tests, the defaults are minutes and hours (docs/watching.md has the call budget). At most a day.
 */
const WATCH_MIN_MS = 1000;
const WATCH_MAX_MS = 24 * 60 * 60_000;

/**
 * The commander program. Built by a function so tests can drive it; every command's code is
 * imported only when that command runs, which keeps `--help` fast.
 */
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
      // The help wraps to the terminal it is written to (commander would ask process.stdout), and
      // to commander's own 80 columns anywhere else.
      getOutHelpWidth: () => (context.stdout.isTTY && context.stdout.columns) || 80,
      getErrHelpWidth: () => (context.stderr.isTTY && context.stderr.columns) || 80,
    })
    .exitOverride();

  program
    .command("init")
    .summary(
      "set-up wizard: API key, Google Chat URL, event types, tunnel; creates the Vast.ai webhook",
    )
    .description(
      "Set up vast-gchat: check the Vast.ai API key, the Google Chat URL, choose the notifications and the tunnel, and create the Vast.ai webhook. Secrets go to the OS keychain, or a file only you can read. Every question has a flag, so it can run unattended.",
    )
    .option("--api-key-stdin", "read the Vast.ai API key from standard input (or set VAST_API_KEY)")
    .option(
      "--chat-url-stdin",
      "read the Google Chat webhook URL from standard input (after the key with --api-key-stdin; or set GOOGLE_CHAT_URL)",
    )
    .option(
      "--chat-url <url>",
      "the Chat URL on the command line: its token shows in ps and shell history, prefer --chat-url-stdin",
    )
    .option(
      "--events <types>",
      "event types, comma-separated keys or slugs (default: the tutorial's six)",
    )
    .option("--name <name>", "the webhook's name")
    .addOption(
      new Option("--tunnel <provider>", "how Vast.ai reaches this machine").choices(TUNNEL_CHOICES),
    )
    .option("--tunnel-command <cmd>", "a program that prints the public URL; {port} is replaced")
    .option("--public-url <url>", "your own stable https address for the adapter (no tunnel)")
    .option("--port <n>", "the adapter's port (default 8787)", portArgument)
    .addOption(
      new Option("--existing <action>", "when a webhook is already set up").choices([
        "keep",
        "update",
        "replace",
      ]),
    )
    .option("--no-chat-check", "do not post a check message to the Chat space")
    .option("-y, --yes", "no confirmations; defaults for what is not given")
    .addHelpText(
      "after",
      '\nExamples:\n  npx vast-gchat init\n  printf \'%s\\n%s\\n\' "$VAST_API_KEY" "$GOOGLE_CHAT_URL" | vast-gchat init --api-key-stdin --chat-url-stdin --tunnel cloudflared --yes\n  (printf is built into the shell: neither secret reaches the process list)',
    )
    .action(async (_options, command) => {
      const { init } = await import("./commands/init.js");
      context.setExitCode(await init(command.optsWithGlobals(), context));
    });

  program
    .command("serve")
    .summary("run the adapter: verify, keep and deliver notifications to Google Chat")
    .description(
      "Run the adapter: receive Vast.ai notifications, verify their signature, keep them on disk and deliver them to Google Chat.\n\nReads VAST_WEBHOOK_SECRET (and VAST_WEBHOOK_SECRET_PREVIOUS during a rotation), GOOGLE_CHAT_URL and PORT; VAST_WEBHOOK_SECRET_FILE and GOOGLE_CHAT_URL_FILE name files holding those secrets (containers). With --store postgresql://... (VAST_GCHAT_STORE), several replicas share one store behind your own URL (--public-url); the elected leader keeps the webhook pointed.",
    )
    .option("--port <n>", "port to listen on (PORT, default 8787)", portArgument)
    .option(
      "--admin-port <n>",
      "loopback-only port for /metrics and the detailed /health (default: any free port)",
      portArgument,
    )
    .option("--host <addr>", "address to listen on", DEFAULT_HOST)
    .option("--path <p>", `the webhook path (default: "${DEFAULT_PATH}")`)
    .addOption(
      new Option(
        "--tunnel <provider>",
        "open a tunnel (default: what init chose, else none)",
      ).choices(TUNNEL_CHOICES),
    )
    .option("--tunnel-command <cmd>", "a program that prints the public URL; {port} is replaced")
    .option("--tunnel-domain <domain>", "ngrok: your reserved domain, so the URL survives restarts")
    .option("--public-url <url>", "your own stable https address for this adapter (no tunnel)")
    .option("--no-update-webhook", "do not point the Vast.ai webhook at the public URL")
    .option(
      "--store <url|path>",
      "the event store: a postgresql:// URL (shared by replicas) or a SQLite file (VAST_GCHAT_STORE; default events.db in the config dir)",
    )
    .option(
      "--probe-interval <seconds>",
      "how often to check the tunnel end to end",
      positiveNumberArgument("seconds"),
      30,
    )
    .addOption(
      new Option(
        "--check-every <duration>",
        "how often to check that the Vast.ai webhook exists, points here and has its types (0: never)",
      )
        .argParser(durationArgument(WATCH_MIN_MS, WATCH_MAX_MS))
        .default(5 * 60_000, "5m"),
    )
    .addOption(
      new Option(
        "--self-test-every <duration>",
        "how often to have Vast.ai send its test event and expect it back (default: 6h, off with a PostgreSQL store, whose replicas share the URL; 0: never)",
      ).argParser(durationArgument(WATCH_MIN_MS, WATCH_MAX_MS)),
    )
    .option(
      "--rate <n>",
      "messages a second to the Chat space (Chat allows about 1)",
      positiveNumberArgument("messages a second"),
      1,
    )
    .option(
      "--max-age <hours>",
      "give an undelivered event up (to the dead letters) after this long",
      positiveNumberArgument("hours"),
      72,
    )
    .addOption(
      new Option("--format <format>", "how messages look in Chat")
        .choices(["card", "text"])
        .default("card"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat serve                      # after init: tunnel, webhook, Chat\n  vast-gchat serve --tunnel cloudflared\n  vast-gchat serve --public-url https://hooks.example.org\n  vast-gchat serve --port 9000          # with GOOGLE_CHAT_URL and VAST_WEBHOOK_SECRET exported",
    )
    .action(async (_options, command) => {
      // Before serve's modules load: V8 grows its young generation while they load, too.
      const { keepYoungGenerationSmall } = await import("./young-generation.js");
      keepYoungGenerationSmall(process.execArgv, process.env.NODE_OPTIONS);
      const { serve } = await import("./commands/serve.js");
      context.setExitCode(await serve(command.optsWithGlobals(), context));
    });

  program
    .command("trigger")
    .summary("send a signed sample notification of a given type to the running adapter")
    .description(
      "Sign a realistic sample notification of TYPE with the webhook's secret (VAST_WEBHOOK_SECRET, else the stored one) and POST it to the adapter running here, to see how it looks in Chat.",
    )
    .argument("<type>", "event type, e.g. low_credit or client:instance_stopped")
    .option(
      "--url <url>",
      "the adapter's webhook URL (default: the running serve's, else http://127.0.0.1:$PORT/)",
    )
    .option("--subject <text>", "the notification's subject")
    .option("--message <text>", "the notification's message")
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat trigger low_credit\n  vast-gchat trigger instance_stopped --message 'Instance 42 stopped'",
    )
    .action(async (type, _options, command) => {
      const { trigger } = await import("./commands/trigger.js");
      context.setExitCode(await trigger(type, command.optsWithGlobals(), context));
    });

  program
    .command("test")
    .summary("ask Vast.ai to send its test event and confirm it reached Google Chat")
    .description(
      "Ask Vast.ai to send its test event to the webhook; with an adapter running here, follow it until Google Chat has it and say how long the round trip took.",
    )
    .option(
      "--wait <seconds>",
      "how long to wait for the event to reach Chat",
      positiveNumberArgument("seconds"),
      30,
    )
    .addHelpText("after", "\nExamples:\n  vast-gchat test\n  vast-gchat test --wait 60 --json")
    .action(async (_options, command) => {
      const { test } = await import("./commands/test.js");
      context.setExitCode(await test(command.optsWithGlobals(), context));
    });

  program
    .command("types")
    .summary("list the notification types the account can subscribe to")
    .description(
      "List the notification types the account can subscribe to, by group, with their default channels; ✓ marks the ones the webhook subscribes to.",
    )
    .addHelpText("after", "\nExamples:\n  vast-gchat types\n  vast-gchat types --json")
    .action(async (_options, command) => {
      const { types } = await import("./commands/types.js");
      context.setExitCode(await types(command.optsWithGlobals(), context));
    });

  program
    .command("cleanup")
    .summary("delete the Vast.ai webhook and forget the stored secrets")
    .description(
      "Delete the Vast.ai webhook (one already gone is fine) and remove the stored secrets and settings. --all also offers the other webhooks vast-gchat made on the account.",
    )
    .option("--all", "also delete other webhooks whose name marks them as vast-gchat's")
    .option("-y, --yes", "no confirmations")
    .addHelpText("after", "\nExamples:\n  vast-gchat cleanup\n  vast-gchat cleanup --all --yes")
    .action(async (_options, command) => {
      const { cleanup } = await import("./commands/cleanup.js");
      context.setExitCode(await cleanup(command.optsWithGlobals(), context));
    });

  program
    .command("status")
    .summary(
      "configuration (secrets masked), the webhook as Vast.ai has it, the adapter, the queue",
    )
    .description(
      "Show the configuration with secrets masked, where secrets are kept, the webhook as Vast.ai has it, and the running adapter's health and queue.",
    )
    .option(
      "--store <url|path>",
      "the event store to describe (VAST_GCHAT_STORE; default events.db in the config dir)",
    )
    .addHelpText("after", "\nExamples:\n  vast-gchat status\n  vast-gchat status --json")
    .action(async (_options, command) => {
      const { status } = await import("./commands/status.js");
      context.setExitCode(await status(command.optsWithGlobals(), context));
    });

  const events = program
    .command("events")
    .summary("received events and their delivery state; replay one, retry the dead ones")
    .description(
      "List the events the adapter received, newest first, with the state of their delivery to each route; show one with its payload and every delivery attempt; queue one again, or every dead letter. Reads the event store directly, so it works whether `serve` runs or not.",
    )
    .option(
      "--store <url|path>",
      "the event store: a postgresql:// URL (shared by replicas) or a SQLite file (VAST_GCHAT_STORE; default events.db in the config dir)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat events\n  vast-gchat events list --state dead --json\n  vast-gchat events show 5f3c9a0e...\n  vast-gchat events replay 5f3c9a0e... --route billing\n  vast-gchat events retry-dead --route billing",
    );
  const runEvents = async (
    action: EventsAction,
    id: string | undefined,
    options: EventsOptions,
  ): Promise<void> => {
    const { events: run } = await import("./commands/events.js");
    context.setExitCode(await run(action, id, options, context));
  };
  events
    .command("list", { isDefault: true })
    .description(
      "the events received, newest first, a line for each route's delivery with its state (the default)",
    )
    .addOption(
      new Option("--state <state>", "list only deliveries in this state").choices([
        "pending",
        "delivered",
        "dead",
      ]),
    )
    .option("--route <name>", "list only this route's deliveries", routeNameArgument)
    .option("--limit <n>", "how many deliveries to list, newest first (default 20)", countArgument)
    .action((_options, command) => runEvents("list", undefined, command.optsWithGlobals()));
  events
    .command("show")
    .description("one event with its payload and every delivery attempt")
    .argument("<id>", "the event id")
    .action((id, _options, command) => runEvents("show", id, command.optsWithGlobals()));
  events
    .command("replay")
    .description(
      "queue one event again, to every route it went to or to one; a running serve delivers it",
    )
    .argument("<id>", "the event id")
    .option(
      "--route <name>",
      "only to this route (also one the event did not go to)",
      routeNameArgument,
    )
    .action((id, _options, command) => runEvents("replay", id, command.optsWithGlobals()));
  events
    .command("retry-dead")
    .description("queue every dead letter again, or one route's")
    .option("--route <name>", "only this route's dead letters", routeNameArgument)
    .action((_options, command) => runEvents("retry-dead", undefined, command.optsWithGlobals()));

  const route = program
    .command("route")
    .summary("which Chat space gets which notifications: add, list, remove or test a route")
    .description(
      "Send each notification to the right Chat space. A route is a name, a list of notification types (keys or slugs, the groups account, billing, instance, host, or all), a Chat webhook URL (kept as a secret) and the people its messages mention. An event goes to every route whose list matches its type, and to the route default when none does. Adding or removing a route keeps the Vast.ai webhook subscribed to what the routes need.",
    )
    .option(
      "--store <url|path>",
      "the event store: a postgresql:// URL (shared by replicas) or a SQLite file (VAST_GCHAT_STORE; default events.db in the config dir)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  printf '%s\\n' \"$BILLING_CHAT_URL\" | vast-gchat route add billing --types billing --chat-url-stdin --mention users/123456789\n  vast-gchat route add ops --types instance,host --chat-url-stdin --mention all < ops-url.txt\n  vast-gchat route list\n  vast-gchat route test billing\n  vast-gchat route remove billing",
    );
  const runRoute = async (
    action: RouteAction,
    name: string | undefined,
    options: RouteOptions,
  ): Promise<void> => {
    const { route: run } = await import("./commands/route.js");
    context.setExitCode(await run(action, name, options, context));
  };
  route
    .command("add")
    .description(
      "add a route (or, with --replace, change one): its types, its Chat space and who is mentioned",
    )
    .argument(
      "<name>",
      "the route's name: lower-case letters, digits and dashes",
      routeNameArgument,
    )
    .requiredOption(
      "--types <list>",
      "comma-separated type keys or slugs, groups (account, billing, instance, host) or all",
    )
    .option(
      "--chat-url-stdin",
      "read the space's Chat webhook URL from standard input (or set GOOGLE_CHAT_URL)",
    )
    .option(
      "--chat-url <url>",
      "the Chat URL on the command line: its token shows in ps and shell history, prefer --chat-url-stdin",
    )
    .option(
      "--mention <m>",
      "mention all, or users/ID, in the route's messages (repeatable)",
      mentionArgument,
    )
    .option("--replace", "change the route of that name if there is one")
    .option("--no-chat-check", "do not post a check message to the Chat space")
    .action((name, _options, command) => runRoute("add", name, command.optsWithGlobals()));
  route
    .command("list", { isDefault: true })
    .description(
      "the routes: name, types, space (never the URL's key or token), mentions, and their events (the default)",
    )
    .action((_options, command) => runRoute("list", undefined, command.optsWithGlobals()));
  route
    .command("remove")
    .description("remove a route and its Chat URL (the route default stays)")
    .argument("<name>", "the route's name", routeNameArgument)
    .action((name, _options, command) => runRoute("remove", name, command.optsWithGlobals()));
  route
    .command("test")
    .description(
      "send a signed sample event of a type the route gets through the running adapter, or straight to the route's space when none runs, and say where it arrived",
    )
    .argument("<name>", "the route's name", routeNameArgument)
    .option(
      "--wait <seconds>",
      "how long to wait for a running adapter to deliver it",
      positiveNumberArgument("seconds"),
      30,
    )
    .action((name, _options, command) => runRoute("test", name, command.optsWithGlobals()));

  program
    .command("rotate-secret")
    .summary("rotate the webhook's signing secret; the old one stays valid for a grace period")
    .description(
      "Ask Vast.ai for a new signing secret and store it. Vast.ai signs with it at once; a running adapter takes it within a second and accepts the previous secret only while a delivery signed before the rotation can still be valid (300 s, and 30 s for clock differences), then removes it. A secret that leaked: --grace 0 refuses the previous one at once.",
    )
    .option(
      "--grace <duration>",
      "how long the previous secret stays accepted: 90s, 2m, or minutes; 0 refuses it at once (default and most: 330s)",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat rotate-secret\n  vast-gchat rotate-secret --grace 0    # the old secret leaked: refuse it now",
    )
    .action(async (_options, command) => {
      const { rotateSecret } = await import("./commands/rotate-secret.js");
      context.setExitCode(await rotateSecret(command.optsWithGlobals(), context));
    });

  program
    .command("service")
    .summary("print a systemd unit that runs serve for good with this configuration")
    .description(
      "Print a systemd user unit that runs `vast-gchat serve` with this configuration, restarted on failure. Secrets stay where init put them.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat service > ~/.config/systemd/user/vast-gchat.service\n  systemctl --user enable --now vast-gchat",
    )
    .action(async (_options, command) => {
      const { service } = await import("./commands/service.js");
      context.setExitCode(await service(command.optsWithGlobals(), context));
    });

  program
    .command("demo")
    .summary("the whole chain on this machine, with no accounts, into a local Chat preview")
    .description(
      "Run the whole chain with no accounts: the built-in Vast.ai emulator, init against it unattended, the real serve behind a loopback stand-in for the tunnel, and a local Chat preview with a web page that shows the cards as a space would. One signed event of each type, a duplicate and a forgery, then a summary. Writes only to a temporary directory, removed at the end.",
    )
    .option("--keep", "keep it running afterwards, for `trigger` experiments, until Ctrl+C")
    .addHelpText(
      "after",
      "\nExamples:\n  vast-gchat demo\n  vast-gchat demo --keep\n  vast-gchat demo --json",
    )
    .action(async (_options, command) => {
      const { demo } = await import("./commands/demo.js");
      context.setExitCode(await demo(command.optsWithGlobals(), context));
    });

  // --no-color must win over chalk's own detection; NO_COLOR and FORCE_COLOR chalk reads itself.
  program.hook("preAction", async (_program, command) => {
    if ((command.optsWithGlobals() as GlobalOptions).color === false) {
      const { default: chalk } = await import("chalk");
      chalk.level = 0;
    }
  });

  return program;
}
