import type { VastEvent } from "../vast/event.js";
import {
  cutCodePoints,
  escapeCardHtml,
  escapeChatText,
  fitEscaped,
  sanitize,
  utf8Length,
} from "./escape.js";
import {
  type CardSection,
  type ChatMessage,
  MAX_BODY_BYTES,
  MAX_TEXT_LENGTH,
  type MessageFormat,
  renderMessage,
  typeInfoOf,
} from "./render.js";

/**
 * Several waiting events as one Chat message, so a burst reaches a space in a handful of posts
 * instead of being lost to 429s (Chat takes about one message a second per space). Every event's
 * subject stays visible; messages are shortened first, and events that do not fit are left for the
 * next digest rather than cut out. In the text format the digest is text too: a list, one line an
 * event, every markup character from the events defused.
 */
export interface DigestItem {
  eventId: string;
  event: VastEvent;
}

export interface Digest {
  message: ChatMessage;
  /** The events the message carries, a prefix of those given. */
  carried: DigestItem[];
}

/** What the renderer aims for, with headroom under Chat's 32,000 bytes (see render.ts). */
const BODY_BYTES_TARGET = 30_000;
const SUBJECT_LENGTH = 200;
const MESSAGE_LENGTH = 300;
const SUBTITLE_LENGTH = 200;
const DEFAULT_SUBJECT = "Vast.ai notification";

function subjectOf(item: DigestItem): string {
  return sanitize(item.event.subject ?? "") || DEFAULT_SUBJECT;
}

function section(item: DigestItem): CardSection {
  const info = typeInfoOf(item.event);
  const mark = info.severity === "warning" ? "⚠️" : "ℹ️";
  const subject = fitEscaped(subjectOf(item), SUBJECT_LENGTH, escapeCardHtml, length);
  const message = fitEscaped(
    sanitize(item.event.message ?? ""),
    MESSAGE_LENGTH,
    escapeCardHtml,
    length,
  );
  const label = `<font color="#80868b">${escapeCardHtml(`${info.name} · ${info.group}`)}</font>`;
  return {
    widgets: [
      {
        textParagraph: {
          text: `${mark} <b>${subject}</b><br>${label}${message ? `<br>${message}` : ""}`,
        },
      },
    ],
  };
}

/** One line an event: its subject, cut, and its type's name; `defuse` makes it markup or plain. */
function line(item: DigestItem, defuse: (text: string) => string): string {
  const subject = fitEscaped(subjectOf(item).replace(/\n+/g, " "), SUBJECT_LENGTH, defuse, length);
  return `• ${subject} (${defuse(typeInfoOf(item.event).name)})`;
}

/** "3 Low credit, 2 Instance stopped": what the burst was about, at a glance. */
function countsByType(items: DigestItem[]): string {
  const counts = new Map<string, number>();
  for (const item of items) {
    const name = typeInfoOf(item.event).name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, count]) => `${count} ${name}`).join(", ");
}

/** The list as text: the title and summary, then one line an event. */
function listText(items: DigestItem[], defuse: (text: string) => string): string {
  const heading = `${items.length} Vast.ai notifications: ${defuse(countsByType(items))}`;
  return `${heading}\n\n${items.map((item) => line(item, defuse)).join("\n")}`;
}

function buildCard(items: DigestItem[]): ChatMessage {
  // fallbackText is plain text, shown as it is: sanitised, not escaped (message.proto).
  const fallbackText = fitEscaped(listText(items, same), MAX_TEXT_LENGTH, same, length);
  const first = items[0]?.eventId ?? "digest";
  return {
    fallbackText,
    cardsV2: [
      {
        cardId: `vast-digest-${first}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64),
        card: {
          header: {
            title: `${items.length} Vast.ai notifications`,
            subtitle: cutCodePoints(countsByType(items), SUBTITLE_LENGTH),
          },
          sections: items.map(section),
        },
      },
    ],
  };
}

/** Whether the message fits: under the byte target, and a text list whole (never cut). */
function fitsWithin(message: ChatMessage, textLength: number): boolean {
  if (message.text !== undefined && message.text.length > textLength) return false;
  return utf8Length(JSON.stringify(message)) <= Math.min(BODY_BYTES_TARGET, MAX_BODY_BYTES);
}

function buildPlain(items: DigestItem[], format: MessageFormat): ChatMessage {
  return format === "text" ? { text: listText(items, escapeChatText) } : buildCard(items);
}

/**
 * The largest prefix of `items` whose digest fits Chat's limits. A prefix of one is that event's
 * own message: it fits where a digest of it might not (a huge type name in the header).
 * `reservedText` characters of the text are left free for what goes above it (a route's mentions,
 * chat/mentions.ts), so adding them can never cut a listed event out of the message.
 */
export function renderDigest(
  items: DigestItem[],
  format: MessageFormat = "card",
  reservedText = 0,
): Digest {
  const build = (some: DigestItem[]) => buildPlain(some, format);
  const fits = (message: ChatMessage) => fitsWithin(message, MAX_TEXT_LENGTH - reservedText);
  let count = items.length;
  let message = build(items);
  while (count > 1 && !fits(message)) {
    // Shrink in proportion, then by one: a few tries, not one per event.
    const over = Math.max(
      utf8Length(JSON.stringify(message)) / BODY_BYTES_TARGET,
      (message.text?.length ?? 0) / MAX_TEXT_LENGTH,
    );
    count = Math.max(1, Math.min(count - 1, Math.floor(count / over)));
    message = build(items.slice(0, count));
  }
  const [head] = items;
  if (count === 1 && head) {
    return {
      message: renderMessage(head.event, { eventId: head.eventId, format }),
      carried: [head],
    };
  }
  return { message, carried: items.slice(0, count) };
}

function same(value: string): string {
  return value;
}

function length(value: string): number {
  return value.length;
}
