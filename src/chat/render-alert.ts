import {
  cutCodePoints,
  escapeCardHtml,
  escapeChatIdentifier,
  escapeChatText,
  fitEscaped,
  jsonStringBytes,
  oneLine,
  sanitize,
} from "./escape.js";
import type { Card, CardWidget, ChatMessage, MessageFormat } from "./render.js";

/**
 * The adapter's own alerts about the chain (the webhook gone, the self-test failing, the tunnel
 * unreachable): what is wrong, since when, what to run; and, once it is over, that it is. In the
 * same two formats as events (render.ts): a card with a plain-text fallback, or text alone. The
 * summary may quote outside text (Vast.ai's or a tunnel's words, a URL), so it is escaped like an
 * event's; the title and the action are ours, and in the action a command between backticks is
 * shown as a command. An alert and its resolution share a thread.
 */
export interface Alert {
  state: "opened" | "resolved";
  /** Ours: what kind of trouble, a few words ("The Vast.ai webhook is gone"). */
  title: string;
  /** What is wrong, in sentences; may quote outside text. */
  summary: string;
  /** When the trouble began (ms since epoch). */
  since: number;
  /** When it was resolved (ms since epoch), for a resolution. */
  resolvedAt?: number;
  /** Ours: what to run or check; `command` between backticks. Shown while it lasts. */
  action?: string;
  /** Alerts about the same trouble share this thread. */
  threadKey: string;
}

/** Quoted outside text is cut well inside Chat's limits (docs/google-chat.md, "Size"). */
const MAX_SUMMARY_LENGTH = 1500;
const MAX_TITLE_LENGTH = 200;
const MAX_ACTION_LENGTH = 1000;
const OPENED_MARK = "🚨";
const RESOLVED_MARK = "✅";
const SUBTITLE = "vast-gchat · the chain from Vast.ai to this space";
const RED = "#d93025";
const GREEN = "#188038";

export function renderAlert(alert: Alert, format: MessageFormat): ChatMessage {
  const thread = { threadKey: cutCodePoints(alert.threadKey, 200) };
  const text = renderAlertText(alert, "markup");
  if (format === "text") return { text, thread };
  return {
    fallbackText: renderAlertText(alert, "plain"),
    cardsV2: [{ cardId: cardIdOf(alert), card: alertCard(alert) }],
    thread,
  };
}

function headline(alert: Alert): string {
  const title = cutCodePoints(oneLine(sanitize(alert.title)), MAX_TITLE_LENGTH);
  return alert.state === "opened"
    ? `${OPENED_MARK} ${title}`
    : `${RESOLVED_MARK} Resolved: ${title}`;
}

/** When, and for how long, in words. */
function timing(alert: Alert): string {
  if (alert.state === "opened" || alert.resolvedAt === undefined) {
    return `Since ${formatUtc(alert.since)}`;
  }
  return `From ${formatUtc(alert.since)} to ${formatUtc(alert.resolvedAt)} (${formatLasted(alert.resolvedAt - alert.since)})`;
}

function renderAlertText(alert: Alert, style: "markup" | "plain"): string {
  const markup = style === "markup";
  const escapeText = markup ? escapeChatText : same;
  const title = markup ? `*${escapeChatText(headline(alert))}*` : headline(alert);
  const summary = fitEscaped(sanitize(alert.summary), MAX_SUMMARY_LENGTH, escapeText, length);
  const lines = [title, summary, timing(alert)];
  if (alert.state === "opened" && alert.action) {
    lines.push(`What to do: ${actionText(alert.action, markup)}`);
  }
  return lines.join("\n");
}

/**
 * The action's prose escaped, its commands shown as commands: in Chat markup between backticks
 * (monospace; escaped as identifiers, so `vast-gchat init` stays as it is), in plain text as they are.
 */
function actionText(action: string, markup: boolean): string {
  const parts = splitCommands(cutCodePoints(sanitize(action), MAX_ACTION_LENGTH));
  if (!markup) return parts.map((part) => part.text).join("");
  return parts
    .map((part) =>
      part.command ? `\`${escapeChatIdentifier(part.text)}\`` : escapeChatText(part.text),
    )
    .join("");
}

function actionHtml(action: string): string {
  return splitCommands(cutCodePoints(sanitize(action), MAX_ACTION_LENGTH))
    .map((part) =>
      part.command ? `<b>${escapeCardHtml(part.text)}</b>` : escapeCardHtml(part.text),
    )
    .join("");
}

/** `run \`vast-gchat init\` here` as prose and commands; the backticks themselves are dropped. */
function splitCommands(action: string): Array<{ text: string; command: boolean }> {
  return action
    .split("`")
    .map((text, index) => ({ text, command: index % 2 === 1 }))
    .filter((part) => part.text !== "");
}

function alertCard(alert: Alert): Card {
  const opened = alert.state === "opened";
  const label = opened
    ? `<font color="${RED}"><b>Needs attention</b></font>`
    : `<font color="${GREEN}"><b>Resolved</b></font>`;
  const summary = fitEscaped(
    sanitize(alert.summary),
    MAX_SUMMARY_LENGTH,
    escapeCardHtml,
    jsonStringBytes,
  );
  const widgets: CardWidget[] = [{ textParagraph: { text: `${label}<br>${summary}` } }];
  widgets.push({
    decoratedText: {
      topLabel: opened ? "Since" : "Lasted",
      text: escapeCardHtml(timing(alert)),
      startIcon: { knownIcon: "CLOCK" },
      wrapText: true,
    },
  });
  if (opened && alert.action) {
    widgets.push({
      decoratedText: { topLabel: "What to do", text: actionHtml(alert.action), wrapText: true },
    });
  }
  return {
    header: { title: cutCodePoints(headline(alert), MAX_TITLE_LENGTH + 20), subtitle: SUBTITLE },
    sections: [{ widgets }],
  };
}

/** One card per alert: a resolution is another message than its opening. */
function cardIdOf(alert: Alert): string {
  const key = alert.threadKey.replace(/[^A-Za-z0-9_-]/g, "-");
  return `${key}-${alert.state}-${alert.since}`.slice(0, 64);
}

/** "2026-03-02 22:20:00 UTC". */
export function formatUtc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function formatLasted(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
  return `${Math.floor(hours / 24)} d${hours % 24 ? ` ${hours % 24} h` : ""}`;
}

function same(value: string): string {
  return value;
}

function length(value: string): number {
  return value.length;
}
