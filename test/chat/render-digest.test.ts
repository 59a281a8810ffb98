import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, MAX_TEXT_LENGTH } from "../../src/chat/render.js";
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
    expect(digest.message.fallbackText).not.toMatch(/<users\/all>|\*x\*/);
  });
});
