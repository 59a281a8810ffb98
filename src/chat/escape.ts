/**
 * Making text that comes from Vast.ai safe to show in Google Chat, and cutting it to size.
 *
 * Two contexts (docs/google-chat.md, "The message"):
 * - `text` uses Chat markup: `*bold*`, `_italic_`, `~strike~`, `` `mono` ``, ``` fences,
 *   `<url|label>` links and `<users/all>` mentions. Chat has no escape character for these, so
 *   each markup character is replaced by a look-alike that Chat does not interpret (below).
 * - card `textParagraph`/`decoratedText` take a small HTML subset: `& < > "` become entities and a
 *   newline becomes `<br>`.
 */

/**
 * Look-alikes for Chat's markup characters. Chosen over inserting a zero-width space because:
 * - it cannot fail: Chat's parser never sees a `*`, `_`, `~`, `` ` ``, `<` or `>` from Vast.ai, so
 *   no rule about word boundaries or invisible characters has to hold for the text to stay inert;
 * - what the reader sees stays close to the original, and a copied string carries no invisible
 *   character that would break it silently when pasted into a terminal or a search box;
 * - every replacement is one UTF-16 unit for one, so lengths do not change and a cut can never fall
 *   inside an inserted sequence.
 */
const CHAT_LOOKALIKES: Readonly<Record<string, string>> = {
  "*": "\u2217", // ∗ ASTERISK OPERATOR
  _: "\u02CD", // ˍ MODIFIER LETTER LOW MACRON
  "~": "\u223C", // ∼ TILDE OPERATOR
  "`": "\u02CB", // ˋ MODIFIER LETTER GRAVE ACCENT
  "<": "\u2039", // ‹ SINGLE LEFT-POINTING ANGLE QUOTATION MARK
  ">": "\u203A", // › SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
};
const CHAT_MARKUP = /[*_~`<>]/g;

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "\n": "<br>",
};
const HTML_SPECIAL = /[&<>"\n]/g;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Control characters other than tab and newline: invisible in Chat, and up to 6 bytes in JSON. */
const CONTROL = /[^\P{Cc}\t\n]/gu;

/**
 * Normalises text before it is escaped: CRLF/CR become LF, lone surrogates (valid in JSON, not in
 * UTF-8) become U+FFFD, other control characters are dropped.
 */
export function sanitize(value: string): string {
  return value.replace(/\r\n?/g, "\n").replace(LONE_SURROGATE, "\uFFFD").replace(CONTROL, "");
}

/** Free text (a subject, a message) for the `text` field: no markup character survives. */
export function escapeChatText(value: string): string {
  return value.replace(CHAT_MARKUP, (c) => CHAT_LOOKALIKES[c] ?? c);
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * An identifier (a type slug, an event id) for the `text` field. Like `escapeChatText`, except an
 * underscore between two letters or digits is kept, so `low_credit` can be copied as it is: Chat,
 * like other chat markups, only opens or closes italics at a word boundary.
 */
export function escapeChatIdentifier(value: string): string {
  return value.replace(CHAT_MARKUP, (c, offset: number) => {
    if (
      c === "_" &&
      WORD_CHAR.test(value.charAt(offset - 1)) &&
      WORD_CHAR.test(value.charAt(offset + 1))
    ) {
      return c;
    }
    return CHAT_LOOKALIKES[c] ?? c;
  });
}

/** Text for a card `textParagraph` or `decoratedText.text` (Chat's small HTML subset). */
export function escapeCardHtml(value: string): string {
  return value.replace(HTML_SPECIAL, (c) => HTML_ENTITIES[c] ?? c);
}

/** Bytes of `value` in UTF-8 (a lone surrogate counts as U+FFFD, as encoders write it). */
export function utf8Length(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && isLowSurrogate(value.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** Bytes `value` adds to a JSON body when it is (part of) a string value. */
export function jsonStringBytes(value: string): number {
  return utf8Length(JSON.stringify(value)) - 2;
}

/** What a cut leaves at its end; `count` is in user-perceived characters (graphemes). */
export function truncationMarker(count: number): string {
  const characters = count === 1 ? "character" : "characters";
  return `… [truncated, ${count.toLocaleString("en-US")} more ${characters}]`;
}

/**
 * User-perceived characters, near enough to Unicode's extended grapheme clusters (UAX #29) for
 * cutting: a code point (never half a surrogate pair), with the marks, variation selectors, emoji
 * skin tones and tag characters that follow it, joined through ZWJ to the next; or a flag (two
 * regional indicators). A run of more than 32 marks (Zalgo text) is split, so that one
 * "character" cannot hide a whole message. Not Intl.Segmenter: in Node 20 it takes time quadratic
 * in the length of an emoji run (40,000 emoji: over 30 s), and this text comes from outside.
 */
const GRAPHEME =
  /(?:\p{Regional_Indicator}{2}|[\s\S])(?:[\p{M}\p{Emoji_Modifier}\u{E0020}-\u{E007F}]|\u200D[\s\S]?){0,32}/gu;

export function splitGraphemes(value: string): string[] {
  return value.match(GRAPHEME) ?? [];
}

/**
 * Escapes `raw` and, when the result measures more than `budget`, cuts it so that the kept part
 * plus a truncation marker fits. The cut is made on the raw text between graphemes, before each
 * piece is escaped, so it never splits a surrogate pair, an emoji sequence, or an entity or
 * look-alike inserted by `escapePiece`. `escapePiece` must work character by character and
 * `measure` must add up over concatenation (both hold for the functions in this file). A budget
 * smaller than the marker itself returns the marker alone.
 */
export function fitEscaped(
  raw: string,
  budget: number,
  escapePiece: (text: string) => string,
  measure: (text: string) => number,
): string {
  const whole = escapePiece(raw);
  if (measure(whole) <= budget) return whole;
  const pieces = splitGraphemes(raw);
  // The marker can only get shorter than this: fewer characters are left than there are in all.
  const reserve = measure(truncationMarker(pieces.length));
  const kept: string[] = [];
  let used = 0;
  for (const piece of pieces) {
    const escaped = escapePiece(piece);
    const cost = measure(escaped);
    if (used + cost + reserve > budget) break;
    kept.push(escaped);
    used += cost;
  }
  return kept.join("") + truncationMarker(pieces.length - kept.length);
}
