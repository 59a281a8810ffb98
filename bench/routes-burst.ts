import { spawnSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { BIN, cleanEnv } from "../test/support/cli-process.js";
import type { FakeChat } from "../test/support/fake-chat.js";
import { checkBuild } from "./build-check.js";
import {
  BURST_SEED,
  type BurstEvent,
  makeBurst,
  SUBJECT_PATTERN,
  sendBurst,
  visibleText,
} from "./burst.js";
import { readConfig } from "./config.js";
import { loadAverage, machineInfo } from "./machine.js";
import { ROUTES_RESULTS_FILE, renderDocument, saveResults } from "./report.js";
import {
  MAX_SETTLE_MS,
  type Options,
  QUIET_MS,
  type Repeat,
  ROUTES,
  type RoutesInput,
  type SessionResult,
  type SpaceResult,
} from "./routes-report.js";
import { withTarget } from "./sessions.js";
import { REPO_ROOT, type StartTarget, startOurs, type Target } from "./targets.js";

/**
 * `npm run bench:routes`: the burst of bench/burst.ts across three spaces (issue 16: "a burst of
 * events of three types into three spaces each limited to one message a second finishes in about
 * the time of the largest share, not the sum"). Three routes are set up with the CLI, as a user
 * would (`route add … --chat-url-stdin --no-chat-check`), each a space of one fake Chat that takes
 * one message a second per space (429 beyond); `serve` gets a burst of N events, a third of each
 * route's type, from bench/burst.ts's Vast.ai-like sender. Each repeat also sends each share alone
 * (a fresh serve and fake Chat each), so the routed burst is compared with the largest share and
 * with the sum of the three, measured in the same repeat. Prints a report; with `--write`, or on a
 * full run, it replaces the routes section of BENCHMARKS.md. Progress goes to stderr.
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
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      write: { type: "boolean" },
      help: { type: "boolean" },
      events: { type: "string" },
      repeats: { type: "string" },
    },
    allowNegative: true,
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const count = (raw: string | undefined, fallback: number, max: number, name: string) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
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
  return {
    quick,
    write: values.write ?? !quick,
    events,
    repeats: count(values.repeats, quick ? 1 : 3, 20, "repeats"),
    argv,
    // The bench's own defaults (not BENCH_* variables): the same sender and Chat as its burst.
    burst: readConfig(quick ? ["--quick"] : [], {}),
  };
}

// ---- Set-up: the routes through the CLI, then serve (targets.ts's startOurs).

function spaceOf(chatUrl: string): string {
  const space = /\/v1\/spaces\/([^/]+)\/messages/.exec(new URL(chatUrl).pathname)?.[1];
  if (space === undefined) throw new Error(`not a Chat webhook URL: ${chatUrl}`);
  return space;
}

/** The same fake Chat, another space. */
function spaceUrl(chatUrl: string, space: string): string {
  const url = new URL(chatUrl);
  url.pathname = `/v1/spaces/${space}/messages`;
  return url.href;
}

/** Each route's space: default's is GOOGLE_CHAT_URL's (the fake's default space). */
function spacesFor(defaultUrl: string): Map<string, string> {
  return new Map(ROUTES.map((route) => [route.name, route.space ?? spaceOf(defaultUrl)]));
}

/** `printf '%s\n' URL | vast-gchat route add NAME --types LIST --chat-url-stdin --no-chat-check`. */
function addRoutes(configDir: string, defaultUrl: string): void {
  const spaces = spacesFor(defaultUrl);
  // No API key: the routes are stored, no webhook is updated (README, "The webhook").
  const env = cleanEnv({ VAST_GCHAT_CONFIG_DIR: configDir, VAST_GCHAT_SECRET_STORE: "file" });
  for (const route of ROUTES) {
    const args = ["route", "add", route.name, "--types", route.types];
    args.push(
      "--chat-url-stdin",
      "--no-chat-check",
      ...(route.name === "default" ? ["--replace"] : []),
    );
    const url = spaceUrl(defaultUrl, spaces.get(route.name) ?? "");
    const result = spawnSync(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env,
      input: `${url}\n`,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (result.status !== 0) {
      throw new Error(
        `vast-gchat ${args.join(" ")} exited ${result.status ?? result.signal}:\n${result.stderr}`,
      );
    }
  }
  const list = spawnSync(process.execPath, [BIN, "route", "list", "--json"], {
    cwd: REPO_ROOT,
    env,
    encoding: "utf8",
    timeout: 30_000,
  });
  const names = (JSON.parse(list.stdout || "{}") as { routes?: { name: string }[] }).routes?.map(
    (route) => route.name,
  );
  if (names?.join(",") !== ROUTES.map((route) => route.name).join(",")) {
    throw new Error(`vast-gchat route list shows ${names?.join(", ") ?? list.stderr}`);
  }
}

/** startOurs on a config dir that has the three routes (its GOOGLE_CHAT_URL is default's). */
const startRouted: StartTarget = (options) => {
  addRoutes(join(options.workdir, "config"), options.chatUrl);
  return startOurs(options);
};

// ---- One session: a burst (the whole one, or one share) into a fresh serve and fake Chat.

interface RoutedEvent {
  event: BurstEvent;
  route: string;
}

/** The burst's events, `ROUTES[i % 3]`'s type for event i, each with the route it belongs to. */
function routedBurst(count: number): RoutedEvent[] {
  return makeBurst(
    count,
    ROUTES.map((route) => route.eventType),
  ).map((event, index) => ({ event, route: ROUTES[index % ROUTES.length]?.name ?? "" }));
}

async function runSession(
  kind: string,
  events: readonly RoutedEvent[],
  options: Options,
  chat: FakeChat,
  target: Target,
): Promise<SessionResult> {
  const config = options.burst;
  const spaces = spacesFor(chat.webhookUrl());
  const routeOf = new Map(events.map(({ event, route }) => [event.subject, route]));
  const spaceRoute = new Map([...spaces].map(([route, space]) => [space, route]));
  const routesHere = ROUTES.map((route) => route.name).filter((name) =>
    events.some((event) => event.route === name),
  );
  const stop = new AbortController();
  setMaxListeners(events.length * 2 + 16, stop.signal);
  const startMs = performance.now();
  const capEndMs = startMs + config.burstOursCapSeconds * 1000;

  // What Chat has shown, read incrementally: where each subject appeared, and when first in its
  // own space; every post's arrival per space (the fake counts them as they come).
  const firstSeenMs = new Map<string, number>();
  const seen = new Map<string, number>(); // `${space} ${subject}` → occurrences
  const perSpace = new Map(
    [...spaces.values()].map((space) => [
      space,
      { messages: 0, maxPerMessage: 0, other: 0, misplaced: 0, posts: 0, arrivals: [] as number[] },
    ]),
  );
  let cursor = 0;
  let allVisibleMs: number | undefined;
  const observe = (): boolean => {
    const now = performance.now() - startMs;
    for (const [space, requests] of chat.requestsBySpace) {
      const mine = perSpace.get(space);
      if (!mine) continue;
      // One wake per request: the fake notifies on each arrival.
      for (; mine.posts < requests; mine.posts++) mine.arrivals.push(now);
    }
    for (; cursor < chat.messages.length; cursor++) {
      const message = chat.messages[cursor];
      if (!message) continue;
      const mine = perSpace.get(message.space);
      let carried = 0;
      for (const [subject] of visibleText(message.body).matchAll(SUBJECT_PATTERN)) {
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
    if (firstSeenMs.size >= events.length) allVisibleMs ??= now;
    return allVisibleMs !== undefined;
  };

  const policy = {
    initialDelayMs: config.burstInitialDelayMs,
    maxDelayMs: config.burstMaxDelayMs,
    maxAttempts: config.burstMaxAttempts,
    timeoutMs: config.requestTimeoutMs,
  };
  const sending = sendBurst(
    target,
    events.map(({ event }) => event),
    { concurrency: config.burstConcurrency, policy, seed: BURST_SEED },
    stop.signal,
    startMs,
  );
  // A failure of the sender itself would be a bench bug: surfaced after cleanup, below.
  sending.catch(() => {});

  let nextProgressMs = startMs + 10_000;
  try {
    for (;;) {
      if (observe()) break;
      const now = performance.now();
      if (now >= capEndMs) break;
      if (now >= nextProgressMs) {
        progress(
          `  ${((now - startMs) / 1000).toFixed(0)} s: ${firstSeenMs.size} of ${events.length} visible, ` +
            `${chat.requests} posts, ${chat.throttled} 429s`,
        );
        nextProgressMs += 10_000;
      }
      await chat.waitFor(observe, Math.max(1, Math.min(250, capEndMs - now))).catch(() => {});
    }
    // Late posts (a repeat, a stray message) and answers still under way, before counting.
    const settleEnd = performance.now() + MAX_SETTLE_MS;
    let before = -1;
    while (chat.requests !== before && performance.now() < settleEnd) {
      before = chat.requests;
      await sleep(QUIET_MS);
      observe();
    }
  } finally {
    stop.abort();
  }
  const sender = await sending;
  observe();

  const results: SpaceResult[] = routesHere.map((route) => {
    const space = spaces.get(route) ?? "";
    const mine = perSpace.get(space);
    const subjects = events.filter((event) => event.route === route).map((e) => e.event.subject);
    const times = subjects.map((subject) => firstSeenMs.get(subject));
    const visible = times.filter((time) => time !== undefined).length;
    const arrivals = mine?.arrivals ?? [];
    const gaps = arrivals.slice(1).map((at, index) => at - (arrivals[index] ?? at));
    const posts = chat.requestsBySpace.get(space) ?? 0;
    const messages = mine?.messages ?? 0;
    return {
      route,
      space,
      events: subjects.length,
      visible,
      lastVisibleS:
        visible === subjects.length
          ? Math.max(...times.map((time) => time ?? 0)) / 1000
          : undefined,
      messages,
      posts,
      // The fake refuses a post with 429 (over the rate) or 400 (a bad message, counted apart).
      throttled: posts - messages,
      maxPerMessage: mine?.maxPerMessage ?? 0,
      otherMessages: mine?.other ?? 0,
      misplaced: mine?.misplaced ?? 0,
      duplicates: subjects.reduce(
        (total, subject) => total + Math.max(0, (seen.get(`${space} ${subject}`) ?? 0) - 1),
        0,
      ),
      shortestGapMs: gaps.length ? Math.min(...gaps) : undefined,
    };
  });
  // A space the session's events do not go to should have had no post at all.
  for (const [space, stats] of perSpace) {
    const route = spaceRoute.get(space) ?? space;
    if (!routesHere.includes(route) && stats.messages > 0) {
      progress(`  ${kind}: ${stats.messages} message(s) in ${route}'s space, which got no event`);
      results.push({
        route,
        space,
        events: 0,
        visible: 0,
        lastVisibleS: undefined,
        messages: stats.messages,
        posts: chat.requestsBySpace.get(space) ?? 0,
        throttled: (chat.requestsBySpace.get(space) ?? 0) - stats.messages,
        maxPerMessage: stats.maxPerMessage,
        otherMessages: stats.other,
        misplaced: stats.misplaced,
        duplicates: 0,
        shortestGapMs: undefined,
      });
    }
  }
  const result: SessionResult = {
    kind,
    events: events.length,
    allVisibleS: allVisibleMs === undefined ? undefined : allVisibleMs / 1000,
    lost: events.length - firstSeenMs.size,
    spaces: results,
    sender,
    refused: chat.refused.length,
    endedS: (performance.now() - startMs) / 1000,
  };
  progress(
    `  ${kind}: ${firstSeenMs.size} of ${events.length} visible` +
      (result.allVisibleS === undefined
        ? ` when the run ended after ${result.endedS.toFixed(1)} s`
        : ` after ${result.allVisibleS.toFixed(2)} s`) +
      ` (${results.map((s) => `${s.route} ${s.lastVisibleS?.toFixed(2) ?? "–"} s, ${s.messages} msg, ${s.throttled} 429`).join("; ")});` +
      ` sender: ${sender.attempts} deliveries, ${sender.gaveUp} given up`,
  );
  return result;
}

function session(
  kind: string,
  events: readonly RoutedEvent[],
  options: Options,
  workdir: string,
): Promise<SessionResult> {
  const chatSetup = {
    delayMs: options.burst.burstChatDelayMs,
    ratePerSecond: options.burst.burstChatRate,
  };
  return withTarget(startRouted, workdir, chatSetup, progress, (target, chat) =>
    runSession(kind, events, options, chat, target),
  );
}

// ---- The run.

async function main(): Promise<number> {
  let options: Options;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkBuild("bench:routes", progress);
  const startedAt = new Date();
  const startedMs = performance.now();
  const loadAtStart = loadAverage();
  const machine = await machineInfo();
  const workdir = mkdtempSync(join(tmpdir(), "vast-gchat-routes-"));
  const cleanup = () => rmSync(workdir, { recursive: true, force: true });
  process.once("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => process.exit(130));
  }
  progress(
    `${options.events} events into ${ROUTES.length} routes, ${options.repeats} repeat(s); load average ${loadAtStart}`,
  );
  const repeats: Repeat[] = [];
  try {
    for (let repeat = 1; repeat <= options.repeats; repeat++) {
      progress(`repeat ${repeat} of ${options.repeats}`);
      const dir = (name: string) => join(workdir, `repeat-${repeat}`, name);
      const routed = await session("routed", routedBurst(options.events), options, dir("routed"));
      const alone: SessionResult[] = [];
      for (const route of ROUTES) {
        const share = routedBurst(options.events).filter((event) => event.route === route.name);
        alone.push(await session(`${route.name} alone`, share, options, dir(route.name)));
      }
      repeats.push({ routed, alone });
    }
  } finally {
    cleanup();
  }
  const input: RoutesInput = {
    kind: "routes",
    options,
    machine,
    startedAt,
    durationS: (performance.now() - startedMs) / 1000,
    loadAtStart,
    loadAtEnd: loadAverage(),
    repeats,
  };
  saveResults(input, ROUTES_RESULTS_FILE);
  progress(`results saved to ${ROUTES_RESULTS_FILE} (re-render with tsx bench/render.ts FILE)`);
  const ok = renderDocument(ROUTES_RESULTS_FILE, options.write);
  progress(
    options.write
      ? "written to the routes section of BENCHMARKS.md"
      : "BENCHMARKS.md left alone (a full run writes it; --write to force)",
  );
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[routes] failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
