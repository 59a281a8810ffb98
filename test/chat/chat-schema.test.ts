import { describe, expect, it } from "vitest";
import {
  CHAT_SCHEMA_SOURCE,
  checkChatMessage,
  KNOWN_ICONS,
  loneSurrogate,
} from "../support/chat-schema/check.js";
import { loadChatProtos } from "../support/chat-schema/descriptor.js";
import { protoJsonName } from "../support/chat-schema/generate.js";

/** A card message using what our renderer uses, shaped as in Google's card.proto example. */
function cardMessage(): Record<string, unknown> {
  return {
    text: "Instance *42* stopped",
    fallbackText: "Instance 42 stopped",
    thread: { threadKey: "vast-instance-42" },
    cardsV2: [
      {
        cardId: "event",
        card: {
          header: {
            title: "Instance stopped",
            subtitle: "instance 42",
            imageUrl: "https://example.com/avatar.png",
            imageType: "CIRCLE",
          },
          sections: [
            {
              header: "Details",
              widgets: [
                {
                  decoratedText: {
                    topLabel: "Event time",
                    text: "2026-03-02 22:20 UTC",
                    startIcon: { knownIcon: "CLOCK" },
                    wrapText: true,
                  },
                },
                { textParagraph: { text: "<b>bold</b> and <i>italic</i>" } },
                {
                  buttonList: {
                    buttons: [
                      {
                        text: "Open console",
                        onClick: { openLink: { url: "https://cloud.vast.ai/instances/" } },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      },
    ],
  };
}

type Json = Record<string, unknown>;
/** The first card's body, for mutating one field in a test. */
function firstCard(m: Json): Json {
  return ((m.cardsV2 as Json[])[0] as Json).card as Json;
}
function firstWidgets(m: Json): Json[] {
  return ((firstCard(m).sections as Json[])[0] as Json).widgets as Json[];
}

/** One widget's body, e.g. widget(m, 0, "decoratedText"). */
function widget(m: Json, index: number, kind: string): Json {
  const body = firstWidgets(m)[index]?.[kind];
  if (typeof body !== "object" || body === null) throw new Error(`no ${kind} at widget ${index}`);
  return body as Json;
}

function expectProblem(body: unknown, pattern: RegExp): void {
  const problems = checkChatMessage(body);
  expect(
    problems.some((p) => pattern.test(p)),
    problems.join("\n"),
  ).toBe(true);
}

describe("the vendored Chat schema", () => {
  it("names its source: googleapis/googleapis at a 40-hex commit, with the proto files", () => {
    expect(CHAT_SCHEMA_SOURCE.repository).toBe("https://github.com/googleapis/googleapis");
    expect(CHAT_SCHEMA_SOURCE.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(CHAT_SCHEMA_SOURCE.files).toEqual(
      expect.arrayContaining([
        "google/chat/v1/message.proto",
        "google/apps/card/v1/card.proto",
        "google/chat/v1/widgets.proto",
      ]),
    );
  });

  it("holds Message, CardWithId, the card types and the built-in icons", () => {
    const protos = loadChatProtos();
    for (const name of [
      "google.chat.v1.Message",
      "google.chat.v1.Thread",
      "google.chat.v1.CardWithId",
      "google.chat.v1.AccessoryWidget",
      "google.apps.card.v1.Card",
      "google.apps.card.v1.DecoratedText",
      "google.apps.card.v1.Icon",
    ]) {
      expect(protos.messages[name], name).toBeDefined();
    }
    expect(protos.messages["google.chat.v1.Message"]?.fields.map((f) => f.jsonName)).toEqual(
      expect.arrayContaining(["text", "cardsV2", "thread", "fallbackText", "markupSyntax"]),
    );
    expect([...KNOWN_ICONS]).toEqual(expect.arrayContaining(["CLOCK", "EMAIL", "PERSON"]));
    expect(KNOWN_ICONS.has("ICON_UNSPECIFIED")).toBe(false);
  });

  it("derives JSON names as protoc does", () => {
    expect(protoJsonName("cards_v2")).toBe("cardsV2");
    expect(protoJsonName("fallback_text")).toBe("fallbackText");
    expect(protoJsonName("uncollapsible_widgets_count")).toBe("uncollapsibleWidgetsCount");
  });
});

describe("checkChatMessage accepts", () => {
  it("a plain text message", () => {
    expect(checkChatMessage({ text: "hello *world*" })).toEqual([]);
  });

  it("a cardsV2 message with header, decoratedText + knownIcon, textParagraph, buttonList, thread and fallbackText", () => {
    expect(checkChatMessage(cardMessage())).toEqual([]);
  });

  it("the original snake_case names, as the proto3 JSON reader does", () => {
    expect(
      checkChatMessage({
        fallback_text: "x",
        thread: { thread_key: "k" },
        cards_v2: [{ card_id: "c", card: { header: { title: "t" }, sections: [] } }],
      }),
    ).toEqual([]);
  });

  it("null for any field (read as the default) and a null member beside a set one of a oneof", () => {
    const m = cardMessage();
    m.thread = null;
    firstWidgets(m).push({ textParagraph: { text: "x" }, image: null });
    expect(checkChatMessage(m)).toEqual([]);
  });

  it("int32 as a number or a decimal string, enums by name, emoji as surrogate pairs", () => {
    const m = cardMessage();
    firstWidgets(m).push({ textParagraph: { text: "😀 ok", maxLines: "3", textSyntax: "HTML" } });
    ((firstCard(m).sections as Json[])[0] as Json).uncollapsibleWidgetsCount = 1;
    m.markupSyntax = "MARKUP_SYNTAX_CHAT";
    expect(checkChatMessage(m)).toEqual([]);
  });
});

describe("checkChatMessage reports", () => {
  it("a body that is not an object", () => {
    expectProblem("hello", /^\$: the body must be a JSON object/);
    expectProblem([], /^\$: the body must be a JSON object/);
  });

  it("an unknown field, with its path", () => {
    expectProblem({ text: "x", colour: "red" }, /^\$\.colour: unknown field "colour"/);
    const m = cardMessage();
    widget(m, 0, "decoratedText").wrap = true;
    expectProblem(
      m,
      /^\$\.cardsV2\[0\]\.card\.sections\[0\]\.widgets\[0\]\.decoratedText\.wrap: unknown field/,
    );
  });

  it("a near miss in casing, with a suggestion", () => {
    expectProblem({ cardsv2: [] }, /unknown field "cardsv2" .*did you mean "cardsV2"/);
  });

  it("the same field under both of its names", () => {
    expectProblem({ fallbackText: "a", fallback_text: "b" }, /set twice/);
  });

  it("a bad enum value", () => {
    const m = cardMessage();
    ((firstCard(m).header as Json).imageType as unknown) = "ROUND";
    expectProblem(
      m,
      /header\.imageType: "ROUND" is not a value of google\.apps\.card\.v1\.Widget\.ImageType/,
    );
    expectProblem(
      { text: "x", markupSyntax: "MARKDOWN" },
      /markupSyntax: "MARKDOWN" is not a value/,
    );
  });

  it("an enum sent as its number (policy: names only)", () => {
    expectProblem({ text: "x", markupSyntax: 1 }, /given as the number 1/);
  });

  it("two members of one oneof", () => {
    const m = cardMessage();
    firstWidgets(m).push({ textParagraph: { text: "a" }, divider: {} });
    expectProblem(
      m,
      /widgets\[3\]\.divider: oneof "data" of google\.apps\.card\.v1\.Widget takes only one member/,
    );
    const icon = cardMessage();
    widget(icon, 0, "decoratedText").startIcon = {
      knownIcon: "CLOCK",
      iconUrl: "https://example.com/i.png",
    };
    expectProblem(icon, /startIcon\.iconUrl: oneof "icons"/);
  });

  it("a lone surrogate anywhere in a string", () => {
    expectProblem(
      { text: "cut emoji \ud83d" },
      /^\$\.text: a lone high surrogate U\+D83D at UTF-16 index 10/,
    );
    const m = cardMessage();
    (firstCard(m).header as Json).subtitle = "\ude00 tail";
    expectProblem(m, /header\.subtitle: a lone low surrogate U\+DE00/);
    expect(loneSurrogate("😀")).toBeUndefined();
    expect(loneSurrogate("\ud83d\ud83d")).toMatch(/high surrogate/);
  });

  it("a link that is not https", () => {
    const m = cardMessage();
    const buttons = widget(m, 2, "buttonList").buttons as Json[];
    (buttons[0] as Json).onClick = { openLink: { url: "http://cloud.vast.ai/" } };
    expectProblem(m, /openLink\.url: link must be https, found http:/);
    const img = cardMessage();
    (firstCard(img).header as Json).imageUrl = "javascript:alert(1)";
    expectProblem(img, /header\.imageUrl: link must be https/);
    const rel = cardMessage();
    widget(rel, 0, "decoratedText").startIcon = { iconUrl: "/icon.png" };
    expectProblem(rel, /startIcon\.iconUrl: not an absolute URL/);
    const blank = cardMessage();
    (firstCard(blank).header as Json).imageUrl = " https://example.com/a.png";
    expectProblem(blank, /whitespace or control/);
  });

  it("an unknown built-in icon name", () => {
    const m = cardMessage();
    widget(m, 0, "decoratedText").startIcon = { knownIcon: "ROCKET" };
    expectProblem(m, /startIcon\.knownIcon: "ROCKET" is not a built-in icon name/);
  });

  it("a wrong type", () => {
    expectProblem({ text: 42 }, /^\$\.text: expected a string, found number 42/);
    const m = cardMessage();
    widget(m, 0, "decoratedText").wrapText = "true";
    expectProblem(m, /wrapText: expected true or false/);
    expectProblem({ cardsV2: {} }, /^\$\.cardsV2: expected an array/);
    expectProblem(
      { thread: "key" },
      /^\$\.thread: expected an object \(google\.chat\.v1\.Thread\)/,
    );
    const n = cardMessage();
    ((firstCard(n).sections as Json[])[0] as Json).uncollapsibleWidgetsCount = 1.5;
    expectProblem(n, /uncollapsibleWidgetsCount: expected an integer/);
    const big = cardMessage();
    ((firstCard(big).sections as Json[])[0] as Json).uncollapsibleWidgetsCount = 2 ** 31;
    expectProblem(big, /out of range for int32/);
    expectProblem({ text: "x", cardsV2: [null] }, /cardsV2\[0\]: null is not allowed/);
  });

  it("a missing required field: REQUIRED in the proto, or 'Required.' in card.proto's prose", () => {
    expectProblem(
      {
        text: "x",
        quotedMessageMetadata: { lastUpdateTime: "2026-03-02T22:20:00Z" },
      },
      /quotedMessageMetadata\.name: missing required field .*field_behavior\) = REQUIRED/,
    );
    const m = cardMessage();
    delete (firstCard(m).header as Json).title;
    expectProblem(
      m,
      /header\.title: missing required field google\.apps\.card\.v1\.Card\.CardHeader\.title \(documented: "Required\. The title/,
    );
    const empty = cardMessage();
    widget(empty, 0, "decoratedText").text = "";
    expectProblem(empty, /decoratedText\.text: missing required field/);
    const button = cardMessage();
    const buttons = widget(button, 2, "buttonList").buttons as Json[];
    delete (buttons[0] as Json).onClick;
    expectProblem(button, /buttons\[0\]\.onClick: missing required field/);
  });

  it("a bad timestamp", () => {
    expectProblem(
      {
        text: "x",
        quotedMessageMetadata: { name: "spaces/a/messages/b", lastUpdateTime: "yesterday" },
      },
      /lastUpdateTime: expected an RFC 3339 timestamp/,
    );
  });

  it("output-only fields (ignored by Chat on create) and the message name", () => {
    expectProblem(
      { text: "x", formattedText: "*x*" },
      /formattedText: .*output only: Chat ignores it on create/,
    );
    expectProblem({ text: "x", sender: { name: "users/1" } }, /\$\.sender: .*output only/);
    expectProblem({ text: "x", name: "spaces/A/messages/B" }, /\$\.name: .*unused on create/);
    // Thread.name is an identifier too, but names an existing thread to reply in: allowed.
    expect(checkChatMessage({ text: "x", thread: { name: "spaces/A/threads/T" } })).toEqual([]);
  });

  it("deprecated fields, unless allowed", () => {
    const v1 = { cards: [{ header: { title: "t" } }] };
    expectProblem(v1, /\$\.cards: .*deprecated/);
    expect(checkChatMessage(v1, { allowDeprecated: true })).toEqual([]);
  });

  it("rules the protos state in prose", () => {
    const emptySection = cardMessage();
    (firstCard(emptySection).sections as Json[]).push({ header: "empty", widgets: [] });
    expectProblem(emptySection, /sections\[1\]: a section must contain at least one widget/);

    const two = cardMessage();
    const second = JSON.parse(JSON.stringify((two.cardsV2 as Json[])[0])) as Json;
    (two.cardsV2 as Json[]).push(second);
    expectProblem(two, /cardsV2\[1\]\.cardId "event" repeats cardsV2\[0\]\.cardId/);
    delete second.cardId;
    expectProblem(two, /cardsV2\[1\]\.cardId is required when the message has several cards/);

    const footer = cardMessage();
    firstCard(footer).fixedFooter = { primaryButton: { text: "x" } };
    expectProblem(footer, /fixedFooter is for dialogs only/);

    const longKey = { text: "x", thread: { threadKey: "k".repeat(4001) } };
    expectProblem(longKey, /threadKey has 4001 characters; at most 4000/);
    expect(checkChatMessage({ text: "x", thread: { threadKey: "😀".repeat(4000) } })).toEqual([]);

    const many = cardMessage();
    const widgets = firstWidgets(many);
    while (widgets.length <= 100) widgets.push({ divider: {} });
    expectProblem(many, /card has 101 widgets; Chat ignores those beyond 100/);
  });
});
