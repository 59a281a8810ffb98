import type { VastEvent } from "../vast/event.js";
import { describeEventType } from "../vast/event-types.js";
import { escapeCardHtml, escapeChatText, fitEscaped, sanitize, utf8Length } from "./escape.js";
import { type CardSection, type ChatMessage, MAX_BODY_BYTES, MAX_TEXT_LENGTH } from "./render.js";

/**
 * Several waiting events as one Chat message, so a burst reaches a space in a handful of posts
 * instead of being lost to 429s (Chat takes about one message a second per space). Every event's
 * subject stays visible; messages are shortened first, and events that do not fit are left for the
 * next digest rather than cut out.
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
const DEFAULT_SUBJECT = "Vast.ai notification";

function subjectOf(item: DigestItem): string {
  return sanitize(item.event.subject ?? "") || DEFAULT_SUBJECT;
}

function section(item: DigestItem): CardSection {
  const info = describeEventType(item.event.notif_type);
  const mark = info.severity === "warning" ? "⚠️" : "ℹ️";
  const subject = fitEscaped(subjectOf(item), SUBJECT_LENGTH, escapeCardHtml, (t) => t.length);
  const message = fitEscaped(
    sanitize(item.event.message ?? ""),
    MESSAGE_LENGTH,
    escapeCardHtml,
    (t) => t.length,
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

function textLine(item: DigestItem): string {
  const info = describeEventType(item.event.notif_type);
  return `• ${escapeChatText(subjectOf(item))} (${escapeChatText(info.name)})`;
}

/** "3 Low credit, 2 Instance stopped": what the burst was about, at a glance. */
function countsByType(items: DigestItem[]): string {
  const counts = new Map<string, number>();
  for (const item of items) {
    const name = describeEventType(item.event.notif_type).name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, count]) => `${count} ${name}`).join(", ");
}

function build(items: DigestItem[]): ChatMessage {
  const title = `${items.length} Vast.ai notifications`;
  const summary = countsByType(items);
  const lines = items.map(textLine);
  const fallbackText = fitEscaped(
    `${title}: ${summary}\n\n${lines.join("\n")}`,
    MAX_TEXT_LENGTH,
    (t) => t,
    (t) => t.length,
  );
  const first = items[0]?.eventId ?? "digest";
  return {
    fallbackText,
    cardsV2: [
      {
        cardId: `vast-digest-${first}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64),
        card: {
          header: { title, subtitle: summary.slice(0, 200) },
          sections: items.map(section),
        },
      },
    ],
  };
}

/** The largest prefix of `items` (at least one) whose digest fits Chat's size limit. */
export function renderDigest(items: DigestItem[]): Digest {
  let count = items.length;
  let message = build(items);
  while (
    count > 1 &&
    utf8Length(JSON.stringify(message)) > Math.min(BODY_BYTES_TARGET, MAX_BODY_BYTES)
  ) {
    // Shrink in proportion, then by one: a few tries, not one per event.
    const size = utf8Length(JSON.stringify(message));
    count = Math.max(1, Math.min(count - 1, Math.floor((count * BODY_BYTES_TARGET) / size)));
    message = build(items.slice(0, count));
  }
  return { message, carried: items.slice(0, count) };
}
