import { StoreUnavailableError } from "../event-store.js";
import { scrubSecrets } from "../store-location.js";

/**
 * PostgreSQL's and the client's errors as the store reports them: a short reason (the SQLSTATE or
 * the socket error's code, and the message's first line), with the URL's password taken out of
 * anything that might quote it. The client's messages do not carry the password today (they name
 * the user, the host and the port: "password authentication failed for user ...", "connect
 * ECONNREFUSED 127.0.0.1:5432"), but a message is outside text: it is scrubbed all the same, and
 * the error kept as the cause (which DEBUG prints) is a scrubbed copy, never the client's object.
 */
export function describePgError(error: unknown, secrets: readonly string[]): string {
  const err = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof err?.code === "string" ? err.code : undefined;
  const message = typeof err?.message === "string" ? err.message : String(error);
  const line = (message.split("\n")[0] ?? "").trim().slice(0, 200);
  const text = code && !line.includes(code) ? `${code}: ${line}` : line;
  return scrubSecrets(text || "unknown error", secrets);
}

/** Codes of a server or network that is not there (now): retrying later may work. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
]);

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
  const message = (error as { message?: unknown } | undefined)?.message;
  return (
    typeof message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection timeout|Client has encountered a connection error|not queryable/i.test(
      message,
    )
  );
}

/** Any failure of the database as the interface promises it: StoreUnavailableError, scrubbed. */
export function unavailable(error: unknown, secrets: readonly string[]): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  const reason = describePgError(error, secrets);
  const cause = new Error(reason);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") Object.assign(cause, { code });
  const stack = (error as { stack?: unknown } | undefined)?.stack;
  if (typeof stack === "string") cause.stack = scrubSecrets(stack, secrets);
  return new StoreUnavailableError(`event store unavailable (${reason})`, { cause });
}
