import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mentionLine, withMentions } from "../../src/chat/mentions.js";
import {
  type ChatMessage,
  MAX_BODY_BYTES,
  MAX_TEXT_LENGTH,
  type MessageFormat,
  renderMessage,
} from "../../src/chat/render.js";
import { renderDigest } from "../../src/chat/render-digest.js";
import { MAX_MENTIONS, parseMention } from "../../src/route-syntax.js";
import { parseEvent } from "../../src/vast/event.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { checkChatMessage } from "../support/chat-schema/check.js";
import { hostileEvent } from "../support/hostile-events.js";

/**
 * A route's mentions in its messages (README, "Routes"): written the way Chat's incoming webhooks
 * mention people, `<users/ID>` and `<users/all>`, in `text`; taken only from the configuration, so
 * no event can mention anyone, whatever its text holds.
 */
const FORMATS: MessageFormat[] = ["card", "text"];
const MENTION = /<users\/(?:all|[0-9]+)>/g;

/**
 * The mentions Chat would make of a message: those in `text`, the only field it reads them from
 * (docs/google-chat.md). Card headers and `fallbackText` are plain text, shown as they are
 * (card.proto, message.proto), where `<users/all>` is only characters; card HTML has `&lt;`.
 */
function mentionsIn(message: ChatMessage): string[] {
  return [...(message.text ?? "").matchAll(MENTION)].map((match) => match[0]);
}

function expectAcceptable(message: ChatMessage): void {
  expect(checkChatMessage(message)).toEqual([]);
  expect(Buffer.byteLength(JSON.stringify(message), "utf8")).toBeLessThanOrEqual(MAX_BODY_BYTES);
  expect(message.text?.length ?? 0).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
}

describe("withMentions", () => {
  const event = sampleEvent("instance_stopped");

  it("opens a text message with the mentions, on a line of their own", () => {
    const plain = renderMessage(event, { eventId: event.event_id, format: "text" });
    const message = withMentions(plain, ["users/123456789", "all"]);
    expect(message.text).toBe(`<users/123456789> <users/all>\n${plain.text}`);
    expect(message.thread).toEqual(plain.thread);
    expectAcceptable(message);
  });

  it("gives a card message a text of the mentions alone, which Chat shows above the card", () => {
    const card = renderMessage(event, { eventId: event.event_id, format: "card" });
    expect(card.text).toBeUndefined();
    const message = withMentions(card, ["users/42"]);
    expect(message).toEqual({ ...card, text: "<users/42>" });
    expectAcceptable(message);
  });

  it("leaves a message as it is when the route mentions nobody", () => {
    const card = renderMessage(event, { eventId: event.event_id, format: "card" });
    expect(withMentions(card, [])).toBe(card);
  });

  it("writes each mention once, in the order given, users/all as all", () => {
    expect(mentionLine(["users/1", "all", "users/1", "users/all"])).toBe("<users/1> <users/all>");
  });

  it("refuses anything that is not a mention, so none can be made from other text", () => {
    for (const bad of ["<users/all>", "users/1> <users/all", "alice", "users/", ""]) {
      expect(() => withMentions({ text: "x" }, [bad])).toThrow(/Not a mention/);
    }
    const many = Array.from({ length: MAX_MENTIONS + 1 }, (_, i) => `users/${i + 1}`);
    expect(() => mentionLine(many)).toThrow(/At most/);
  });

  it("still fits Chat's limits with the most mentions a route may have on the largest message", () => {
    const most = Array.from(
      { length: MAX_MENTIONS },
      (_, i) => `users/${String(i).padStart(30, "9")}`,
    );
    const huge = { ...event, subject: "s".repeat(5000), message: "m&<".repeat(40_000) };
    for (const format of FORMATS) {
      const single = withMentions(renderMessage(huge, { eventId: "e1", format }), most);
      expectAcceptable(single);
      expect(mentionsIn(single)).toHaveLength(MAX_MENTIONS);
      const items = ["a", "b", "c", "d"].map((id) => ({ eventId: id, event: huge }));
      const digest = withMentions(renderDigest(items, format).message, most);
      expectAcceptable(digest);
    }
  });

  it("never cuts a listed event out of a text digest: the mentions are part of its fit", () => {
    const most = Array.from(
      { length: MAX_MENTIONS },
      (_, i) => `users/${String(i).padStart(30, "9")}`,
    );
    // Enough events that the list alone nearly fills Chat's text limit.
    const items = Array.from({ length: 50 }, (_, i) => ({
      eventId: `e${i}`,
      event: { ...event, subject: `subject ${String(i).padStart(2, "0")} ${"x".repeat(60)}` },
    }));
    // As the adapter does it: the digest leaves room for the mention line, then gets it.
    const digest = renderDigest(items, "text", mentionLine(most).length + 1);
    const message = withMentions(digest.message, most);
    expectAcceptable(message);
    expect(mentionsIn(message)).toHaveLength(MAX_MENTIONS);
    expect(digest.carried.length).toBeGreaterThan(1);
    // Every event the digest says it carries is in its text, whole.
    for (const item of digest.carried) expect(message.text).toContain(item.event.subject);
    // Without the room, the mentions would have cut the last of them off.
    const unreserved = withMentions(renderDigest(items, "text").message, most);
    expect(unreserved.text).not.toContain(items.at(-1)?.event.subject);
  });

  it("agrees with the grammar on every string: a mention renders, anything else throws", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^users\/[0-9a-z<>]{0,32}$/)),
        (value) => {
          if (parseMention(value) === undefined) {
            expect(() => mentionLine([value])).toThrow(/Not a mention/);
          } else expect(mentionLine([value])).toMatch(/^<users\/(all|[0-9]{1,30})>$/);
        },
      ),
    );
  });
});

describe("mentions from hostile events (fast-check)", () => {
  const configured = fc.uniqueArray(
    fc.oneof(
      fc.constant("all"),
      fc.stringMatching(/^[1-9][0-9]{0,20}$/).map((id) => `users/${id}`),
    ),
    { maxLength: 5 },
  );

  it("a message mentions exactly the route's people: never anyone an event names", () => {
    fc.assert(
      fc.property(hostileEvent, configured, (raw, mentions) => {
        const parsed = parseEvent(Buffer.from(JSON.stringify(raw), "utf8"));
        if (!parsed.ok) throw new Error("a JSON object always parses");
        const expected = mentions.map((m) => `<users/${m === "all" ? "all" : m.slice(6)}>`);
        for (const format of FORMATS) {
          const rendered = renderMessage(parsed.event, { eventId: parsed.eventId, format });
          // Without mentions configured, an event's `<users/all>` stays a look-alike.
          expect(mentionsIn(rendered)).toEqual([]);
          const message = withMentions(rendered, mentions);
          expect(mentionsIn(message)).toEqual(expected);
          expectAcceptable(message);
        }
      }),
      { numRuns: 200 },
    );
  });
});
