import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  MAX_BODY_BYTES,
  MAX_TEXT_LENGTH,
  type MessageFormat,
  renderMessage,
} from "../../src/chat/render.js";
import { renderDigest } from "../../src/chat/render-digest.js";
import { parseEvent, type VastEvent } from "../../src/vast/event.js";
import { KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { checkChatMessage } from "../support/chat-schema/check.js";
import { hostileEvent } from "../support/hostile-events.js";

/**
 * Every message the renderer can make, held against Google's own definition of a Chat message
 * (test/support/chat-schema, built from googleapis' protos) and Chat's size limits; and none of it
 * lets an event's text mention, link or format. Hostile events come from fast-check: any UTF-16
 * (lone surrogates and bidirectional controls included), Chat and Markdown markup, mentions, huge
 * fields, fields missing or of the wrong type.
 */
const FORMATS: MessageFormat[] = ["card", "text"];

/** Tags our own card HTML uses; anything else that looks like a tag came from an event. */
const OUR_TAGS = /<br>|<\/?b>|<font color="#[0-9a-f]{6}">|<\/font>/g;

function expectAcceptable(message: ChatMessage): void {
  expect(checkChatMessage(message)).toEqual([]);
  expect(Buffer.byteLength(JSON.stringify(message), "utf8")).toBeLessThanOrEqual(MAX_BODY_BYTES);
  if (message.text !== undefined) expect(message.text.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
  if (message.fallbackText !== undefined) {
    expect(message.fallbackText.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
  }
}

/**
 * Nothing in `text` can mention, link or format, under Chat's markup or Markdown: no markup
 * character, no URL scheme or `www.` for the auto-linker, and `_` only inside a word, where neither
 * syntax reads it. Card HTML carries no tag but ours.
 */
function expectInert(message: ChatMessage): void {
  if (message.text !== undefined) {
    const text = message.text.replace(/ \(truncated, [\d,]+ more characters?\)$/, "");
    expect(text).not.toMatch(/[*~`<>[\]#\\]/);
    expect(text).not.toMatch(/:\/\/|\bwww\./i);
    expect(text).not.toMatch(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/u);
  }
  for (const card of message.cardsV2 ?? []) {
    for (const section of card.card.sections) {
      for (const widget of section.widgets) {
        const html =
          "textParagraph" in widget
            ? widget.textParagraph.text
            : "decoratedText" in widget
              ? widget.decoratedText.text
              : "";
        expect(html.replace(OUR_TAGS, "")).not.toMatch(/[<>]/);
      }
    }
  }
}

function digestsOf(event: VastEvent, format: MessageFormat): ChatMessage {
  const items = ["a", "b", "c"].map((suffix) => ({ eventId: `digest-${suffix}`, event }));
  return renderDigest(items, format).message;
}

describe("every message the renderer makes", () => {
  const types = [...KNOWN_EVENT_TYPES.keys(), "some_new_type", "host:disk_failing"];

  it.each(types)("%s: single and digest, card and text, is a valid Chat message", (type) => {
    const event = sampleEvent(type);
    for (const format of FORMATS) {
      const single = renderMessage(event, { eventId: String(event.event_id), format });
      expectAcceptable(single);
      expectInert(single);
      const digest = digestsOf(event, format);
      expectAcceptable(digest);
      expectInert(digest);
    }
  });
});

/** As the adapter sees it: the signed body's bytes, parsed. */
function asDelivered(raw: Record<string, unknown>): { eventId: string; event: VastEvent } {
  const parsed = parseEvent(Buffer.from(JSON.stringify(raw), "utf8"));
  if (!parsed.ok) throw new Error("a JSON object always parses");
  return { eventId: parsed.eventId, event: parsed.event };
}

describe("hostile events (fast-check)", () => {
  it("always make a valid, inert message that fits, single or digest, card or text", () => {
    fc.assert(
      fc.property(hostileEvent, (raw) => {
        const { eventId, event } = asDelivered(raw);
        for (const format of FORMATS) {
          const single = renderMessage(event, { eventId, format });
          expectAcceptable(single);
          expectInert(single);
          const digest = digestsOf(event, format);
          expectAcceptable(digest);
          expectInert(digest);
        }
      }),
      { numRuns: 300 },
    );
  });
});
