import { describe, expect, it } from "vitest";
import { handleRequest, type ReceiverDeps, refuseByHeaders } from "../../src/adapter/handler.js";
import { type AcceptInput, StoreUnavailableError } from "../../src/delivery/event-store.js";
import { signPayload } from "../../src/vast/signature.js";

/**
 * The public receiver's answers (README, "What the adapter answers") as a table over the pure
 * handler: method, path, headers and body in, status and error out, with no server and no store.
 * What only the node:http side does (413 and the body cap, refusing before the body is read) is
 * in receiver.test.ts; this file holds the rule for each request.
 */
const SECRET = "whsec-table-0123456789";
const PREVIOUS = "whsec-previous-9876543210";
const NOW = 1_750_000_000;

type Headers = Record<string, string | string[] | undefined>;

interface Row {
  name: string;
  method: string;
  path: string;
  headers: Headers;
  body: string | Buffer;
  status: number;
  /** The `error` of the JSON answer; undefined for a 200. */
  error?: string;
  /** What the store does with an accept (default: keeps it as new). */
  store?: "keeps" | "knows it" | "locked";
  rotating?: boolean;
}

const event = (id: string) => JSON.stringify({ event_id: id, notif_type: "client:low_credit" });

/** Vast.ai's headers for `body`, signed with `secret` at `at` (seconds). */
function signed(body: string | Buffer, secret = SECRET, at = NOW): Headers {
  const timestamp = String(at);
  return {
    "content-type": "application/json",
    "x-vast-timestamp": timestamp,
    "x-vast-signature-256": signPayload(secret, timestamp, Buffer.from(body)),
  };
}

function without(headers: Headers, name: string): Headers {
  const { [name]: _, ...rest } = headers;
  return rest;
}

const ok = event("ev-1");
/** JSON but for one byte that UTF-8 does not allow. */
const NOT_UTF8 = Buffer.concat([
  Buffer.from('{"subject": "'),
  Buffer.from([0xff]),
  Buffer.from('"}'),
]);
const rows: Row[] = [
  // POST to the webhook path: the signature, then the body, then the store.
  {
    name: "signed event, kept",
    method: "POST",
    path: "/",
    headers: signed(ok),
    body: ok,
    status: 200,
  },
  {
    name: "signed event already kept",
    method: "POST",
    path: "/",
    headers: signed(ok),
    body: ok,
    status: 200,
    store: "knows it",
  },
  {
    name: "signed with the previous secret during a rotation",
    method: "POST",
    path: "/",
    headers: signed(ok, PREVIOUS),
    body: ok,
    status: 200,
  },
  {
    name: "signed 300 s ago (the window's edge)",
    method: "POST",
    path: "/",
    headers: signed(ok, SECRET, NOW - 300),
    body: ok,
    status: 200,
  },
  {
    name: "signed 300 s ahead (a clock ahead of ours)",
    method: "POST",
    path: "/",
    headers: signed(ok, SECRET, NOW + 300),
    body: ok,
    status: 200,
  },
  {
    name: "wrong secret",
    method: "POST",
    path: "/",
    headers: signed(ok, "not-the-secret"),
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "body changed after signing",
    method: "POST",
    path: "/",
    headers: signed(ok),
    body: event("ev-2"),
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "no signature headers",
    method: "POST",
    path: "/",
    headers: { "content-type": "application/json" },
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "no timestamp",
    method: "POST",
    path: "/",
    headers: without(signed(ok), "x-vast-timestamp"),
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "no signature",
    method: "POST",
    path: "/",
    headers: without(signed(ok), "x-vast-signature-256"),
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "stale: signed 301 s ago",
    method: "POST",
    path: "/",
    headers: signed(ok, SECRET, NOW - 301),
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "from the future: 301 s ahead",
    method: "POST",
    path: "/",
    headers: signed(ok, SECRET, NOW + 301),
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "a timestamp that is not decimal seconds",
    method: "POST",
    path: "/",
    headers: { ...signed(ok), "x-vast-timestamp": `${NOW}.0` },
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "the signature in upper case",
    method: "POST",
    path: "/",
    headers: {
      ...signed(ok),
      "x-vast-signature-256": String(signed(ok)["x-vast-signature-256"]).toUpperCase(),
    },
    body: ok,
    status: 401,
    error: "invalid_signature",
  },
  {
    name: "a repeated signature header: the first one counts",
    method: "POST",
    path: "/",
    headers: {
      ...signed(ok),
      "x-vast-signature-256": [
        String(signed(ok)["x-vast-signature-256"]),
        String(signed(ok, "not-the-secret")["x-vast-signature-256"]),
      ],
    },
    body: ok,
    status: 200,
  },
  {
    name: "a mismatch while a rotation is under way: try again",
    method: "POST",
    path: "/",
    headers: signed(ok, "the-secret-vast-just-issued"),
    body: ok,
    status: 503,
    error: "unavailable",
    rotating: true,
  },
  {
    name: "signed, not JSON",
    method: "POST",
    path: "/",
    headers: signed("not json"),
    body: "not json",
    status: 400,
    error: "invalid_json",
  },
  {
    name: "signed, not UTF-8",
    method: "POST",
    path: "/",
    headers: signed(NOT_UTF8),
    body: NOT_UTF8,
    status: 400,
    error: "invalid_json",
  },
  {
    name: "signed JSON array",
    method: "POST",
    path: "/",
    headers: signed("[1,2]"),
    body: "[1,2]",
    status: 400,
    error: "invalid_payload",
  },
  {
    name: "signed JSON null",
    method: "POST",
    path: "/",
    headers: signed("null"),
    body: "null",
    status: 400,
    error: "invalid_payload",
  },
  {
    name: "signed JSON string",
    method: "POST",
    path: "/",
    headers: signed('"hello"'),
    body: '"hello"',
    status: 400,
    error: "invalid_payload",
  },
  {
    name: "signed, but the store cannot keep it",
    method: "POST",
    path: "/",
    headers: signed(ok),
    body: ok,
    status: 503,
    error: "unavailable",
    store: "locked",
  },
  // Everything else: never a redirect, never the store.
  { name: "GET /health", method: "GET", path: "/health", headers: {}, body: "", status: 200 },
  { name: "HEAD /health", method: "HEAD", path: "/health", headers: {}, body: "", status: 200 },
  {
    name: "POST /health",
    method: "POST",
    path: "/health",
    headers: signed(ok),
    body: ok,
    status: 405,
    error: "method_not_allowed",
  },
  {
    name: "GET on the webhook path",
    method: "GET",
    path: "/",
    headers: {},
    body: "",
    status: 405,
    error: "method_not_allowed",
  },
  {
    name: "PUT on the webhook path, signed",
    method: "PUT",
    path: "/",
    headers: signed(ok),
    body: ok,
    status: 405,
    error: "method_not_allowed",
  },
  {
    name: "GET /metrics: not on the public port",
    method: "GET",
    path: "/metrics",
    headers: {},
    body: "",
    status: 404,
    error: "not_found",
  },
  {
    name: "a signed delivery to another path",
    method: "POST",
    path: "/other",
    headers: signed(ok),
    body: ok,
    status: 404,
    error: "not_found",
  },
  {
    name: "a path that only begins like the webhook's",
    method: "POST",
    path: "//",
    headers: signed(ok),
    body: ok,
    status: 404,
    error: "not_found",
  },
];

/** A store in memory that does what the row says. */
function storeFor(row: Row) {
  const kept: AcceptInput[] = [];
  const store: ReceiverDeps["store"] = {
    async accept(input) {
      if (row.store === "locked") throw new StoreUnavailableError("database is locked");
      kept.push(input);
      return { duplicate: row.store === "knows it" };
    },
  };
  return { store, kept };
}

describe("handleRequest", () => {
  for (const row of rows) {
    it(`${row.method} ${row.path} -> ${row.status}: ${row.name}`, () => checkAnswer(row));
  }
});

/** Runs the row's request through the handler and checks each part of the answer. */
async function checkAnswer(row: Row) {
  const { store, kept } = storeFor(row);
  const answer = await handleRequest(
    {
      method: row.method,
      path: row.path,
      headers: row.headers,
      body: Buffer.from(row.body),
    },
    {
      path: "/",
      secrets: () => [SECRET, PREVIOUS],
      rotating: () => row.rotating ?? false,
      store,
      now: () => NOW * 1000,
      instance: "instance-1",
    },
  );
  expect(answer.status).toBe(row.status);
  if (row.error) {
    expect(answer.body).toEqual({ ok: false, error: row.error });
  } else {
    expect(answer.body).toMatchObject({ ok: true });
  }
  // Only a verified, well-formed delivery reaches the store, and only a kept one gets a 200.
  const delivered = row.status === 200 && row.path === "/";
  expect(kept).toHaveLength(delivered ? 1 : 0);
  if (delivered) {
    const body = Buffer.from(row.body).toString("utf8");
    expect(answer.body).toEqual({
      ok: true,
      event_id: JSON.parse(body).event_id,
      duplicate: row.store === "knows it",
    });
    expect(kept[0]).toMatchObject({ eventId: "ev-1", payload: body, receivedAt: NOW * 1000 });
  }
  if (row.status === 405)
    expect(answer.headers?.allow).toBe(row.path === "/" ? "POST" : "GET, HEAD");
  if (row.path === "/health" && row.status === 200) {
    expect(answer.body).toEqual({ ok: true, instance: "instance-1" });
  }
}

/** What the headers alone decide, before the body is read (server.ts asks this first). */
describe("refuseByHeaders", () => {
  const good = signed(ok);
  it.each<[string, Headers, string | undefined]>([
    ["fresh and well formed: the body decides", good, undefined],
    ["no headers", {}, "missing"],
    ["no timestamp", without(good, "x-vast-timestamp"), "missing"],
    ["no signature", without(good, "x-vast-signature-256"), "missing"],
    [
      "a signature no HMAC could produce",
      { ...good, "x-vast-signature-256": "sha256=xyz" },
      "malformed",
    ],
    ["a timestamp in milliseconds", { ...good, "x-vast-timestamp": `${NOW}000` }, "malformed"],
    ["a timestamp with a sign", { ...good, "x-vast-timestamp": `+${NOW}` }, "malformed"],
    ["stale", signed(ok, SECRET, NOW - 301), "stale"],
    ["ahead", signed(ok, SECRET, NOW + 301), "stale"],
  ])("%s", (_name, headers, problem) => {
    const answer = refuseByHeaders(headers, { now: () => NOW * 1000 });
    if (problem === undefined) {
      expect(answer).toBeUndefined();
      return;
    }
    expect(answer).toMatchObject({
      status: 401,
      body: { ok: false, error: "invalid_signature" },
      outcome: { kind: "rejected", error: "invalid_signature", detail: problem },
    });
  });
});
