import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, MAX_TEXT_LENGTH, renderMessage } from "../../src/chat/render.js";
import { renderDigest } from "../../src/chat/render-digest.js";
import { sampleEvent } from "../../src/vast/sample-events.js";

function items(count: number, make: (i: number) => { subject: string; message?: string }) {
  return Array.from({ length: count }, (_, i) => {
    const event = sampleEvent(i % 2 ? "low_credit" : "instance_stopped", make(i));
    return { eventId: event.event_id, event };
  });
}

describe("renderDigest", () => {
  it("shows every event's subject, with counts by type, in one card", () => {
    const digest = renderDigest(items(30, (i) => ({ subject: `subject ${i}` })));
    expect(digest.carried).toHaveLength(30);
    const card = digest.message.cardsV2?.[0]?.card;
    expect(card?.header).toEqual({
      title: "30 Vast.ai notifications",
      subtitle: "15 Instance stopped, 15 Low credit",
    });
    expect(card?.sections).toHaveLength(30);
    for (let i = 0; i < 30; i++) expect(digest.message.fallbackText).toContain(`• subject ${i} (`);
    expect(digest.message.thread).toBeUndefined();
  });

  it("keeps under Chat's size limits by carrying fewer events, never by cutting one out", () => {
    const all = items(50, (i) => ({
      subject: `${i} ${"秘".repeat(190)}`,
      message: "密".repeat(400),
    }));
    const digest = renderDigest(all);
    expect(digest.carried.length).toBeGreaterThan(1);
    expect(digest.carried.length).toBeLessThan(50);
    expect(digest.carried).toEqual(all.slice(0, digest.carried.length));
    expect(Buffer.byteLength(JSON.stringify(digest.message))).toBeLessThan(MAX_BODY_BYTES);
    expect(digest.message.fallbackText?.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
    expect(digest.message.cardsV2?.[0]?.card.sections).toHaveLength(digest.carried.length);
  });

  it("escapes what Vast.ai wrote", () => {
    const digest = renderDigest(
      items(3, () => ({ subject: "<b>*x*</b> <users/all>", message: 'a & "b"' })),
    );
    const html = JSON.stringify(digest.message.cardsV2);
    expect(html).not.toContain("<users/all>");
    expect(html).toContain("&lt;b&gt;*x*&lt;/b&gt;");
    // fallbackText is plain text (nothing in it is read as markup): kept as written.
    expect(digest.message.fallbackText).toContain("• <b>*x*</b> <users/all> (");
  });

  it("escapes what Vast.ai wrote in the text format, summary line included", () => {
    const hostile = items(3, () => ({ subject: "[x](https://evil.example) <users/all> # *b*" }));
    for (const item of hostile) item.event.notif_type = "<users/all>";
    const digest = renderDigest(hostile, "text");
    expect(digest.message.cardsV2).toBeUndefined();
    const text = digest.message.text ?? "";
    expect(text.split("\n")[0]).toBe("3 Vast.ai notifications: 3 ‹users/all›");
    expect(text).not.toMatch(/[<>[\]#*]|https?:\/\//);
    expect(text.split("\n").filter((line) => line.startsWith("• "))).toHaveLength(3);
  });

  it("in the text format, carries only the events whose lines fit whole", () => {
    const all = items(50, (i) => ({ subject: `${i} ${"s".repeat(190)}` }));
    const digest = renderDigest(all, "text");
    const text = digest.message.text ?? "";
    expect(text.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
    expect(digest.carried.length).toBeGreaterThan(1);
    expect(text.split("\n").filter((line) => line.startsWith("• "))).toHaveLength(
      digest.carried.length,
    );
    expect(text).not.toContain("truncated");
  });

  it("cuts the subtitle by code points, never inside an emoji", () => {
    // 200 UTF-16 units would end between the two halves of an emoji.
    const digest = renderDigest(
      items(3, () => ({ subject: "s" })).map((item, i) => ({
        ...item,
        event: {
          ...item.event,
          notif_type: `${"a".repeat(60 + i)}😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀`,
        },
      })),
    );
    const subtitle = digest.message.cardsV2?.[0]?.card.header.subtitle ?? "";
    expect(subtitle).not.toMatch(
      /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/,
    );
    expect(Array.from(subtitle).length).toBeLessThanOrEqual(200);
  });

  it("sends one event that is too big as a digest as that event's own message", () => {
    const [one] = items(1, () => ({ subject: "s", message: "m" }));
    if (!one) throw new Error("no item");
    one.event.notif_type = "t".repeat(40_000);
    for (const format of ["card", "text"] as const) {
      const digest = renderDigest([one], format);
      expect(digest.message).toEqual(renderMessage(one.event, { eventId: one.eventId, format }));
      expect(Buffer.byteLength(JSON.stringify(digest.message))).toBeLessThan(MAX_BODY_BYTES);
    }
  });
});
