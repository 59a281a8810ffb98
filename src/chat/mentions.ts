import { MAX_MENTIONS, type Mention, mentionMarkup, parseMention } from "../route-syntax.js";
import { fitEscaped } from "./escape.js";
import { type ChatMessage, MAX_TEXT_LENGTH } from "./render.js";

/**
 * A route's mentions in a rendered message (README, "Routes"). Chat's incoming webhooks mention
 * people only through the message's `text`, written `<users/ID>` or `<users/all>`
 * (docs/google-chat.md); card fields and `fallbackText` never mention anyone. So the mentions
 * open the `text`: a text message gets them on a line of their own above its text, a card message
 * gets a `text` of the mentions alone, which Chat shows above the card.
 *
 * Mentions come only from the route's configuration. Event text can never mention anyone: every
 * `<` from an event is a look-alike in `text` (escape.ts), and each value given here is checked
 * again (route-syntax.ts, parseMention), so nothing but `all` or a numeric user id is written.
 */
export function withMentions(message: ChatMessage, mentions: readonly string[]): ChatMessage {
  const line = mentionLine(mentions);
  if (line === "") return message;
  if (message.text === undefined) return { ...message, text: line };
  // The rendered text already fits Chat's limit; with the mentions above it, it may not: cut it
  // (between characters, with the usual marker) rather than let Chat refuse the message.
  const room = MAX_TEXT_LENGTH - line.length - 1;
  return { ...message, text: `${line}\n${fitEscaped(message.text, room, same, length)}` };
}

/**
 * `<users/123> <users/all>`: each mention once, in the order given; empty for none. Throws on a
 * value that is not a mention, or on more than a route may have: configuration is checked when
 * it is read (config/routes.ts), so either means a bug, not a user's typo.
 */
export function mentionLine(mentions: readonly string[]): string {
  const parsed = new Set<Mention>();
  for (const value of mentions) {
    const mention = parseMention(value);
    if (mention === undefined) throw new TypeError(`Not a mention: ${JSON.stringify(value)}.`);
    parsed.add(mention);
  }
  if (parsed.size > MAX_MENTIONS) {
    throw new TypeError(`At most ${MAX_MENTIONS} mentions a message, not ${parsed.size}.`);
  }
  return [...parsed].map(mentionMarkup).join(" ");
}

function same(value: string): string {
  return value;
}

function length(value: string): number {
  return value.length;
}
