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
  type SenderStats,
  SUBJECT_PATTERN,
  sendBurst,
  visibleText,
} from "./burst.js";
import { type BenchConfig, readConfig } from "./config.js";
import { loadAverage, type MachineInfo, machineInfo } from "./machine.js";
import { median, writeSection } from "./report.js";
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

const MARKERS = ["<!-- routes:begin -->", "<!-- routes:end -->"] as const;

interface RouteSpec {
  name: string;
  /** As given to `route add --types`. */
  types: string;
  /** The burst's events of this route are of this type (a third of them each). */
  eventType: string;
  /** The fake Chat space; undefined for `default`, whose space is GOOGLE_CHAT_URL's. */
  space?: string;
}

/**
 * `default` takes what the others do not (a fresh set-up reads as `default`, types all, which
 * would also take billing's and instance's events, hence `--replace` with a narrower list).
 */
const ROUTES: readonly RouteSpec[] = [
  { name: "default", types: "account,host", eventType: "machine_error" },
  { name: "billing", types: "billing", eventType: "low_credit", space: "BBBBbilling" },
  { name: "instance", types: "instance", eventType: "instance_stopped", space: "CCCCinstance" },
];

const USAGE = `usage: npm run bench:routes -- [--quick] [--events N] [--repeats N] [--write | --no-write]

  --quick      60 events, 1 repeat, 60 s cap per session (default: 300 events, 3 repeats, 120 s)
  --events N   events in the routed burst, a multiple of 3 (a third to each route)
  --repeats N  routed bursts, each followed by each share alone; the figures are medians
  --write      replace the routes section of BENCHMARKS.md (a full run does unless --no-write)

Run \`npm run build\` first. The sender's and the fake Chat's settings are the bench's burst
defaults (bench/config.ts).`;

interface Options {
  quick: boolean;
  write: boolean;
  events: number;
  repeats: number;
  argv: string[];
  /** The burst knobs of bench/config.ts: sender, fake Chat, cap. */
  burst: BenchConfig;
}

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

interface SpaceResult {
  route: string;
  space: string;
  /** The burst's events of this route, and how many of them are visible in its space. */
  events: number;
  visible: number;
  /** Seconds from the first send until its last event was visible; undefined if not all were. */
  lastVisibleS: number | undefined;
  /** Messages Chat accepted in this space, posts it got (429s included), and the 429s. */
  messages: number;
  posts: number;
  throttled: number;
  /** Most of the burst's events carried by one message. */
  maxPerMessage: number;
  /** Accepted messages carrying none of the burst's events (e.g. an alert). */
  otherMessages: number;
  /** Events of other routes seen here, and this route's events seen here more than once. */
  misplaced: number;
  duplicates: number;
  /** Shortest time between two posts arriving at this space, ms; undefined below two posts. */
  shortestGapMs: number | undefined;
}

interface SessionResult {
  /** "routed", or the route whose share was sent alone. */
  kind: string;
  events: number;
  /** Seconds from the first send until every event was visible in its space. */
  allVisibleS: number | undefined;
  lost: number;
  spaces: SpaceResult[];
  sender: SenderStats;
  /** Posts the fake refused as Google would (400): none expected. */
  refused: number;
  endedS: number;
}

/** After every event is visible, Chat counts as settled once it gets no post for this long. */
const QUIET_MS = 2000;
const MAX_SETTLE_MS = 10_000;

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

interface Repeat {
  routed: SessionResult;
  /** Each share sent alone, in ROUTES' order. */
  alone: SessionResult[];
}

// ---- The report.

type Maybe = number | undefined;

const secondsOf = (v: number) => v.toFixed(v < 10 ? 2 : 1);
const countOf = (v: number) => Math.round(v).toLocaleString("en-US");
const timesOf = (v: number) => `${v.toFixed(2)}×`;

/** The median, then the range when the repeats differ: "3.10 (2.95–3.40)"; "not all" if one is missing. */
function spread(values: readonly Maybe[], format: (value: number) => string): string {
  if (values.length === 0) return "–";
  const defined = values.filter((v): v is number => v !== undefined);
  if (defined.length < values.length) {
    return defined.length === 0 ? "not all" : `not all (${defined.length} of ${values.length})`;
  }
  const middle = format(median(defined) as number);
  const [low, high] = [format(Math.min(...defined)), format(Math.max(...defined))];
  return low === high ? middle : `${middle} (${low}–${high})`;
}

function table(head: string[], rows: string[][]): string {
  return [head, head.map(() => "---"), ...rows]
    .map((line) => `| ${line.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`)
    .join("\n");
}

interface Rendered {
  text: string;
  correct: boolean;
}

function render(
  repeats: readonly Repeat[],
  options: Options,
  machine: MachineInfo,
  run: { startedAt: Date; durationS: number; loadAtStart: string; loadAtEnd: string },
): Rendered {
  const config = options.burst;
  const share = options.events / ROUTES.length;
  const routed = repeats.map((r) => r.routed);
  const spaceIn = (result: SessionResult, route: string) =>
    result.spaces.find((space) => space.route === route);
  const aloneOf = (repeat: Repeat, index: number) => repeat.alone[index]?.allVisibleS;

  const spaceRows = ROUTES.map((route, index) => {
    const mine = routed.map((result) => spaceIn(result, route.name));
    const pick = (f: (space: SpaceResult) => Maybe) => mine.map((s) => (s ? f(s) : undefined));
    return [
      `${route.name} (\`--types ${route.types}\`, events \`${route.eventType}\`) → spaces/${mine[0]?.space ?? route.space ?? "?"}`,
      countOf(share),
      spread(
        pick((s) => s.lastVisibleS),
        secondsOf,
      ),
      spread(
        repeats.map((repeat) => aloneOf(repeat, index)),
        secondsOf,
      ),
      spread(
        pick((s) => s.messages),
        countOf,
      ),
      spread(
        pick((s) => s.posts),
        countOf,
      ),
      spread(
        pick((s) => s.throttled),
        countOf,
      ),
      spread(
        pick((s) => s.maxPerMessage),
        countOf,
      ),
      spread(
        pick((s) => s.shortestGapMs),
        (v) => secondsOf(v / 1000),
      ),
    ];
  });
  const spaceTable = table(
    [
      "route → space",
      "events",
      "**its last event visible (s)**",
      "the same share sent alone (s)",
      "messages Chat accepted",
      "posts (429s included)",
      "**429s**",
      "most events in one message",
      "shortest gap between two posts (s)",
    ],
    spaceRows,
  );

  // Per repeat: the routed burst against its own repeat's shares sent alone.
  const largest = repeats.map((repeat) => {
    const times = repeat.alone.map((result) => result.allVisibleS);
    return times.every((time) => time !== undefined) ? Math.max(...(times as number[])) : undefined;
  });
  const summed = repeats.map((repeat) => {
    const times = repeat.alone.map((result) => result.allVisibleS);
    return times.every((time) => time !== undefined)
      ? (times as number[]).reduce((a, b) => a + b, 0)
      : undefined;
  });
  const ratioTo = (baseline: Maybe[]) =>
    repeats.map((repeat, index) => {
      const base = baseline[index];
      const total = repeat.routed.allVisibleS;
      return total === undefined || !base ? undefined : total / base;
    });
  const toLargest = ratioTo(largest);
  const toSum = ratioTo(summed);

  const verdicts: { name: string; pass: boolean; correctness: boolean }[] = [];
  const judge = (name: string, pass: boolean, cell: string, correctness = false) => {
    verdicts.push({ name, pass, correctness });
    return `${cell} ${pass ? "**PASS**" : "**FAIL**"}`;
  };
  const every = (pick: (result: SessionResult) => number) => [
    ...routed.map(pick),
    ...repeats.flatMap((r) => r.alone.map(pick)),
  ];
  const total = (result: SessionResult, pick: (space: SpaceResult) => number) =>
    result.spaces.reduce((sum, space) => sum + pick(space), 0);
  const lost = every((r) => r.lost);
  const misplaced = every((r) => total(r, (s) => s.misplaced));
  const duplicates = every((r) => total(r, (s) => s.duplicates));
  const throttled = every((r) => total(r, (s) => s.throttled));
  const others = every((r) => total(r, (s) => s.otherMessages));
  const max = (values: number[]) => Math.max(0, ...values);
  const LARGEST_MAX = 1.5;
  const SUM_MAX = 0.5;
  const summaryRows: string[][] = [
    [
      "**time until every event is visible in its space (s)**",
      spread(
        routed.map((r) => r.allVisibleS),
        secondsOf,
      ),
      "–",
    ],
    [
      `the largest share alone: the slowest of the three shares of ${countOf(share)}, each sent alone (s)`,
      spread(largest, secondsOf),
      "–",
    ],
    ["the three shares alone, summed (s)", spread(summed, secondsOf), "–"],
    [
      "**routed ÷ the largest share alone** (per repeat)",
      spread(toLargest, timesOf),
      judge(
        "about the time of the largest share",
        toLargest.every((v) => v !== undefined && v <= LARGEST_MAX),
        `≤ ${LARGEST_MAX}× in every repeat`,
      ),
    ],
    [
      "**routed ÷ the sum** (per repeat)",
      spread(toSum, timesOf),
      judge(
        "not the sum",
        toSum.every((v) => v !== undefined && v < SUM_MAX),
        `< ${SUM_MAX}× in every repeat`,
      ),
    ],
    [
      "**events lost** (not visible in their space when the run ended; all sessions)",
      countOf(max(lost)),
      judge("no event lost", max(lost) === 0, "0 in every session", true),
    ],
    [
      "**events in another route's space** (all sessions)",
      countOf(max(misplaced)),
      judge("every event in its route's space only", max(misplaced) === 0, "0", true),
    ],
    [
      "events shown twice or more in their space (all sessions)",
      countOf(max(duplicates)),
      judge("none twice", max(duplicates) === 0, "0", true),
    ],
    [
      "**429s**, all spaces (most in one session)",
      countOf(max(throttled)),
      judge("each space paced on its own", max(throttled) === 0, "0"),
    ],
    [
      "messages carrying none of the burst's events (most in one session)",
      countOf(max(others)),
      "–",
    ],
    [
      `sender's events, routed burst: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end (per run)`,
      routed
        .map(
          ({ sender }) =>
            `${sender.acked} / ${sender.refused} / ${sender.gaveUp} / ${sender.cutOff}`,
        )
        .join("; "),
      "–",
    ],
    [
      "time until the sender had a 2xx for every event, routed burst (s)",
      spread(
        routed.map(({ sender, events }) =>
          sender.acked === events ? (sender.lastAckMs ?? 0) / 1000 : undefined,
        ),
        secondsOf,
      ),
      "–",
    ],
  ];
  const summaryTable = table(["the whole burst", "figure", "target"], summaryRows);
  const failed = verdicts.filter((v) => !v.pass);

  const answers = new Map<string, number>();
  for (const result of [...routed, ...repeats.flatMap((r) => r.alone)]) {
    for (const [status, n] of result.sender.statuses) {
      answers.set(`HTTP ${status}`, (answers.get(`HTTP ${status}`) ?? 0) + n);
    }
    for (const [code, n] of result.sender.errors) answers.set(code, (answers.get(code) ?? 0) + n);
    if (result.refused) answers.set("Chat 400", (answers.get("Chat 400") ?? 0) + result.refused);
  }

  const args = options.argv.length ? ` -- ${options.argv.join(" ")}` : "";
  const routeList = ROUTES.map((route) => `\`${route.name}\` (\`--types ${route.types}\`)`).join(
    ", ",
  );
  const text = [
    `- Command: \`npm run build && npm run bench:routes${args}\`${options.quick ? " (`--quick`: a small burst, one repeat, not for comparison)" : ""}`,
    `- Run: ${run.startedAt.toISOString()}, took ${(run.durationS / 60).toFixed(1)} min; commit ${machine.commit ?? "unknown"}${machine.dirty ? " with uncommitted changes" : ""}`,
    `- Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB.toFixed(1)} GiB RAM, node ${machine.node}, store ${machine.store}; shared with other work, and the sender, the fake Chat and serve share its cores`,
    `- Load average (1, 5, 15 min): ${run.loadAtStart} at the start, ${run.loadAtEnd} at the end`,
    `- Repeats: ${repeats.length} routed burst(s) of ${countOf(options.events)} events, each followed by each share of ${countOf(share)} sent alone; the median, with the range across repeats in brackets`,
    "",
    spaceTable,
    "",
    summaryTable,
    "",
    `Targets met: ${verdicts.length - failed.length} of ${verdicts.length}.` +
      (failed.length ? ` Not met: ${failed.map((v) => v.name).join("; ")}.` : ""),
    ...(answers.size
      ? [
          "",
          `Answers other than 2xx the sender got, and requests without an answer (all sessions; each retried or final): ${[
            ...answers,
          ]
            .map(([what, n]) => `${what} ×${countOf(n)}`)
            .join(", ")}`,
        ]
      : []),
    "",
    "Method:",
    "",
    `- Routes: a fresh config directory per session, set up with the CLI as a user does it: \`printf '%s\\n' URL | vast-gchat route add NAME --types LIST --chat-url-stdin --no-chat-check\` for ${routeList} (\`default\` with \`--replace\`: a fresh set-up reads as \`default\`, types all, which would take every event too), secrets in the file store, no API key (so no webhook is updated). Each route is a different space of one fake Chat that takes ${config.burstChatRate} message(s) a second per space: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.burstChatDelayMs} ms.`,
    `- serve: \`node bin/vast-gchat.js serve\` on that directory with GOOGLE_CHAT_URL (\`default\`'s URL) and VAST_WEBHOOK_SECRET, its defaults otherwise (a worker per route: 1 message/s per space, digests on); a fresh serve and fake Chat for every session.`,
    `- Burst: ${countOf(options.events)} signed deliveries with unique subjects (\`burst 0001\`…), of the types ${ROUTES.map((route) => `\`${route.eventType}\``).join(", ")} in turn, a third going to each route, sent by bench/burst.ts's Vast.ai-like sender: at most ${config.burstConcurrency} requests in flight; an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s, is sent again after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter, up to ${config.burstMaxAttempts} attempts.`,
    `- Visible: an event counts once its subject appears in the \`fallbackText\` of a message the fake Chat accepted in its route's space; times run from the first send. Once every event is visible the watch waits until Chat has had no post for ${QUIET_MS / 1000} s (at most ${MAX_SETTLE_MS / 1000} s) and then counts messages, posts, events in another route's space and events shown twice. 429s per space are its posts less the messages it accepted (the fake refused none as malformed unless "Chat 400" is listed above). The shortest gap is between two posts arriving at one space, as the bench saw them. Sessions are capped at ${config.burstOursCapSeconds} s.`,
    "- Shares alone: in each repeat, after the routed burst, each route's share (the same events of its one type) is sent alone to a fresh serve with the same routes and a fresh fake Chat. The largest share is the slowest of the three, the sum their total: the time if the spaces were served one after another, as one paced worker would. The ratios are taken per repeat, then their median.",
    "",
  ].join("\n");
  return { text, correct: verdicts.every((v) => v.pass || !v.correctness) };
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
  const { text, correct } = render(repeats, options, machine, {
    startedAt,
    durationS: (performance.now() - startedMs) / 1000,
    loadAtStart,
    loadAtEnd: loadAverage(),
  });
  console.log(text);
  if (options.write) {
    writeSection(join(REPO_ROOT, "BENCHMARKS.md"), text, ...MARKERS);
    progress("written to the routes section of BENCHMARKS.md");
  } else {
    progress("BENCHMARKS.md left alone (a full run writes it; --write to force)");
  }
  return correct ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[routes] failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
