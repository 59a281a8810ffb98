import type { SenderStats } from "./burst.js";
import type { BenchConfig } from "./config.js";
import type { MachineInfo } from "./machine.js";
import { median } from "./report.js";

/** The routed burst's document (bench-routes-results.json) and its report (bench/routes-burst.ts). */
export interface RouteSpec {
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

export interface SessionResult {
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
export const QUIET_MS = 2000;
export const MAX_SETTLE_MS = 10_000;

export interface Repeat {
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

export interface Rendered {
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

export function renderRoutes(input: RoutesInput): Rendered {
  return render(input.repeats, input.options, input.machine, {
    startedAt: new Date(input.startedAt),
    durationS: input.durationS,
    loadAtStart: input.loadAtStart,
    loadAtEnd: input.loadAtEnd,
  });
}
