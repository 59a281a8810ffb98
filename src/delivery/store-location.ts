import { UserError } from "../user-error.js";

/**
 * Where the event store is, as the user names it (`--store`, `VAST_GCHAT_STORE`): a `postgres://`
 * or `postgresql://` URL is a PostgreSQL database shared by replicas, anything else the path of
 * an embedded SQLite file. A URL may carry a password, in its user part or as a `password=`
 * parameter: it is never printed, logged or put in an error (SPEC.md, "Store"); `redactStoreLocation`
 * is how a location is shown, and `scrubSecrets` takes the password out of any text that may
 * quote it (a driver's error message).
 */
export type StoreLocation =
  | { kind: "sqlite"; path: string }
  | {
      kind: "postgresql";
      url: string;
      /** The URL as it may be shown: the password replaced by ***. */
      shown: string;
      /** Every spelling of the password the URL carries, to take out of any text. */
      secrets: readonly string[];
    };

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i;
/** Query parameters of a libpq URL that hold a secret. */
const SECRET_PARAMETERS = ["password", "sslpassword"];
export const MASK = "***";

export function isPostgresUrl(location: string): boolean {
  return POSTGRES_URL.test(location);
}

/** Reads a location; a PostgreSQL URL that is not a URL is a usage error that does not quote it. */
export function parseStoreLocation(location: string): StoreLocation {
  if (!isPostgresUrl(location)) return { kind: "sqlite", path: location };
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    // The text itself may hold the password: only its form is described.
    throw new UserError("The store URL is not a valid postgresql:// URL.", {
      kind: "usage",
      hint: "Write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password).",
    });
  }
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (value === "") return;
    secrets.add(value);
    for (const form of [safeDecode(value), encodeURIComponent(safeDecode(value))]) {
      if (form !== "") secrets.add(form);
    }
  };
  if (url.password) add(url.password);
  for (const name of SECRET_PARAMETERS) {
    for (const value of url.searchParams.getAll(name)) add(value);
  }
  // Also what the raw text carries, before URL's own normalisation.
  const raw = /^[a-z]+:\/\/[^/@]*?:([^/@]*)@/i.exec(location)?.[1];
  if (raw) add(raw);
  return { kind: "postgresql", url: location, shown: redactUrl(url), secrets: [...secrets] };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = MASK;
  // Rebuilt by hand: URLSearchParams would percent-encode the mask.
  const query = [...copy.searchParams]
    .map(([name, value]) =>
      SECRET_PARAMETERS.includes(name.toLowerCase())
        ? `${encodeURIComponent(name)}=${MASK}`
        : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`,
    )
    .join("&");
  copy.search = "";
  const base = copy.href.replace(`:${encodeURIComponent(MASK)}@`, `:${MASK}@`);
  return query ? `${base}?${query}` : base;
}

/** How a location may be shown: a path as it is, a URL without its password. */
export function redactStoreLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    return (parseStoreLocation(location) as { shown: string }).shown;
  } catch {
    return "postgresql://(not a valid URL)";
  }
}

/** `text` with every spelling of the location's secrets replaced by ***. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a shorter spelling inside a longer one leaves no trace of it.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret) out = out.split(secret).join(MASK);
  }
  return out;
}
