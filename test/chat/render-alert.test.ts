import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  MAX_BODY_BYTES,
  MAX_TEXT_LENGTH,
  type MessageFormat,
} from "../../src/chat/render.js";
import { type Alert, formatLasted, renderAlert } from "../../src/chat/render-alert.js";
import { checkChatMessage } from "../support/chat-schema/check.js";

/**
 * The adapter's alerts (issue 18) as Chat messages: valid by Google's own protos and Chat's size
 * limits in both formats, whatever outside text the summary quotes; that text cannot mention, link
 * or format; commands in the action read as commands.
 */
const FORMATS: MessageFormat[] = ["card", "text"];
const SINCE = Date.UTC(2026, 10, 30, 8, 0, 0);

function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    state: "opened",
    title: "The Vast.ai webhook is gone",
    summary: "Webhook 12 no longer exists on Vast.ai.",
    since: SINCE,
    action: "Run `vast-gchat init` on the adapter's machine.",
    threadKey: "vast-gchat-alert-webhook_missing",
    ...overrides,
  };
}

function expectAcceptable(message: ChatMessage): void {
  expect(checkChatMessage(message)).toEqual([]);
  expect(Buffer.byteLength(JSON.stringify(message), "utf8")).toBeLessThanOrEqual(MAX_BODY_BYTES);
  for (const text of [message.text, message.fallbackText]) {
    if (text !== undefined) expect(text.length).toBeLessThanOrEqual(MAX_TEXT_LENGTH);
  }
}

describe("renderAlert", () => {
  it("says what is wrong, since when and what to run, as a card with a plain fallback", () => {
    const message = renderAlert(alert(), "card");
    expectAcceptable(message);
    expect(message.fallbackText).toBe(
      [
        "🚨 The Vast.ai webhook is gone",
        "Webhook 12 no longer exists on Vast.ai.",
        "Since 2026-11-30 08:00:00 UTC",
        "What to do: Run vast-gchat init on the adapter's machine.",
      ].join("\n"),
    );
    const card = message.cardsV2?.[0]?.card;
    expect(card?.header.title).toBe("🚨 The Vast.ai webhook is gone");
    expect(JSON.stringify(card)).toContain("Run <b>vast-gchat init</b> on the adapter's machine.");
    expect(message.thread).toEqual({ threadKey: "vast-gchat-alert-webhook_missing" });
  });

  it("in text, Chat markup of our own: the title bold, commands in monospace", () => {
    const message = renderAlert(alert(), "text");
    expectAcceptable(message);
    expect(message.text).toBe(
      [
        "*🚨 The Vast.ai webhook is gone*",
        "Webhook 12 no longer exists on Vast.ai.",
        "Since 2026-11-30 08:00:00 UTC",
        "What to do: Run `vast-gchat init` on the adapter's machine.",
      ].join("\n"),
    );
  });

  it("a resolution says how long it lasted, without the action, in the same thread", () => {
    const resolved = alert({ state: "resolved", resolvedAt: SINCE + 12 * 60_000 });
    for (const format of FORMATS) {
      const message = renderAlert(resolved, format);
      expectAcceptable(message);
      const text = message.text ?? message.fallbackText ?? "";
      expect(text).toContain("Resolved: The Vast.ai webhook is gone");
      expect(text).toContain("From 2026-11-30 08:00:00 UTC to 2026-11-30 08:12:00 UTC (12 min)");
      expect(text).not.toContain("What to do");
      expect(message.thread).toEqual(renderAlert(alert(), format).thread);
    }
  });

  it("outside text in the summary stays inert and within Chat's limits, whatever it is", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 20_000, size: "max" }), (summary) => {
        for (const format of FORMATS) {
          const message = renderAlert(alert({ summary }), format);
          expectAcceptable(message);
          if (message.text !== undefined) {
            const [, quoted = ""] = message.text.split("\n", 2);
            const inert = quoted.replace(/… \(truncated, [\d,]+ more characters?\)$/, "");
            expect(inert).not.toMatch(/[*~`<>[\]#\\]|:\/\/|\bwww\./i);
          }
          const paragraph = message.cardsV2?.[0]?.card.sections[0]?.widgets[0];
          const html =
            paragraph && "textParagraph" in paragraph ? paragraph.textParagraph.text : "";
          expect(html.replace(/<br>|<\/?b>|<font color="#[0-9a-f]{6}">|<\/font>/g, "")).not.toMatch(
            /[<>]/,
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a URL or mention quoted from Vast.ai is neither a link nor a mention", () => {
    const message = renderAlert(
      alert({ summary: "points at https://evil.example/<users/all> *now*" }),
      "text",
    );
    expect(message.text).not.toContain("https://");
    expect(message.text).not.toContain("<users/all>");
    expect(message.text).not.toContain("*now*");
  });
});

describe("formatLasted", () => {
  it.each([
    [45_000, "45 s"],
    [12 * 60_000, "12 min"],
    [3 * 3_600_000 + 5 * 60_000, "3 h 5 min"],
    [50 * 3_600_000, "2 d 2 h"],
  ])("%d ms is %s", (ms, words) => {
    expect(formatLasted(ms)).toBe(words);
  });
});
