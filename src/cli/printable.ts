/**
 * Text from outside (an event's subject, type or id, Chat's or Vast.ai's error text) made safe to
 * print on a terminal. A signed event could otherwise carry escape sequences that set the window
 * title, plant a hyperlink (OSC 8), move the cursor or clear the screen, and a newline in a log
 * field could forge a whole log line. Our own colours are added after this, so they survive.
 */

/**
 * C0 controls other than tab and newline (ESC among them), DEL, C1 controls (U+009B is a one-byte
 * CSI to some terminals), and the bidirectional embeddings, overrides and isolates.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const UNPRINTABLE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g;

/** Shown as its escape (`\u001b`), so a reader sees that something was there. */
function visible(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Multi-line text (a payload): every unprintable character shown as its escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, visible);
}

/** One line (a table cell, a log field): newlines and tabs shown as `\n` and `\t` too. */
export function printableLine(text: string): string {
  return printable(text).replace(/\r?\n/g, "\\n").replace(/\t/g, "\\t");
}
