import { join } from "node:path";
import { cleanEnv, runCli } from "../test/support/cli-process.js";
import type { FakeChat } from "../test/support/fake-chat.js";
import {
  type BurstEvent,
  type SpaceResult as BurstSpace,
  makeBurst,
  sendAndWatch,
  spaceOf,
} from "./burst.js";
import { type BenchConfig, readConfig } from "./config.js";
import { benchScript, checkBuild, loadAverage, machineInfo, workdirFor } from "./machine.js";
import { ROUTES, ROUTES_RESULTS_FILE, renderDocument, SETTLE, saveResults } from "./report.js";
import { withTarget } from "./sessions.js";
import { type StartTarget, startOurs, type Target } from "./targets.js";

/**
 * `npm run bench:routes`: the burst of bench/burst.ts across three spaces (issue 16: "a burst of
 * events of three types into three spaces each limited to one message a second finishes in about
 * the time of the largest share, not the sum"), against each share sent alone in the same repeat.
 * The method is in the report (bench/report.ts); the results go to one JSON document.
 */
const progress = (message: string) => console.error(`[routes] ${message}`);

export type SpaceResult = BurstSpace & { route: string };
export type SessionResult = Awaited<ReturnType<typeof runSession>>;

const USAGE = `usage: npm run bench:routes -- [--quick] [--events N] [--repeats N] [--write | --no-write]

  --quick      60 events, 1 repeat, 60 s cap per session (default: 300 events, 3 repeats, 120 s)
  --events N   events in the routed burst, a multiple of 3 (a third to each route)
  --repeats N  routed bursts, each followed by each share alone; the figures are medians
  --write      replace the routes section of BENCHMARKS.md (a full run does unless --no-write)

Run \`npm run build\` first. The sender's and the fake Chat's settings are the bench's burst
knobs (npm run bench -- --help), its BENCH_* variables aside.`;

/** Each route's space: default's is GOOGLE_CHAT_URL's (the fake's default space). */
function spacesFor(defaultUrl: string): Map<string, string> {
  const space = spaceOf(defaultUrl);
  return new Map(ROUTES.map((route) => [route.name, route.space ?? space]));
}

/**
 * startOurs on a config dir set up as a user does it, `printf '%s\n' URL | vast-gchat route add
 * NAME --types LIST --chat-url-stdin --no-chat-check` (its GOOGLE_CHAT_URL is default's). No API
 * key: the routes are stored, no webhook is updated (README, "The webhook").
 */
const startRouted: StartTarget = async (options) => {
  const configDir = join(options.workdir, "config");
  const env = cleanEnv({ VAST_GCHAT_CONFIG_DIR: configDir, VAST_GCHAT_SECRET_STORE: "file" });
  const cli = async (args: string[], input?: string) => {
    const { code, stdout, stderr } = await runCli(args, env, input);
    if (code !== 0) throw new Error(`vast-gchat ${args.join(" ")} exited ${code}: ${stderr}`);
    return stdout;
  };
  const spaces = spacesFor(options.chatUrl);
  for (const route of ROUTES) {
    const url = new URL(options.chatUrl);
    url.pathname = `/v1/spaces/${spaces.get(route.name)}/messages`;
    const args = ["route", "add", route.name, "--types", route.types, "--chat-url-stdin"];
    const replace = route.name === "default" ? ["--replace"] : [];
    await cli([...args, "--no-chat-check", ...replace], `${url.href}\n`);
  }
  const listed = JSON.parse((await cli(["route", "list", "--json"])) || "{}") as {
    routes?: { name: string }[];
  };
  const names = listed.routes?.map((route) => route.name).join(", ");
  if (names !== ROUTES.map((route) => route.name).join(", ")) {
    throw new Error(`vast-gchat route list shows ${names}`);
  }
  return startOurs(options);
};

/** The burst's events, `ROUTES[i % 3]`'s type for event i, each with the route it belongs to. */
const routedBurst = (count: number) =>
  makeBurst(
    count,
    ROUTES.map((route) => route.eventType),
  ).map((event, index) => ({ event, route: ROUTES[index % ROUTES.length]?.name ?? "" }));

/** One session: a burst (the whole one, or one share) into a fresh serve and fake Chat. */
async function runSession(
  kind: string,
  events: readonly { event: BurstEvent; route: string }[],
  config: BenchConfig,
  chat: FakeChat,
  target: Target,
) {
  const spaces = spacesFor(chat.webhookUrl());
  const spaceOfEvent = new Map(
    events.map(({ event, route }) => [event.subject, spaces.get(route) ?? ""]),
  );
  const watch = {
    label: kind,
    capS: config.burstOursCapSeconds,
    deliversAfterAck: true,
    settle: SETTLE,
  };
  const bursts = events.map(({ event }) => event);
  const watched = await sendAndWatch(config, chat, target, bursts, spaceOfEvent, watch, progress);
  const { sender, allVisibleS, endedS, visible } = watched;
  // In ROUTES' order; a space no route has (none should get a message) last.
  const routeOf = new Map([...spaces].map(([route, space]) => [space, route]));
  const order = [...spaces.keys(), "none"];
  const results = watched.spaces
    .map((space) => ({ route: routeOf.get(space.space) ?? "none", ...space }))
    .sort((a, b) => order.indexOf(a.route) - order.indexOf(b.route));
  progress(
    `  ${kind}: ${visible} of ${events.length} visible after ${(allVisibleS ?? endedS).toFixed(2)} s` +
      ` (${results.map((s) => `${s.route} ${s.lastVisibleS?.toFixed(2) ?? "–"} s, ${s.messages} msg, ${s.throttled} 429`).join("; ")})`,
  );
  return {
    /** "routed", or the route whose share was sent alone. */
    kind,
    events: events.length,
    allVisibleS,
    lost: events.length - visible,
    spaces: results,
    sender,
    /** Posts the fake refused as Google would (400): none expected. */
    refused: chat.refused.length,
    endedS,
  };
}

benchScript("routes", async () => {
  let config: ReturnType<typeof readConfig<"events">>;
  try {
    // The bench's knobs without its BENCH_* variables: the same sender and Chat as its burst.
    config = readConfig(process.argv.slice(2), {}, { events: [300, 60, 9999, true] }, USAGE);
    if (config.events % ROUTES.length !== 0) {
      throw new Error(`--events must be a multiple of ${ROUTES.length}, not ${config.events}`);
    }
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench:routes", progress);
  const [startedAt, startedMs, loadAtStart] = [new Date(), performance.now(), loadAverage()];
  const machine = await machineInfo();
  const workdir = workdirFor("routes");
  const { events, repeats: count } = config;
  progress(
    `${events} events into ${ROUTES.length} routes, ${count} repeat(s); load ${loadAtStart}`,
  );
  const chatSetup = { delayMs: config.burstChatDelayMs, ratePerSecond: config.burstChatRate };
  const session = (kind: string, burst: ReturnType<typeof routedBurst>, dir: string) =>
    withTarget(startRouted, dir, chatSetup, progress, (target, chat) =>
      runSession(kind, burst, config, chat, target),
    );
  const repeats: { routed: SessionResult; alone: SessionResult[] }[] = [];
  for (let repeat = 1; repeat <= count; repeat++) {
    progress(`repeat ${repeat} of ${count}`);
    const dir = (name: string) => join(workdir, `repeat-${repeat}`, name);
    const routed = await session("routed", routedBurst(events), dir("routed"));
    const alone: SessionResult[] = [];
    for (const { name } of ROUTES) {
      const share = routedBurst(events).filter((event) => event.route === name);
      alone.push(await session(`${name} alone`, share, dir(name)));
    }
    repeats.push({ routed, alone });
  }
  const durationS = (performance.now() - startedMs) / 1000;
  const options = { quick: config.quick, events, argv: config.argv, burst: config };
  const run = { startedAt, durationS, loadAtStart, loadAtEnd: loadAverage() };
  saveResults({ kind: "routes", options, machine, ...run, repeats }, ROUTES_RESULTS_FILE);
  progress(`results saved to ${ROUTES_RESULTS_FILE} (re-render with tsx bench/render.ts FILE)`);
  return renderDocument(ROUTES_RESULTS_FILE, config.write) ? 0 : 1;
});
