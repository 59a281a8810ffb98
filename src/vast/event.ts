import { createHash } from "node:crypto";
import { z } from "zod";

/**
 * A notification as Vast.ai delivers it (docs/vast-api.md, "A delivery"). Every field is optional
 * and a field of the wrong type is dropped rather than refusing the event: once the signature is
 * good, the user would rather see an odd notification than lose it.
 */
const optionalText = z.string().optional().catch(undefined);
const VastEventSchema = z.looseObject({
  event_id: z.union([z.string(), z.number()]).transform(String).optional().catch(undefined),
  user_id: z.number().optional().catch(undefined),
  notif_type: optionalText,
  subject: optionalText,
  message: optionalText,
  timestamp: z.number().optional().catch(undefined),
});

export type VastEvent = z.infer<typeof VastEventSchema>;

export type ParsedEvent =
  /** `text` is the body decoded (valid UTF-8, or it would not have parsed): what the store keeps. */
  | { ok: true; eventId: string; event: VastEvent; text: string }
  | { ok: false; error: "invalid_json" | "invalid_payload" };

/** Refuses bytes that are not UTF-8 rather than replacing them; stateless, so one serves all. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Longest event id kept as sent; a longer one is replaced by its hash (ids are ~32 hex chars). */
const MAX_EVENT_ID_LENGTH = 200;

/**
 * Parses a verified body. The dedupe key is the body's `event_id` (signed), never the unsigned
 * `X-Vast-Event-Id` header; a body without one is keyed by its own hash, so a byte-identical
 * retry is still recognised.
 */
export function parseEvent(rawBody: Buffer): ParsedEvent {
  let text: string;
  let value: unknown;
  try {
    text = UTF8.decode(rawBody);
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: "invalid_json" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, error: "invalid_payload" };
  }
  const event = VastEventSchema.parse(value);
  const given = event.event_id?.trim() ?? "";
  // An empty id must not become one shared key, or every later event would look like a duplicate.
  // An id with a lone surrogate is hashed in its JSON form: the store writes UTF-8, where every
  // lone surrogate becomes U+FFFD, so two different ids would otherwise become one.
  const eventId =
    given === ""
      ? hashKey(rawBody)
      : LONE_SURROGATE.test(given)
        ? hashKey(JSON.stringify(given))
        : given.length > MAX_EVENT_ID_LENGTH
          ? hashKey(given)
          : given;
  return { ok: true, eventId, event, text };
}

function hashKey(data: string | Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}
