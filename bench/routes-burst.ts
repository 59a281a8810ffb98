import { join } from "node:path";
import { parseArgs } from "node:util";
import { execaSync } from "execa";
import { BIN, cleanEnv } from "../test/support/cli-process.js";
import type { FakeChat } from "../test/support/fake-chat.js";
import { benchScript, checkBuild, workdirFor } from "./build-check.js";
import { type BurstEvent, makeBurst, sendAndWatch, visibleSubjects } from "./burst.js";
import { readConfig } from "./config.js";
import { loadAverage, machineInfo } from "./machine.js";
import { ROUTES_RESULTS_FILE, renderDocument, saveResults } from "./report.js";
import {
  MAX_SETTLE_MS,
  type Options,
  QUIET_MS,
  type Repeat,
  ROUTES,
  type SessionResult,
  type SpaceResult,
} from "./routes-report.js";
import { withTarget } from "./sessions.js";
import { REPO_ROOT, type StartTarget, startOurs, type Target } from "./targets.js";

/**
 * `npm run bench:routes`: the burst of bench/burst.ts across three spaces (issue 16: "a burst of
 * events of three types into three spaces each limited to one message a second finishes in about
 * the time of the largest share, not the sum"), against each share sent alone in the same repeat.
 * The method is in the report (bench/routes-report.ts); the results go to one JSON document.
 */
const progress = (message: string) => console.error(`[routes] ${message}`);

const USAGE = `usage: npm run bench:routes -- [--quick] [--events N] [--repeats N] [--write | --no-write]

  --quick      60 events, 1 repeat, 60 s cap per session (default: 300 events, 3 repeats, 120 s)
  --events N   events in the routed burst, a multiple of 3 (a third to each route)
  --repeats N  routed bursts, each followed by each share alone; the figures are medians
  --write      replace the routes section of BENCHMARKS.md (a full run does unless --no-write)

Run \`npm run build\` first. The sender's and the fake Chat's settings are the bench's burst
defaults (bench/config.ts).`;

function readOptions(argv: string[]): Options {
  const [flag, text] = [{ type: "boolean" }, { type: "string" }] as const;
  const { values } = parseArgs({
    args: argv,
    options: { quick: flag, write: flag, help: flag, events: text, repeats: text },
    allowNegative: true,
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const count = (raw: string | undefined, fallback: number, max: number, name: string) => {
    const value = Number(raw ?? fallback);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new Error(`--${name} must be a whole number in [1, ${max}], not "${raw}"`);
    }
    return value;
  };
  const events = count(values.events, quick ? 60 : 300, 9999, "events");
  if (events % ROUTES.length !== 0) {
    throw new Error(
      `--events must be a multiple of ${ROUTES.length} (equal shares), not ${events}`,
    );
  }
  const repeats = count(values.repeats, quick ? 1 : 3, 20, "repeats");
  // The bench's own defaults (not BENCH_* variables): the same sender and Chat as its burst.
  const burst = readConfig(quick ? ["--quick"] : [], {});
  return { quick, write: values.write ?? !quick, events, repeats, argv, burst };
}

/** Each route's space: default's is GOOGLE_CHAT_URL's (the fake's default space). */
function spacesFor(defaultUrl: string): Map<string, string> {
  const space = /\/v1\/spaces\/([^/]+)\/messages/.exec(new URL(defaultUrl).pathname)?.[1];
  if (space === undefined) throw new Error(`not a Chat webhook URL: ${defaultUrl}`);
  return new Map(ROUTES.map((route) => [route.name, route.space ?? space]));
}

/**
 * startOurs on a config dir set up as a user does it, `printf '%s\n' URL | vast-gchat route add
 * NAME --types LIST --chat-url-stdin --no-chat-check` (its GOOGLE_CHAT_URL is default's). No API
 * key: the routes are stored, no webhook is updated (README, "The webhook").
 */
const startRouted: StartTarget = (options) => {
  const configDir = join(options.workdir, "config");
  const env = cleanEnv({ VAST_GCHAT_CONFIG_DIR: configDir, VAST_GCHAT_SECRET_STORE: "file" });
  const cli = (args: string[], input = "") =>
    execaSync(process.execPath, [BIN, ...args], {
      ...{ cwd: REPO_ROOT, env, extendEnv: false, input, timeout: 30_000 },
    }).stdout;
  const spaces = spacesFor(options.chatUrl);
  for (const route of ROUTES) {
    const url = new URL(options.chatUrl);
    url.pathname = `/v1/spaces/${spaces.get(route.name)}/messages`;
    const args = ["route", "add", route.name, "--types", route.types, "--chat-url-stdin"];
    const replace = route.name === "default" ? ["--replace"] : [];
    cli([...args, "--no-chat-check", ...replace], `${url.href}\n`);
  }
  const listed = JSON.parse(cli(["route", "list", "--json"]) || "{}") as {
    routes?: { name: string }[];
  };
  const names = listed.routes?.map((route) => route.name).join(", ");
  if (names !== ROUTES.map((route) => route.name).join(", ")) {
    throw new Error(`vast-gchat route list shows ${names}`);
  }
  return startOurs(options);
};

/** The burst's events, `ROUTES[i % 3]`'s type for event i, each with the route it belongs to. */
function routedBurst(count: number): { event: BurstEvent; route: string }[] {
  const types = ROUTES.map((route) => route.eventType);
  return makeBurst(count, types).map((event, index) => ({
    event,
    route: ROUTES[index % ROUTES.length]?.name ?? "",
  }));
}

/** One session: a burst (the whole one, or one share) into a fresh serve and fake Chat. */
async function runSession(
  kind: string,
  events: readonly { event: BurstEvent; route: string }[],
  options: Options,
  chat: FakeChat,
  target: Target,
): Promise<SessionResult> {
  const spaces = spacesFor(chat.webhookUrl());
  const routeOf = new Map(events.map(({ event, route }) => [event.subject, route]));
  const routesHere = new Set(events.map((event) => event.route));
  // What each space has shown, read incrementally: where each subject appeared, and when first
  // in its own space; every post's arrival (the fake counts them as they come).
  const firstSeenMs = new Map<string, number>();
  const seen = new Map<string, number>(); // `${space} ${subject}` → occurrences
  const perSpace = new Map(
    [...spaces].map(([route, space]) => [
      space,
      { route, messages: 0, maxPerMessage: 0, other: 0, misplaced: 0, arrivals: [] as number[] },
    ]),
  );
  let cursor = 0;
  const observe = (now: number) => {
    for (const [space, requests] of chat.requestsBySpace) {
      const mine = perSpace.get(space);
      // One wake per request: the fake notifies on each arrival.
      while (mine && mine.arrivals.length < requests) mine.arrivals.push(now);
    }
    for (; cursor < chat.messages.length; cursor++) {
      const message = chat.messages[cursor];
      if (!message) continue;
      const mine = perSpace.get(message.space);
      let carried = 0;
      for (const subject of visibleSubjects(message.body)) {
        const route = routeOf.get(subject);
        if (route === undefined) continue;
        carried++;
        const key = `${message.space} ${subject}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (spaces.get(route) !== message.space) {
          if (mine) mine.misplaced++;
        } else if (!firstSeenMs.has(subject)) {
          firstSeenMs.set(subject, now);
        }
      }
      if (mine) {
        mine.messages++;
        mine.maxPerMessage = Math.max(mine.maxPerMessage, carried);
        if (carried === 0) mine.other++;
      }
    }
    return firstSeenMs.size;
  };
  const watch = {
    label: kind,
    capS: options.burst.burstOursCapSeconds,
    deliversAfterAck: true,
    settle: { quietMs: QUIET_MS, settleMs: MAX_SETTLE_MS },
  };
  const bursts = events.map(({ event }) => event);
  const { sender, allVisibleS, endedS } = await sendAndWatch(
    ...[options.burst, chat, target, bursts, watch],
    observe,
    progress,
  );

  // Each space the session's events go to; another one only if it got a message (none should).
  const results: SpaceResult[] = [];
  for (const [space, mine] of perSpace) {
    const { route } = mine;
    if (!routesHere.has(route)) {
      if (mine.messages === 0) continue;
      progress(`  ${kind}: ${mine.messages} message(s) in ${route}'s space, which got no event`);
    }
    const subjects = events.filter((e) => e.route === route).map((e) => e.event.subject);
    const times = subjects.map((subject) => firstSeenMs.get(subject));
    const visible = times.filter((time) => time !== undefined).length;
    const gaps = mine.arrivals.slice(1).map((at, index) => at - (mine.arrivals[index] ?? at));
    const posts = chat.requestsBySpace.get(space) ?? 0;
    const lastVisibleMs = Math.max(...times.map((time) => time ?? 0));
    const duplicates = subjects.map((subject) => (seen.get(`${space} ${subject}`) ?? 1) - 1);
    results.push({
      ...{ route, space, events: subjects.length, visible, messages: mine.messages, posts },
      lastVisibleS:
        subjects.length && visible === subjects.length ? lastVisibleMs / 1000 : undefined,
      // The fake refuses a post with 429 (over the rate) or 400 (a bad message, counted apart).
      throttled: posts - mine.messages,
      ...{ maxPerMessage: mine.maxPerMessage, otherMessages: mine.other },
      misplaced: mine.misplaced,
      duplicates: duplicates.reduce((total, n) => total + Math.max(0, n), 0),
      shortestGapMs: gaps.length && routesHere.has(route) ? Math.min(...gaps) : undefined,
    });
  }
  // A stray space last (the sort is stable: the others stay in ROUTES' order).
  results.sort((a, b) => Number(!routesHere.has(a.route)) - Number(!routesHere.has(b.route)));
  const result: SessionResult = {
    ...{ kind, events: events.length, allVisibleS, lost: events.length - firstSeenMs.size },
    ...{ spaces: results, sender, refused: chat.refused.length, endedS },
  };
  progress(
    `  ${kind}: ${firstSeenMs.size} of ${events.length} visible` +
      (allVisibleS === undefined
        ? ` when the run ended after ${endedS.toFixed(1)} s`
        : ` after ${allVisibleS.toFixed(2)} s`) +
      ` (${results.map((s) => `${s.route} ${s.lastVisibleS?.toFixed(2) ?? "–"} s, ${s.messages} msg, ${s.throttled} 429`).join("; ")});` +
      ` sender: ${sender.attempts} deliveries, ${sender.gaveUp} given up`,
  );
  return result;
}

benchScript("routes", async () => {
  let options: Options;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench:routes", progress);
  const [startedAt, startedMs, loadAtStart] = [new Date(), performance.now(), loadAverage()];
  const machine = await machineInfo();
  const workdir = workdirFor("routes");
  progress(
    `${options.events} events into ${ROUTES.length} routes, ${options.repeats} repeat(s); load average ${loadAtStart}`,
  );
  const chatSetup = {
    delayMs: options.burst.burstChatDelayMs,
    ratePerSecond: options.burst.burstChatRate,
  };
  const session = (kind: string, events: ReturnType<typeof routedBurst>, dir: string) =>
    withTarget(startRouted, dir, chatSetup, progress, (target, chat) =>
      runSession(kind, events, options, chat, target),
    );
  const repeats: Repeat[] = [];
  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    progress(`repeat ${repeat} of ${options.repeats}`);
    const dir = (name: string) => join(workdir, `repeat-${repeat}`, name);
    const routed = await session("routed", routedBurst(options.events), dir("routed"));
    const alone: SessionResult[] = [];
    for (const route of ROUTES) {
      const share = routedBurst(options.events).filter((event) => event.route === route.name);
      alone.push(await session(`${route.name} alone`, share, dir(route.name)));
    }
    repeats.push({ routed, alone });
  }
  const durationS = (performance.now() - startedMs) / 1000;
  const run = { startedAt, durationS, loadAtStart, loadAtEnd: loadAverage() };
  saveResults({ kind: "routes", options, machine, ...run, repeats }, ROUTES_RESULTS_FILE);
  progress(`results saved to ${ROUTES_RESULTS_FILE} (re-render with tsx bench/render.ts FILE)`);
  const ok = renderDocument(ROUTES_RESULTS_FILE, options.write);
  progress(
    options.write
      ? "written to the routes section of BENCHMARKS.md"
      : "BENCHMARKS.md left alone (a full run writes it; --write to force)",
  );
  return ok ? 0 : 1;
});
