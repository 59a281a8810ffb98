import type { VastEvent } from "../vast/event.js";
import { describeEventType, type EventTypeInfo } from "../vast/event-types.js";
import {
  cutCodePoints,
  escapeCardHtml,
  escapeChatIdentifier,
  escapeChatText,
  fitEscaped,
  jsonStringBytes,
  oneLine,
  sanitize,
  utf8Length,
} from "./escape.js";

/**
 * A Vast.ai event as a Google Chat message (docs/google-chat.md): a card with a plain-text
 * fallback, or the tutorial's plain text alone. Pure: no I/O, the same event gives the same JSON.
 */
export type MessageFormat = "card" | "text";

export interface RenderOptions {
  /** The event's dedupe key (`parseEvent().eventId`). */
  eventId: string;
  format: MessageFormat;
}

export type CardIcon = { knownIcon: string };
export type CardWidget =
  | { textParagraph: { text: string } }
  | {
      decoratedText: { text: string; topLabel?: string; startIcon?: CardIcon; wrapText?: boolean };
    }
  | { buttonList: { buttons: Array<{ text: string; onClick: { openLink: { url: string } } }> } };
export type CardSection = { widgets: CardWidget[] };
export type Card = { header: { title: string; subtitle: string }; sections: CardSection[] };

/**
 * The JSON body POSTed to the Chat webhook. A card message carries its plain-text version in
 * `fallbackText` (what Chat shows where cards cannot be: mobile notifications, some clients), not
 * in `text`, which Chat would show above the card and so say everything twice. `fallbackText` is
 * plain text (message.proto), shown as it is: no markup, so no look-alikes either.
 */
export interface ChatMessage {
  text?: string;
  fallbackText?: string;
  cardsV2?: Array<{ cardId: string; card: Card }>;
  thread?: { threadKey: string };
}

/** The message as plain text, whichever field carries it. */
export function plainTextOf(message: ChatMessage): string {
  return message.text ?? message.fallbackText ?? "";
}

/** Chat has refused `text` over 4,096 characters; keep a margin (docs/google-chat.md, "Size"). */
export const MAX_TEXT_LENGTH = 4000;
/** Chat's documented cap on a whole message. */
export const MAX_BODY_BYTES = 32_000;
/**
 * What the renderer aims for: Google counts the message in its own encoding, not our JSON, so
 * leave headroom under MAX_BODY_BYTES rather than fill it to the byte.
 */
const BODY_BYTES_TARGET = 31_000;
/** How deep a payload without a message is shown before `…` (see sortedJson). */
const MAX_JSON_DEPTH = 16;
/** A subject is one line in a card header; past this it is cut, in the card and in `text`. */
const MAX_SUBJECT_LENGTH = 300;
const MAX_SUBTITLE_LENGTH = 200;
/** Identifiers are short in practice; these caps only bound what a broken sender could do. */
const MAX_TYPE_LENGTH = 100;
const MAX_EVENT_ID_LENGTH = 200;
const MAX_CARD_ID_LENGTH = 64;

const DEFAULT_SUBJECT = "Vast.ai notification";
const TEST_TITLE = "✅ Test event received";
const TEST_LEAD = "The chain Vast.ai → vast-gchat → Google Chat works.";
const TEST_QUOTE = "Vast.ai said: ";
const WARNING_MARK = "⚠️";
const INFO_MARK = "ℹ️";
/** Google's own red and green (Material palette) read well on light and dark themes. */
const WARNING_LABEL = '<font color="#d93025"><b>Needs attention</b></font>';
const MUTED = "#80868b";
const SUCCESS = "#188038";

const BUTTON_LABELS: Readonly<Record<string, string>> = {
  "/instances/": "Open instances",
  "/billing/": "Open billing",
  "/account/": "Open account",
  "/manage-keys/": "Open API keys",
  "/host/machines/": "Open machines",
};

/** What both formats show, sanitised, before escaping and cutting. */
interface Content {
  info: EventTypeInfo;
  isTest: boolean;
  /** Shown as the first line of `text` and, with a severity mark, as the card title. */
  title: string;
  /** Text from Vast.ai: the message, or the payload as JSON when there is none. May be empty. */
  body: string;
  /** The type as sent, one line and capped; empty when there is none. */
  type: string;
  /** The event id, one line and capped. */
  eventId: string;
}

/** How `text` is written: Chat markup with every markup character from the event defused, or plain. */
interface TextStyle {
  text: (value: string) => string;
  identifier: (value: string) => string;
}
const MARKUP: TextStyle = { text: escapeChatText, identifier: escapeChatIdentifier };
const PLAIN: TextStyle = { text: same, identifier: same };

/**
 * The event's type, made safe for every place it is shown (card title, subtitle, digest summary):
 * no control, bidirectional or lone surrogate character, one line, at most MAX_TYPE_LENGTH.
 */
export function typeInfoOf(event: VastEvent): EventTypeInfo {
  const type = event.notif_type === undefined ? undefined : safeIdentifier(event.notif_type);
  return describeEventType(type);
}

export function renderMessage(event: VastEvent, options: RenderOptions): ChatMessage {
  const content = describeContent(event, options.eventId);
  const text = renderText(content, MARKUP);
  const threadKey = threadKeyFor(event);
  const plain: ChatMessage = threadKey === undefined ? { text } : { text, thread: { threadKey } };
  if (options.format === "text") return plain;

  const withBody = (body: string): ChatMessage => {
    const cardsV2 = [
      {
        cardId: cardIdFor(options.eventId),
        card: buildCard(event, content, body),
      },
    ];
    const fallbackText = renderText(content, PLAIN);
    return threadKey === undefined
      ? { fallbackText, cardsV2 }
      : { fallbackText, cardsV2, thread: { threadKey } };
  };
  // Measure the message with an empty body, then give the body whatever room is left.
  const budget = BODY_BYTES_TARGET - bodyBytes(withBody(""));
  const message = withBody(fitEscaped(content.body, budget, escapeCardHtml, jsonStringBytes));
  // Cannot happen with the caps above; if it ever did, the text alone still gets through.
  return bodyBytes(message) < MAX_BODY_BYTES ? message : plain;
}

/**
 * Events naming the same instance or machine share a Chat thread. Vast.ai sends no instance id
 * field (docs/vast-api.md, "A delivery"), so the number is read from the subject, then the message:
 * "Instance 1234567", "instance #1234567", "instance ID: 1234567", "machine 98765".
 */
export function threadKeyFor(event: VastEvent): string | undefined {
  for (const text of [event.subject, event.message]) {
    const match = text === undefined ? null : NUMBERED_INSTANCE_OR_MACHINE.exec(text);
    if (match?.[1] !== undefined && match[2] !== undefined) {
      const number = match[2].replace(/^0+(?=\d)/, "");
      return `vast-${match[1].toLowerCase()}-${number}`;
    }
  }
  return undefined;
}

const NUMBERED_INSTANCE_OR_MACHINE =
  /\b(instance|machine)(?:\s+(?:id|no\.?|number))?\s*[#:]?\s*(\d{1,20})(?!\w)/i;

function describeContent(event: VastEvent, eventId: string): Content {
  const info = typeInfoOf(event);
  const isTest = info.slug === "webhook_test";
  const message = sanitize(event.message ?? "");
  // The tutorial's fallbacks: `payload.get("subject") or ...`, `payload.get("message") or ...`.
  const title = isTest ? TEST_TITLE : sanitize(event.subject ?? "") || DEFAULT_SUBJECT;
  const body = isTest ? message : message || sanitize(sortedJson(event));
  const type = event.notif_type ? safeIdentifier(event.notif_type) : "";
  return { info, isTest, title, body, type, eventId: safeIdentifier(eventId, MAX_EVENT_ID_LENGTH) };
}

/**
 * The tutorial's layout: subject, blank line, message, blank line, `type=... event_id=...`.
 * The test event says the chain works, then quotes what Vast.ai sent.
 */
function renderText(content: Content, style: TextStyle): string {
  const title = fitEscaped(content.title, MAX_SUBJECT_LENGTH, style.text, length);
  const lead = content.isTest ? `${TEST_LEAD}${content.body ? `\n${TEST_QUOTE}` : ""}` : "";
  const details: string[] = [];
  if (content.type) details.push(`type=${style.identifier(content.type)}`);
  if (content.eventId) details.push(`event_id=${style.identifier(content.eventId)}`);
  const tail = details.length ? `\n\n${details.join(" ")}` : "";
  const room = MAX_TEXT_LENGTH - title.length - 2 - lead.length - tail.length;
  const body = fitEscaped(content.body, room, style.text, length);
  return `${title}\n\n${lead}${body}${tail}`;
}

function buildCard(event: VastEvent, content: Content, bodyHtml: string): Card {
  const { info } = content;
  const mark = content.isTest ? "" : `${info.severity === "warning" ? WARNING_MARK : INFO_MARK} `;
  const widgets: CardWidget[] = [{ textParagraph: { text: paragraphHtml(content, bodyHtml) } }];
  const time = formatTime(event.timestamp);
  if (time !== undefined) {
    widgets.push({
      decoratedText: { topLabel: "Event time", text: time, startIcon: { knownIcon: "CLOCK" } },
    });
  }
  if (content.eventId) {
    const id = escapeCardHtml(content.eventId);
    widgets.push({
      // Without wrapText a decoratedText is cut to one line, and a long id with it.
      decoratedText: {
        topLabel: "Event ID",
        text: `<font color="${MUTED}">${id}</font>`,
        wrapText: true,
      },
    });
  }
  widgets.push({
    buttonList: {
      buttons: [
        { text: buttonLabel(info.consoleUrl), onClick: { openLink: { url: info.consoleUrl } } },
      ],
    },
  });
  return {
    header: {
      // Header fields are plain text: no markup to escape, but one line and a sane length.
      title:
        mark + fitEscaped(oneLine(content.title), MAX_SUBJECT_LENGTH - mark.length, same, length),
      subtitle: cutCodePoints(`${info.name} · ${info.group}`, MAX_SUBTITLE_LENGTH),
    },
    sections: [{ widgets }],
  };
}

function paragraphHtml(content: Content, bodyHtml: string): string {
  if (content.isTest) {
    const lead = `<font color="${SUCCESS}"><b>${escapeCardHtml(TEST_LEAD)}</b></font>`;
    return content.body ? `${lead}<br>${escapeCardHtml(TEST_QUOTE)}${bodyHtml}` : lead;
  }
  return content.info.severity === "warning" ? `${WARNING_LABEL}<br>${bodyHtml}` : bodyHtml;
}

/** Float Unix seconds as "2026-03-02 22:20:00 UTC"; undefined when absent or out of range. */
function formatTime(seconds: number | undefined): string | undefined {
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined;
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return undefined;
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(date.toISOString());
  return match ? `${match[1]} ${match[2]} UTC` : undefined;
}

function buttonLabel(url: string): string {
  const path = URL.canParse(url) ? new URL(url).pathname : "";
  return BUTTON_LABELS[path] ?? "Open Vast.ai console";
}

/** Stable per event, so a replay of the same event gets the same card id. */
function cardIdFor(eventId: string): string {
  return `vast-${eventId.replace(/[^A-Za-z0-9_-]/g, "-")}`.slice(0, MAX_CARD_ID_LENGTH);
}

/**
 * The payload as the tutorial shows it: JSON with sorted keys and Python's `, ` / `: `. Nesting
 * deeper than a person would read is shown as `…`: a body of thousands of nested brackets (still
 * under the size cap) would otherwise overflow the stack here.
 */
function sortedJson(value: unknown, depth = 0): string {
  const inner = (item: unknown) => (depth >= MAX_JSON_DEPTH ? "…" : sortedJson(item, depth + 1));
  if (Array.isArray(value)) return `[${value.map(inner).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}: ${inner(item)}`).join(", ")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** An identifier from the event (a type, an id): sanitised, one line, capped by code points. */
function safeIdentifier(value: string, max = MAX_TYPE_LENGTH): string {
  return cutCodePoints(oneLine(sanitize(value)), max);
}

function same(value: string): string {
  return value;
}

function length(value: string): number {
  return value.length;
}

function bodyBytes(message: ChatMessage): number {
  return utf8Length(JSON.stringify(message));
}
