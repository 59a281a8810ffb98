import type { SenderStats } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { MachineInfo } from "./machine.js";
import { header, int, type Maybe, spread, table, verdicts } from "./report.js";

/** The routed burst's document (bench-routes-results.json) and its report (bench/routes-burst.ts). */
export interface RouteSpec {
  name: string;
  /** As given to `route add --types`; the burst's events of this route are all `eventType`. */
  types: string;
  eventType: string;
  /** The fake Chat space; undefined for `default`, whose space is GOOGLE_CHAT_URL's. */
  space?: string;
}

/**
 * `default` takes what the others do not (a fresh set-up reads as `default`, types all, which
 * would also take billing's and instance's events, hence `--replace` with a narrower list).
 */
export const ROUTES: readonly RouteSpec[] = [
  { name: "default", types: "account,host", eventType: "machine_error" },
  { name: "billing", types: "billing", eventType: "low_credit", space: "BBBBbilling" },
  { name: "instance", types: "instance", eventType: "instance_stopped", space: "CCCCinstance" },
];

export interface Options {
  quick: boolean;
  write: boolean;
  events: number;
  repeats: number;
  argv: string[];
  /** The burst knobs of bench/config.ts: sender, fake Chat, cap. */
  burst: BenchConfig;
}

export interface SpaceResult {
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
  maxPerMessage: number;
  /** Accepted messages carrying none of the burst's events (e.g. an alert). */
  otherMessages: number;
  /** Events of other routes seen here, and this route's events seen here more than once. */
  misplaced: number;
  duplicates: number;
  /** Shortest time between two posts arriving at this space, ms; undefined below two posts. */
  shortestGapMs: number | undefined;
}

export interface SessionResult {
  /** "routed", or the route whose share was sent alone. */
  kind: string;
  events: number;
  allVisibleS: number | undefined;
  lost: number;
  spaces: SpaceResult[];
  sender: SenderStats;
  /** Posts the fake refused as Google would (400): none expected. */
  refused: number;
  endedS: number;
}

/** After every event is visible, Chat counts as settled once it gets no post for this long. */
export const QUIET_MS = 2000;
export const MAX_SETTLE_MS = 10_000;

export interface Repeat {
  routed: SessionResult;
  /** Each share sent alone, in ROUTES' order. */
  alone: SessionResult[];
}

export interface RoutesInput {
  kind: "routes";
  options: Options;
  machine: MachineInfo;
  startedAt: Date;
  durationS: number;
  loadAtStart: string;
  loadAtEnd: string;
  repeats: Repeat[];
}

const secondsOf = (v: number) => v.toFixed(v < 10 ? 2 : 1);
const timesOf = (v: number) => `${v.toFixed(2)}×`;

/** The median with the range of the repeats; "not all" when one is missing. */
function spreadAll(values: readonly Maybe[], format: (value: number) => string): string {
  const defined = values.filter((v): v is number => v !== undefined);
  if (defined.length === values.length) return spread(values, (v) => format(v as number));
  return defined.length === 0 ? "not all" : `not all (${defined.length} of ${values.length})`;
}

export function renderRoutes(input: RoutesInput): { text: string; correct: boolean } {
  const { options, repeats } = input;
  const config = options.burst;
  const share = options.events / ROUTES.length;
  const routed = repeats.map((r) => r.routed);
  const alone = repeats.flatMap((r) => r.alone);

  const spaceRows = ROUTES.map((route, index) => {
    const mine = routed.map((result) => result.spaces.find((space) => space.route === route.name));
    const pick = (f: (space: SpaceResult) => Maybe, format = int) =>
      spreadAll(
        mine.map((s) => (s ? f(s) : undefined)),
        format,
      );
    return [
      `${route.name} (\`--types ${route.types}\`, events \`${route.eventType}\`) → spaces/${mine[0]?.space ?? route.space ?? "?"}`,
      int(share),
      pick((s) => s.lastVisibleS, secondsOf),
      spreadAll(
        repeats.map((repeat) => repeat.alone[index]?.allVisibleS),
        secondsOf,
      ),
      pick((s) => s.messages),
      pick((s) => s.posts),
      pick((s) => s.throttled),
      pick((s) => s.maxPerMessage),
      pick(
        (s) => s.shortestGapMs,
        (v) => secondsOf(v / 1000),
      ),
    ];
  });

  // Per repeat: the routed burst against its own repeat's shares sent alone.
  const aloneTimes = repeats.map((repeat) => repeat.alone.map((result) => result.allVisibleS));
  const complete = (times: Maybe[]): times is number[] => times.every((t) => t !== undefined);
  const largest = aloneTimes.map((times) => (complete(times) ? Math.max(...times) : undefined));
  const summed = aloneTimes.map((times) =>
    complete(times) ? times.reduce((a, b) => a + b, 0) : undefined,
  );
  const ratioTo = (baseline: Maybe[]) =>
    routed.map(({ allVisibleS: total }, index) => {
      const base = baseline[index];
      return total === undefined || !base ? undefined : total / base;
    });
  const [toLargest, toSum] = [ratioTo(largest), ratioTo(summed)];

  const { judge, summary, correct } = verdicts();
  /** The most in any session of a figure summed over its spaces. */
  const most = (pick: (space: SpaceResult) => number) =>
    Math.max(0, ...[...routed, ...alone].map((r) => r.spaces.reduce((n, s) => n + pick(s), 0)));
  const lost = Math.max(0, ...[...routed, ...alone].map((r) => r.lost));
  const [misplaced, duplicates] = [most((s) => s.misplaced), most((s) => s.duplicates)];
  const [throttled, others] = [most((s) => s.throttled), most((s) => s.otherMessages)];
  const LARGEST_MAX = 1.5;
  const SUM_MAX = 0.5;
  const summaryRows = [
    [
      "**time until every event is visible in its space (s)**",
      spreadAll(
        routed.map((r) => r.allVisibleS),
        secondsOf,
      ),
      "–",
    ],
    [
      `the largest share alone: the slowest of the three shares of ${int(share)}, each sent alone (s)`,
      spreadAll(largest, secondsOf),
      "–",
    ],
    ["the three shares alone, summed (s)", spreadAll(summed, secondsOf), "–"],
    [
      "**routed ÷ the largest share alone** (per repeat)",
      spreadAll(toLargest, timesOf),
      judge(
        "about the time of the largest share",
        toLargest.every((v) => v !== undefined && v <= LARGEST_MAX),
        `≤ ${LARGEST_MAX}× in every repeat`,
      ),
    ],
    [
      "**routed ÷ the sum** (per repeat)",
      spreadAll(toSum, timesOf),
      judge(
        "not the sum",
        toSum.every((v) => v !== undefined && v < SUM_MAX),
        `< ${SUM_MAX}× in every repeat`,
      ),
    ],
    [
      "**events lost** (not visible in their space when the run ended; all sessions)",
      int(lost),
      judge("no event lost", lost === 0, "0 in every session", true),
    ],
    [
      "**events in another route's space** (all sessions)",
      int(misplaced),
      judge("every event in its route's space only", misplaced === 0, "0", true),
    ],
    [
      "events shown twice or more in their space (all sessions)",
      int(duplicates),
      judge("none twice", duplicates === 0, "0", true),
    ],
    [
      "**429s**, all spaces (most in one session)",
      int(throttled),
      judge("each space paced on its own", throttled === 0, "0"),
    ],
    ["messages carrying none of the burst's events (most in one session)", int(others), "–"],
    [
      `sender's events, routed burst: 2xx / refused / gave up after ${config.burstMaxAttempts} attempts / still retrying at the end (per run)`,
      routed
        .map(({ sender: s }) => `${s.acked} / ${s.refused} / ${s.gaveUp} / ${s.cutOff}`)
        .join("; "),
      "–",
    ],
    [
      "time until the sender had a 2xx for every event, routed burst (s)",
      spreadAll(
        routed.map(({ sender, events }) =>
          sender.acked === events ? (sender.lastAckMs ?? 0) / 1000 : undefined,
        ),
        secondsOf,
      ),
      "–",
    ],
  ];

  const answers = new Map<string, number>();
  const add = (what: string, n: number) => answers.set(what, (answers.get(what) ?? 0) + n);
  for (const result of [...routed, ...alone]) {
    for (const [status, n] of result.sender.statuses) add(`HTTP ${status}`, n);
    for (const [code, n] of result.sender.errors) add(code, n);
    if (result.refused) add("Chat 400", result.refused);
  }
  const answerList = [...answers].map(([what, n]) => `${what} ×${int(n)}`).join(", ");
  const args = options.argv.length ? ` -- ${options.argv.join(" ")}` : "";
  const routeList = ROUTES.map((route) => `\`${route.name}\` (\`--types ${route.types}\`)`);
  const text = [
    ...header(
      `\`npm run build && npm run bench:routes${args}\`${options.quick ? " (`--quick`: a small burst, one repeat, not for comparison)" : ""}`,
      input,
      [input.loadAtStart, input.loadAtEnd],
      "",
      "the sender, the fake Chat and serve",
      `${repeats.length} routed burst(s) of ${int(options.events)} events, each followed by each share of ${int(share)} sent alone; the median, with the range across repeats in brackets`,
    ),
    "",
    table(
      [
        ...["route → space", "events", "**its last event visible (s)**"],
        ...["the same share sent alone (s)", "messages Chat accepted", "posts (429s included)"],
        ...["**429s**", "most events in one message", "shortest gap between two posts (s)"],
      ],
      spaceRows,
    ),
    "",
    table(["the whole burst", "figure", "target"], summaryRows),
    "",
    summary(),
    ...(answers.size
      ? [
          "",
          `Answers other than 2xx the sender got, and requests without an answer (all sessions; each retried or final): ${answerList}`,
        ]
      : []),
    "",
    "Method:",
    "",
    `- Routes: a fresh config directory per session, set up with the CLI as a user does it: \`printf '%s\\n' URL | vast-gchat route add NAME --types LIST --chat-url-stdin --no-chat-check\` for ${routeList.join(", ")} (\`default\` with \`--replace\`: a fresh set-up reads as \`default\`, types all, which would take every event too), secrets in the file store, no API key (so no webhook is updated). Each route is a different space of one fake Chat that takes ${config.burstChatRate} message(s) a second per space: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.burstChatDelayMs} ms.`,
    `- serve: \`node bin/vast-gchat.js serve\` on that directory with GOOGLE_CHAT_URL (\`default\`'s URL) and VAST_WEBHOOK_SECRET, its defaults otherwise (a worker per route: 1 message/s per space, digests on); a fresh serve and fake Chat for every session.`,
    `- Burst: ${int(options.events)} signed deliveries with unique subjects (\`burst 0001\`…), of the types ${ROUTES.map((route) => `\`${route.eventType}\``).join(", ")} in turn, a third going to each route, sent by bench/burst.ts's Vast.ai-like sender: at most ${config.burstConcurrency} requests in flight; an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s, is sent again after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter, up to ${config.burstMaxAttempts} attempts.`,
    `- Visible: an event counts once its subject appears in the \`fallbackText\` of a message the fake Chat accepted in its route's space; times run from the first send. Once every event is visible the watch waits until Chat has had no post for ${QUIET_MS / 1000} s (at most ${MAX_SETTLE_MS / 1000} s) and then counts messages, posts, events in another route's space and events shown twice. 429s per space are its posts less the messages it accepted (the fake refused none as malformed unless "Chat 400" is listed above). The shortest gap is between two posts arriving at one space, as the bench saw them. Sessions are capped at ${config.burstOursCapSeconds} s.`,
    "- Shares alone: in each repeat, after the routed burst, each route's share (the same events of its one type) is sent alone to a fresh serve with the same routes and a fresh fake Chat. The largest share is the slowest of the three, the sum their total: the time if the spaces were served one after another, as one paced worker would. The ratios are taken per repeat, then their median.",
    "",
  ].join("\n");
  return { text, correct: correct() };
}
