/**
 * Making text that comes from Vast.ai safe to show in Google Chat, and cutting it to size.
 *
 * Three contexts (docs/google-chat.md, "The message"):
 * - `text` is read as Chat markup (`*bold*`, `_italic_`, `~strike~`, `` `mono` ``, fences,
 *   `<url|label>` links, `<users/all>` mentions) or, for newer Chat apps, as Markdown
 *   (`[label](url)` links, `#` headings, `**bold**`, `\` escapes); which one an incoming webhook
 *   gets is not stated, so event text must be inert under both. Neither has an escape character
 *   that works in the other, so each markup character is replaced by a look-alike (below).
 * - card `textParagraph`/`decoratedText` take a small HTML subset: `& < > "` become entities and a
 *   newline becomes `<br>`.
 * - `fallbackText` and card headers are plain text: shown as they are, so only sanitised.
 */

/**
 * Look-alikes for the markup characters of both syntaxes. Chosen over inserting a zero-width space
 * because:
 * - it cannot fail: neither parser ever sees a markup character from Vast.ai, so no rule about
 *   word boundaries or invisible characters has to hold for the text to stay inert;
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
  "[": "\uFF3B", // ［ FULLWIDTH LEFT SQUARE BRACKET (Markdown links)
  "]": "\uFF3D", // ］ FULLWIDTH RIGHT SQUARE BRACKET
  "#": "\uFF03", // ＃ FULLWIDTH NUMBER SIGN (Markdown headings)
  "\\": "\u29F5", // ⧵ REVERSE SOLIDUS OPERATOR (Markdown escapes)
};
const CHAT_MARKUP = /[*_~`<>[\]#\\]/g;
/**
 * A URL scheme's `://`, which Chat turns into a link by itself in either syntax: its colon becomes
 * a look-alike, so an event cannot put a link in front of the reader (the card's button is ours).
 */
const SCHEME_SEPARATOR = /:(?=\/\/)/g;
const COLON_LOOKALIKE = "\uA789"; // ꞉ MODIFIER LETTER COLON
/** `www.` also becomes a link on its own: its dots become look-alikes. */
const WWW_DOT = /(?<=\bwww)\./gi;
const DOT_LOOKALIKE = "\u2024"; // ․ ONE DOT LEADER

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
 * Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they can make a
 * subject read backwards ("stopped" shown as "deppots"), and nothing Vast.ai sends needs them.
 */
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/g;

/**
 * Normalises text before it is escaped: CRLF/CR become LF, lone surrogates (which Google's JSON
 * reader refuses) become U+FFFD, other control characters and bidirectional controls are dropped.
 */
export function sanitize(value: string): string {
  return value
    .replace(/\r\n?/g, "\n")
    .replace(LONE_SURROGATE, "\uFFFD")
    .replace(CONTROL, "")
    .replace(BIDI_CONTROL, "");
}

/** Free text (a subject, a message) for the `text` field: no markup character or link survives. */
export function escapeChatText(value: string): string {
  return defuseLinks(value.replace(CHAT_MARKUP, (c) => CHAT_LOOKALIKES[c] ?? c));
}

function defuseLinks(value: string): string {
  return value.replace(SCHEME_SEPARATOR, COLON_LOOKALIKE).replace(WWW_DOT, DOT_LOOKALIKE);
}

const WORD_CHAR = /[\p{L}\p{N}]/u;

/**
 * An identifier (a type slug, an event id) for the `text` field. Like `escapeChatText`, except an
 * underscore between two letters or digits is kept, so `low_credit` can be copied as it is: Chat,
 * like other chat markups, only opens or closes italics at a word boundary.
 */
export function escapeChatIdentifier(value: string): string {
  const escaped = value.replace(CHAT_MARKUP, (c, offset: number) => {
    if (
      c === "_" &&
      WORD_CHAR.test(value.charAt(offset - 1)) &&
      WORD_CHAR.test(value.charAt(offset + 1))
    ) {
      return c;
    }
    return CHAT_LOOKALIKES[c] ?? c;
  });
  return defuseLinks(escaped);
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

/** A short cut for identifiers and labels: whole code points (never half an emoji), then `…`. */
export function cutCodePoints(value: string, max: number): string {
  const points = Array.from(value);
  return points.length <= max ? value : `${points.slice(0, max - 1).join("")}…`;
}

/** Line breaks, and the spaces around them, as one space: for headers and identifiers. */
export function oneLine(value: string): string {
  return value.replace(/\s*\n\s*/g, " ");
}

/**
 * What a cut leaves at its end; `count` is in user-perceived characters (graphemes). Parentheses,
 * not brackets: `[…]` next to event text could be read as a Markdown link.
 */
export function truncationMarker(count: number): string {
  const characters = count === 1 ? "character" : "characters";
  return `… (truncated, ${count.toLocaleString("en-US")} more ${characters})`;
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
 * plus a truncation marker fits. The cut is made on the raw text between graphemes, and the kept
 * raw text is escaped as a whole, so the cut never splits a surrogate pair, an emoji sequence, or an
 * entity or look-alike `escapePiece` inserts, and escapes that look at their neighbours (a URL's
 * `://`) still see them. Pieces are measured one by one: `measure` must add up over concatenation,
 * and escaping a whole must measure no more than its pieces escaped alone (both hold for the
 * functions in this file, whose escapes are one UTF-16 unit for one or context-free). A budget
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
  let kept = 0;
  let used = 0;
  for (const piece of pieces) {
    const cost = measure(escapePiece(piece));
    if (used + cost + reserve > budget) break;
    kept++;
    used += cost;
  }
  return escapePiece(pieces.slice(0, kept).join("")) + truncationMarker(pieces.length - kept);
}
