import fc from "fast-check";
import { KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";

/**
 * Hostile Vast.ai events for property tests (fast-check): any UTF-16 (lone surrogates and
 * bidirectional controls included), Chat and Markdown markup, mentions, links, huge fields, and
 * fields missing or of the wrong type. Each is the JSON object a signed body would carry.
 */
/** Pieces hostile text is made of, mixed with arbitrary UTF-16 units. */
const HOSTILE_PIECES = [
  "<users/all>",
  "<https://evil.example|click>",
  "[click](https://evil.example/x)",
  "https://evil.example/path",
  "www.evil.example",
  "*bold*",
  "**bold**",
  "_it_",
  "~s~",
  "`code`",
  "```\nfence\n```",
  "# heading",
  "\\*",
  "<b>html</b>",
  "&amp;",
  '"',
  "\u202Edesrever\u202C",
  "\u2066iso\u2069",
  "\ud800",
  "\udfff",
  "😀",
  "👩‍👩‍👧",
  "🇺🇸",
  "e\u0301",
  "\u0000",
  "\u0007",
  "\r\n",
  "\n",
  "\t",
  "秘",
];

const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_PIECES) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map(String.fromCodePoint) },
);
const hostileText = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit, maxLength: 80 }) },
  // Huge: one piece repeated past every size limit.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...HOSTILE_PIECES), fc.integer({ min: 3000, max: 12_000 }))
      .map(([piece, times]) => piece.repeat(times)),
  },
);
/** A field as a sender could get it wrong: missing, of another type, or hostile text. */
const field = fc.oneof(
  { weight: 6, arbitrary: hostileText },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null)) },
  { weight: 1, arbitrary: fc.array(hostileText, { maxLength: 3 }) },
);
export const hostileEvent = fc.record(
  {
    event_id: field,
    notif_type: fc.oneof(field, fc.constantFrom(...KNOWN_EVENT_TYPES.keys())),
    subject: field,
    message: field,
    timestamp: fc.oneof(fc.double(), fc.integer(), field),
    user_id: fc.oneof(fc.integer(), field),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
);
