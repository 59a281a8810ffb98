import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  MAX_BODY_BYTES,
  MAX_TEXT_LENGTH,
  type MessageFormat,
  plainTextOf,
  renderMessage,
  threadKeyFor,
} from "../../src/chat/render.js";
import type { VastEvent } from "../../src/vast/event.js";
import { KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";
import { sampleEvent } from "../../src/vast/sample-events.js";

const EVENT_ID = "7e9a2c4e6f9e4a24a53b77c2d8e3f0aa";
const NOW = new Date("2026-03-02T22:20:00.123Z");
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MARKER = /… \(truncated, ([\d,]+) more characters?\)/;

/** A sample with a fixed id and time, so snapshots are stable. */
function sample(type: string, overrides: { subject?: string; message?: string } = {}): VastEvent {
  return { ...sampleEvent(type, { ...overrides, now: NOW }), event_id: EVENT_ID };
}

function render(event: VastEvent, format: MessageFormat = "card"): ChatMessage {
  return renderMessage(event, { eventId: EVENT_ID, format });
}

function card(message: ChatMessage) {
  const card = message.cardsV2?.[0]?.card;
  if (!card) throw new Error("no card in the message");
  return card;
}

/** Every string of the card's widgets, with the widget kind: what Chat reads as HTML. */
function widgetTexts(message: ChatMessage): string[] {
  return card(message).sections.flatMap((section) =>
    section.widgets.flatMap((widget) => {
      if ("textParagraph" in widget) return [widget.textParagraph.text];
      if ("decoratedText" in widget) return [widget.decoratedText.text];
      return [];
    }),
  );
}

function paragraph(message: ChatMessage): string {
  const first = card(message).sections[0]?.widgets[0];
  if (!first || !("textParagraph" in first)) throw new Error("the card does not start with text");
  return first.textParagraph.text;
}

function button(message: ChatMessage) {
  for (const widget of card(message).sections.flatMap((s) => s.widgets)) {
    if ("buttonList" in widget) return widget.buttonList.buttons[0];
  }
  return undefined;
}

function bodyBytes(message: ChatMessage): number {
  return Buffer.byteLength(JSON.stringify(message), "utf8");
}

describe("snapshots", () => {
  for (const slug of KNOWN_EVENT_TYPES.keys()) {
    it(`renders ${slug}`, () => {
      const event = sample(slug);
      const asCard = render(event, "card");
      const asText = render(event, "text");
      expect(asCard).toMatchSnapshot("card");
      expect(asText).toMatchSnapshot("text");
      expect(asCard.text).toBeUndefined();
      expect(asCard.fallbackText).toBe(asText.text);
    });
  }

  it("renders an unknown client type with a derived name", () => {
    const message = render(sample("referral_bonus"));
    expect(card(message).header.subtitle).toBe("Referral bonus · Other");
    expect(message).toMatchSnapshot("card");
    expect(render(sample("referral_bonus"), "text")).toMatchSnapshot("text");
  });

  it("renders an unknown host type with trouble words as a warning", () => {
    const message = render({ ...sample("disk_failure"), notif_type: "host:disk_failure" });
    expect(card(message).header).toEqual({
      title: "⚠️ Disk failure",
      subtitle: "Disk failure · Host",
    });
    expect(button(message)).toEqual({
      text: "Open machines",
      onClick: { openLink: { url: "https://cloud.vast.ai/host/machines/" } },
    });
    expect(message).toMatchSnapshot("card");
  });

  it("renders a payload with no subject and no message as the tutorial does", () => {
    const event: VastEvent = {
      event_id: EVENT_ID,
      user_id: 123,
      notif_type: "low_credit",
      timestamp: 1772490000.123,
    };
    const message = render(event);
    expect(plainTextOf(render(event, "text"))).toBe(
      "Vast.ai notification\n\n" +
        `{"event\u02CDid": "${EVENT_ID}", "notif\u02CDtype": "low\u02CDcredit", ` +
        `"timestamp": 1772490000.123, "user\u02CDid": 123}\n\n` +
        `type=low_credit event_id=${EVENT_ID}`,
    );
    expect(card(message).header.title).toBe("⚠️ Vast.ai notification");
    expect(message).toMatchSnapshot("card");
  });
});

describe("format text", () => {
  it("is the tutorial's layout exactly, with no card", () => {
    expect(render(sample("low_credit"), "text")).toStrictEqual({
      text:
        "Warning - Your Vast.ai Credit Balance Is Getting Low\n\n" +
        "Your Vast.ai balance is below your configured threshold.\n\n" +
        `type=low_credit event_id=${EVENT_ID}`,
    });
  });

  it("omits what the payload does not have", () => {
    const message = renderMessage({ message: "Hello." }, { eventId: "", format: "text" });
    expect(message).toStrictEqual({ text: "Vast.ai notification\n\nHello." });
    const noType = render({ subject: "S", message: "M" }, "text");
    expect(noType.text).toBe(`S\n\nM\n\nevent_id=${EVENT_ID}`);
  });

  it("keeps a thread key in format text", () => {
    expect(render(sample("outbid"), "text").thread).toEqual({
      threadKey: "vast-instance-1234567",
    });
  });
});

describe("card", () => {
  it("gives warnings a different look from information", () => {
    for (const info of KNOWN_EVENT_TYPES.values()) {
      if (info.slug === "webhook_test") continue;
      const message = render(sample(info.slug));
      const { title } = card(message).header;
      if (info.severity === "warning") {
        expect(title, info.slug).toMatch(/^⚠️ /);
        expect(paragraph(message), info.slug).toContain('<font color="#d93025">');
      } else {
        expect(title, info.slug).toMatch(/^ℹ️ /);
        expect(paragraph(message), info.slug).not.toContain("<font");
      }
    }
  });

  it("links each known type to its console page with a named button", () => {
    for (const info of KNOWN_EVENT_TYPES.values()) {
      const found = button(render(sample(info.slug)));
      expect(found?.onClick.openLink.url, info.slug).toBe(info.consoleUrl);
      expect(found?.text, info.slug).toMatch(/^Open (billing|instances|machines|account)$/);
    }
    expect(button(render(sample("low_credit")))?.text).toBe("Open billing");
    expect(button(render(sample("outbid")))?.text).toBe("Open instances");
  });

  it("shows the subject, the type's name and group, the time and the event id", () => {
    const message = render(sample("low_credit"));
    expect(card(message).header).toEqual({
      title: "⚠️ Warning - Your Vast.ai Credit Balance Is Getting Low",
      subtitle: "Low credit · Billing",
    });
    expect(widgetTexts(message)).toContain("2026-03-02 22:20:00 UTC");
    expect(widgetTexts(message)).toContain(`<font color="#80868b">${EVENT_ID}</font>`);
    expect(message.cardsV2?.[0]?.cardId).toBe(`vast-${EVENT_ID}`);
  });

  it("omits the time when the payload has none", () => {
    const { timestamp: _, ...event } = sample("instance_started");
    const message = render(event);
    expect(JSON.stringify(message)).not.toContain("Event time");
    expect(JSON.stringify(render(sample("instance_started")))).toContain("Event time");
  });

  it("makes a card id from any event id: short, and only safe characters", () => {
    const eventId = `sha256:${"ab".repeat(32)}`;
    const cardId = renderMessage(sample("outbid"), { eventId, format: "card" }).cardsV2?.[0]
      ?.cardId;
    expect(cardId).toMatch(/^vast-sha256-ab/);
    expect(cardId?.length).toBeLessThanOrEqual(64);
    expect(cardId).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("renders the test event as a clear confirmation", () => {
    const message = render(sample("webhook_test"));
    expect(card(message).header.title).toBe("✅ Test event received");
    expect(paragraph(message)).toContain("Vast.ai → vast-gchat → Google Chat works.");
    expect(plainTextOf(message)).toBe(
      "✅ Test event received\n\n" +
        "The chain Vast.ai → vast-gchat → Google Chat works.\n" +
        "Vast.ai said: This is a test notification from Vast.ai.\n\n" +
        `type=webhook_test event_id=${EVENT_ID}`,
    );
    const bare = render({ notif_type: "webhook_test" }, "text");
    expect(bare.text).toBe(
      "✅ Test event received\n\nThe chain Vast.ai → vast-gchat → Google Chat works.\n\n" +
        `type=webhook_test event_id=${EVENT_ID}`,
    );
  });
});

describe("escaping", () => {
  const hostile = sample("instance_created", {
    subject: "*_x_* ~y~ `z` <users/all> <https://evil|click>",
    message: '<b>hi</b> & "q"\n```fence``` _it_',
  });

  it("neutralises Chat markup in text", () => {
    const text = render(hostile, "text").text ?? "";
    const [subject, message] = text.split("\n\n");
    expect(text).not.toContain("<users/all>");
    expect(text).not.toContain("<https://");
    expect(text).not.toMatch(/[*~`<>]/);
    expect(`${subject}${message}`).not.toContain("_");
    // Still readable: the words are all there.
    expect(subject).toBe("∗ˍxˍ∗ ∼y∼ ˋzˋ ‹users/all› ‹https꞉//evil|click›");
    expect(message).toBe('‹b›hi‹/b› & "q"\nˋˋˋfenceˋˋˋ ˍitˍ');
  });

  it("neutralises Markdown too: links, headings, escapes, bold", () => {
    const markdown = sample("instance_created", {
      subject: "# Urgent **now**",
      message: "[click here](https://evil.example/x) \\*not bold\\* see www.evil.example",
    });
    const text = render(markdown, "text").text ?? "";
    expect(text).not.toMatch(/[[\]#\\*]/);
    expect(text).not.toMatch(/https?:\/\/|www\./);
    expect(text).toContain("＃ Urgent ∗∗now∗∗");
    expect(text).toContain(
      "［click here］(https꞉//evil.example/x) ⧵∗not bold⧵∗ see www․evil.example",
    );
  });

  it("keeps fallbackText plain: no markup is read there, so no look-alikes either", () => {
    const message = render(hostile);
    expect(message.fallbackText).toBe(
      "*_x_* ~y~ `z` <users/all> <https://evil|click>\n\n" +
        '<b>hi</b> & "q"\n```fence``` _it_\n\n' +
        `type=instance_created event_id=${EVENT_ID}`,
    );
  });

  it("drops bidirectional controls, which could make a subject read backwards", () => {
    const event = sample("instance_stopped", {
      subject: "Instance \u202Edeppots\u202C 42",
      message: "a\u2066b\u2069c\u202Ad",
    });
    for (const format of ["card", "text"] as const) {
      const json = JSON.stringify(render(event, format));
      expect(json).not.toMatch(/[\u202A-\u202E\u2066-\u2069]/);
    }
    expect(render(event, "text").text).toMatch(/^Instance deppots 42\n\nabcd/);
  });

  it("escapes HTML in card widgets and keeps header fields plain", () => {
    const message = render(hostile);
    expect(paragraph(message)).toBe(
      "&lt;b&gt;hi&lt;/b&gt; &amp; &quot;q&quot;<br>```fence``` _it_",
    );
    for (const html of widgetTexts(message)) {
      const tagsLeft = html.replace(/<br>|<\/?b>|<font color="#[0-9a-f]{6}">|<\/font>/g, "");
      expect(tagsLeft).not.toMatch(/[<>"]/);
      expect(html).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
    }
    expect(card(message).header.title).toBe("ℹ️ *_x_* ~y~ `z` <users/all> <https://evil|click>");
    expect(message).toMatchSnapshot("card");
  });

  it("keeps identifiers copyable: an underscore inside a word stays", () => {
    const text = plainTextOf(render({ notif_type: "foo_bar_baz", message: "m" }, "text"));
    expect(text).toBe(`Vast.ai notification\n\nm\n\ntype=foo_bar_baz event_id=${EVENT_ID}`);
    const odd = plainTextOf(render({ notif_type: "_a*b <c>", message: "m" }, "text"));
    expect(odd).toContain("type=ˍa∗b ‹c›");
  });

  it("makes a type name safe wherever it is shown, and caps it", () => {
    const event = { notif_type: `low\ud800\u0007\u202E${"x".repeat(500)}`, message: "m" };
    for (const format of ["card", "text"] as const) {
      const message = render(event, format);
      expect(JSON.stringify(message)).not.toMatch(/\\ud8|\\u00|\u202E/i);
    }
    const header = card(render(event)).header;
    expect(Array.from(header.subtitle).length).toBeLessThanOrEqual(200);
    expect(header.subtitle).not.toMatch(LONE_SURROGATE);
  });

  it("drops control characters and replaces lone surrogates", () => {
    const message = render({ subject: "a\u0007b", message: "x\u0000y\r\nz\uD800!" });
    expect(plainTextOf(message)).toMatch(/^ab\n\nxy\nz\uFFFD!\n\n/);
    expect(JSON.stringify(message)).not.toMatch(/\\u00|\\ud8/i);
  });
});

describe("size guards", () => {
  const tenKilobytes = "Line <b>&</b> *x*\n".repeat(570);
  const cases: Array<[string, string]> = [
    ["a 10 KB message with markup and newlines", tenKilobytes],
    ["40,000 CJK characters", "秘".repeat(40_000)],
    ["40,000 emoji", "🔥".repeat(40_000)],
    ["40,000 flags (two code points each)", "🇯🇵".repeat(40_000)],
  ];

  for (const [name, text] of cases) {
    for (const format of ["card", "text"] as const) {
      it(`fits ${name} (${format})`, () => {
        const message = render(sample("instance_offline", { message: text }), format);
        expect(plainTextOf(message).length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
        expect(bodyBytes(message)).toBeLessThan(MAX_BODY_BYTES);
        expect(plainTextOf(message)).toMatch(MARKER);
        expect(JSON.parse(JSON.stringify(message))).toStrictEqual(message);
        expect(JSON.stringify(message)).not.toMatch(/\\ud[89a-f]/i);
        expect(LONE_SURROGATE.test(plainTextOf(message))).toBe(false);
        if (format === "card") {
          // 10 KB fits whole in a card; the rest is cut there too, at a larger size than text.
          if (text === tenKilobytes) expect(paragraph(message)).not.toMatch(MARKER);
          else expect(paragraph(message)).toMatch(MARKER);
          expect(paragraph(message).length).toBeGreaterThan(plainTextOf(message).length);
          expect(LONE_SURROGATE.test(paragraph(message))).toBe(false);
        } else {
          expect(message.cardsV2).toBeUndefined();
        }
      });
    }
  }

  it("counts what it cut", () => {
    const message = render(sample("low_credit", { message: "秘".repeat(40_000) }), "text");
    const kept = (plainTextOf(message).match(/秘/g) ?? []).length;
    const cut = Number(MARKER.exec(plainTextOf(message))?.[1]?.replaceAll(",", ""));
    expect(kept).toBeGreaterThan(3000);
    expect(kept + cut).toBe(40_000);
  });

  it("never cuts inside an entity or a <br> it inserted", () => {
    for (const unit of ["&", "\n", '"']) {
      const html = paragraph(render(sample("payment_receipt", { message: unit.repeat(20_000) })));
      const entity = unit === "&" ? "&amp;" : unit === "\n" ? "<br>" : "&quot;";
      const body = html.replace(MARKER, "");
      expect(html).toMatch(MARKER);
      expect(body.replaceAll(entity, "")).toBe("");
    }
  });

  it("never cuts a flag or an emoji sequence in half", () => {
    const family = "👨‍👩‍👧";
    const text = plainTextOf(
      render(sample("low_credit", { message: family.repeat(5_000) }), "text"),
    );
    const body = text.split("\n\n")[1]?.replace(MARKER, "") ?? "";
    expect(body.replaceAll(family, "")).toBe("");
  });

  it("does not let one base character with endless marks hide the message", () => {
    const text = plainTextOf(
      render(sample("low_credit", { message: `a${"\u0301".repeat(100_000)}` })),
    );
    const body = text.split("\n\n")[1] ?? "";
    expect(body).toMatch(MARKER);
    expect(body.replace(MARKER, "").length).toBeGreaterThan(3000);
  });

  it("cuts a huge subject too, in the text and in the card header", () => {
    const message = render(sample("outbid", { subject: "S".repeat(10_000) }));
    const [subject] = plainTextOf(message).split("\n\n");
    expect(subject).toMatch(MARKER);
    expect(subject?.length).toBeLessThanOrEqual(300);
    expect(card(message).header.title.length).toBeLessThanOrEqual(300);
    expect(card(message).header.title).toMatch(MARKER);
  });

  it("leaves a normal message whole", () => {
    const message = render(sample("low_credit"));
    expect(JSON.stringify(message)).not.toContain("truncated");
  });
});

describe("threadKeyFor", () => {
  it.each([
    ["Instance 1234567 was outbid", "vast-instance-1234567"],
    ["About instance #1234567", "vast-instance-1234567"],
    ["instance ID 1234567 stopped", "vast-instance-1234567"],
    ["INSTANCE ID: 1234567", "vast-instance-1234567"],
    ["Machine 98765 is offline", "vast-machine-98765"],
    ["maintenance for machine #0098765", "vast-machine-98765"],
  ])("reads %j", (subject, key) => {
    expect(threadKeyFor({ subject })).toBe(key);
  });

  it("looks in the message when the subject names nothing", () => {
    expect(threadKeyFor({ subject: "Heads up", message: "Your machine 42 is back." })).toBe(
      "vast-machine-42",
    );
  });

  it("finds nothing where no instance or machine is numbered", () => {
    expect(threadKeyFor(sample("low_credit"))).toBeUndefined();
    expect(threadKeyFor({ subject: "3 instances running", message: "machine learning 101a" })).toBe(
      undefined,
    );
    expect(threadKeyFor({})).toBeUndefined();
    expect(render(sample("low_credit"))).not.toHaveProperty("thread");
  });

  it("puts events about the same instance in one thread", () => {
    const instanceTypes = [...KNOWN_EVENT_TYPES.values()].filter((t) => t.group === "Instance");
    expect(instanceTypes.length).toBeGreaterThan(3);
    const keys = new Set(instanceTypes.map((t) => render(sample(t.slug)).thread?.threadKey));
    expect([...keys]).toEqual(["vast-instance-1234567"]);
    expect(render(sample("machine_error")).thread).toEqual({ threadKey: "vast-machine-98765" });
  });

  it("keeps different instances apart", () => {
    const a = threadKeyFor({ subject: "Instance 1 stopped" });
    const b = threadKeyFor({ subject: "Instance 2 stopped" });
    expect(a).not.toBe(b);
  });
});
