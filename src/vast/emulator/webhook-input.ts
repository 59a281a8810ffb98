import { isLoopbackHost } from "../../service-url.js";
import { MAX_WEBHOOK_NAME_LENGTH, MAX_WEBHOOK_URL_LENGTH } from "../api-types.js";
import { slugOf } from "../type-selection.js";
import { invalid } from "./api-error.js";

/**
 * The checks Vast.ai makes on what a create or an update sends, with its refusals verbatim where
 * they are published (test/fixtures/vast-published-api.json, held by
 * test/vast/emulator-contract.test.ts). Each function returns the value to store or throws the
 * 400 Vast.ai answers.
 */

export function parseObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = raw.length === 0 ? {} : JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalid("Request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * `allowLoopbackHttp` lets tests and the demo register a plain-http loopback URL, which Vast.ai
 * itself would refuse as not https.
 */
export function checkWebhookUrl(value: unknown, allowLoopbackHttp: boolean): string {
  if (typeof value !== "string" || value === "") {
    throw invalid("webhook_url is required and must be a string");
  }
  if (value.length > MAX_WEBHOOK_URL_LENGTH) {
    throw invalid(`webhook_url exceeds maximum length of ${MAX_WEBHOOK_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // A port out of range makes the URL unparsable; anything else unparsable has no https scheme.
    if (/^https:\/\/[^/?#]*:[^/?#\]]*$|^https:\/\/[^/?#]*:[^/?#\]]*[/?#]/i.test(value)) {
      throw invalid("webhook_url has an invalid port");
    }
    throw invalid("webhook_url must use HTTPS");
  }
  if (url.port === "0") throw invalid("webhook_url has an invalid port");
  const loopbackHttp =
    allowLoopbackHttp && url.protocol === "http:" && isLoopbackHost(url.hostname);
  if (url.protocol !== "https:" && !loopbackHttp) throw invalid("webhook_url must use HTTPS");
  if (url.hostname === "") throw invalid("webhook_url must include a hostname");
  // Private and loopback targets are refused at delivery time, not here: placeholders pass.
  return value;
}

export function checkName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  // Unpublished texts: the guide says at most 120 characters and no control characters.
  if (typeof value !== "string") throw invalid("name must be a string");
  if (value.length > MAX_WEBHOOK_NAME_LENGTH) {
    throw invalid(`name must be at most ${MAX_WEBHOOK_NAME_LENGTH} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw invalid("name must not contain control characters");
  return value;
}

/**
 * Keys or slugs, each type once (published: "Unknown event type: <slug>", "Duplicate event type:
 * <slug>"); returned as keys, which is how they are stored.
 */
export function checkEventTypes(value: unknown, keyOfSlug: ReadonlyMap<string, string>): string[] {
  if (!Array.isArray(value)) throw invalid("event_types must be a list");
  if (value.length === 0) throw invalid("event_types must contain at least one event type");
  const keys = new Map<string, string>();
  for (const item of value) {
    const slug = typeof item === "string" ? slugOf(item) : String(item);
    const key = keyOfSlug.get(slug);
    // A key whose context is wrong (`host:low_credit`) names no type either.
    if (key === undefined || (typeof item === "string" && item !== slug && item !== key)) {
      throw invalid(`Unknown event type: ${slug}`);
    }
    if (keys.has(slug)) throw invalid(`Duplicate event type: ${slug}`);
    keys.set(slug, key);
  }
  return [...keys.values()];
}
