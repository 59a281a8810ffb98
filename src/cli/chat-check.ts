import { createChatPoster } from "../chat/post-message.js";
import { type ParsedChatUrl, parseChatUrl } from "../chat/webhook-url.js";
import { maskChatUrl } from "../config/mask.js";
import { CliError } from "./errors.js";
import type { Output } from "./output.js";
import type { Prompter } from "./prompter.js";

/**
 * A Chat URL as `init` and `route add` take it: checked (chat/webhook-url.ts: https, Google's shape,
 * a warning for another host), then proved with a one-line check message, so a URL copied wrong
 * fails now rather than at the first alert. The URL is a secret: never printed, masked when typed.
 */

/** The problem with a typed Chat URL as a sentence, or true: for a prompt's validation. */
export function validateChatUrl(value: string): string | true {
  try {
    parseChatUrl(value);
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Parses a Chat URL the user gave; a bad one is a usage error (exit 2), its warning is shown. */
export function checkedChatUrl(raw: string, out: Pick<Output, "warn">): ParsedChatUrl {
  // A URL that is not usable throws ChatUrlError, a usage error already (exit 2).
  const chat = parseChatUrl(raw);
  if (chat.warning) out.warn(chat.warning);
  return chat;
}

/** Asks for a Chat URL on a terminal (the answer shown masked); without one, names `flag`. */
export async function askChatUrlText(
  ask: Prompter,
  message: string,
  flag: string,
): Promise<string> {
  return ask.text(message, {
    flag,
    validate: validateChatUrl,
    // Its key and token let anyone post into the space: never leave them on the screen.
    show: maskChatUrl,
  });
}

export const CHECK_MESSAGE =
  "vast-gchat is set up: Vast.ai notifications will arrive in this space.";

/** The check message of a route's space. */
export function routeCheckMessage(route: string): string {
  return `vast-gchat is set up: Vast.ai notifications of the route ${route} will arrive in this space.`;
}

/**
 * Posts `text` to the space to prove the URL; a refusal is an error (exit 1) that says how to skip
 * the check.
 */
export async function postCheckMessage(
  chat: ParsedChatUrl,
  out: Pick<Output, "step">,
  text: string = CHECK_MESSAGE,
): Promise<void> {
  const outcome = await out.step(`Posting a check message to ${chat.label}`, () =>
    createChatPoster(chat.url, { timeoutMs: 10_000 }).post({ text }),
  );
  if (outcome.kind !== "delivered") {
    throw new CliError(`Google Chat did not take the check message: ${outcome.reason}.`, {
      hint: "Copy the webhook URL again from the space, or pass --no-chat-check to skip this check.",
    });
  }
}
