import fc from "fast-check";
import { signPayload } from "../../src/vast/signature.js";

/**
 * What the fuzzer sends, as data fast-check can generate and shrink: a recipe for one raw HTTP
 * request. It is turned into bytes only when sent, because a valid signature needs the clock of
 * that moment. For requests that are well-formed HTTP, the recipe also says what README.md ("What
 * the adapter answers") promises as the answer (the oracle); for the rest, only "no 5xx but a
 * deliberate 503" is promised.
 */
export type Framing =
  | "length"
  | "chunked"
  | "none"
  | "length-short"
  | "length-long"
  | "length-bogus"
  | "length-twice"
  | "length-and-chunked"
  | "chunked-broken";

export type Signing =
  | "valid"
  | "none"
  | "wrong-secret"
  | "stale"
  | "future"
  | "odd-timestamp"
  | "odd-signature"
  | "timestamp-only"
  | "signature-only"
  | "twice";

export type BodySpec =
  | { kind: "empty" }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "json"; value: unknown }
  | { kind: "object"; value: Record<string, unknown> }
  | { kind: "text"; text: string }
  | { kind: "huge"; size: number; valid: boolean }
  | { kind: "deep"; depth: number; shape: "array" | "object" | "unbalanced" }
  | { kind: "raw"; text: string };

export interface Recipe {
  method: string;
  target: string;
  version: string;
  host: boolean;
  contentType: string | null;
  framing: Framing;
  /** How far a lying content-length is off, or which bogus value it has. */
  framingDetail: number;
  signing: Signing;
  /** For odd-timestamp / odd-signature: the value sent instead. */
  oddValue: string;
  /** Seconds off for stale / future. */
  skewS: number;
  extraHeaders: Array<[string, string]>;
  body: BodySpec;
  /** How many writes the bytes are split into. */
  pieces: number;
}

export const MAX_BODY_BYTES = 256 * 1024;
export const ORACLE_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const ORACLE_TARGETS = ["/", "/?x=1", "/health", "/metrics", "/nope", "/health/", "/%2F"];

// ---- arbitraries -----------------------------------------------------------------------------

const method = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...ORACLE_METHODS) },
  { weight: 6, arbitrary: fc.constant("POST") },
  {
    weight: 2,
    arbitrary: fc.constantFrom("CONNECT", "TRACE", "post", "PROPFIND", "BREW", "GET /", " POST"),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z!#$%&'*+.^_`|~-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 12 }) },
);

const target = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom(...ORACLE_TARGETS) },
  { weight: 10, arbitrary: fc.constant("/") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "*",
      "http://127.0.0.1/",
      "//",
      "/../../etc/passwd",
      "/%",
      "/health?%zz",
      "/\u00e9",
      "/%00",
      "?",
      "",
    ),
  },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => `/${"a".repeat(n)}`) },
  {
    weight: 2,
    arbitrary: fc.string({ unit: "binary-ascii", maxLength: 40 }).map((path) => `/${path}`),
  },
);

const version = fc.oneof(
  { weight: 20, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 2, arbitrary: fc.constant("HTTP/1.0") },
  { weight: 1, arbitrary: fc.constantFrom("HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTX/1.1", "") },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  { weight: 2, arbitrary: fc.constant(null) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "text/plain",
      "application/json; charset=utf-16",
      "multipart/form-data; boundary=x",
      "application/x-www-form-urlencoded",
      "",
    ),
  },
);

const framing = fc.oneof(
  { weight: 14, arbitrary: fc.constant<Framing>("length") },
  { weight: 3, arbitrary: fc.constant<Framing>("chunked") },
  {
    weight: 4,
    arbitrary: fc.constantFrom<Framing>(
      "none",
      "length-short",
      "length-long",
      "length-bogus",
      "length-twice",
      "length-and-chunked",
      "chunked-broken",
    ),
  },
);

const signing = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Signing>("valid") },
  {
    weight: 6,
    arbitrary: fc.constantFrom<Signing>(
      "none",
      "wrong-secret",
      "stale",
      "future",
      "odd-timestamp",
      "odd-signature",
      "timestamp-only",
      "signature-only",
      "twice",
    ),
  },
);

/** Values for the odd timestamp or signature: near misses and junk, some not even ASCII. */
const oddValue = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "0",
    "-1",
    "1e9",
    "0x10",
    "99999999999999999999",
    "NaN",
    "sha256=",
    "sha256",
    "SHA256=00",
    `sha256=${"0".repeat(64)}`,
    `sha256=${"g".repeat(64)}`,
    `sha256=${"a".repeat(10_000)}`,
  ),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary-ascii", maxLength: 80 }),
  fc.stringMatching(/^sha256=[0-9a-f]{0,70}$/),
);

const headerName = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
  fc.constantFrom(
    "X-Vast-Event-Id",
    "X-Vast-Delivery-Attempt",
    "Connection",
    "Expect",
    "Upgrade",
    "Cookie",
    "Authorization",
  ),
);
const safeHeaderValue = fc.stringMatching(/^[ -~]{0,60}$/).map((value) => value.trim());
const wildHeader = fc.oneof(
  fc.tuple(fc.string({ unit: "binary-ascii", maxLength: 20 }), fc.string({ maxLength: 40 })),
  fc.tuple(
    fc.constant("X-Big"),
    fc.nat({ max: 40_000 }).map((n) => "b".repeat(n)),
  ),
  fc.tuple(fc.constant("X-Folded"), fc.constant("first\r\n  folded continuation")),
  fc.tuple(fc.constant("Expect"), fc.constant("100-continue")),
  fc.tuple(fc.constant("Connection"), fc.constantFrom("upgrade", "keep-alive, Upgrade")),
);
const extraHeaders = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Array<[string, string]>>([]) },
  { weight: 3, arbitrary: fc.array(fc.tuple(headerName, safeHeaderValue), { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.array(wildHeader, { minLength: 1, maxLength: 3 }) },
);

const VAST_KEYS = ["event_id", "user_id", "notif_type", "subject", "message", "timestamp"];
const oddField = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom(
    "",
    "   ",
    "<b>bold</b> *x* _y_ ~z~ `c` <users/all>",
    "\u0000\u0007\u001b[31m",
    "\ud83d\ude80".repeat(500),
    1e308,
    -0,
    Number.MAX_SAFE_INTEGER + 2,
  ),
  fc.nat({ max: 60_000 }).map((n) => "x".repeat(n)),
);
/** Objects shaped like a delivery but with every field odd, plus keys that trip naive code. */
const vastLike = fc
  .record(
    {
      event_id: oddField,
      user_id: oddField,
      notif_type: fc.oneof(
        fc.constantFrom("low_credit", "instance_stopped", "client:outbid", "webhook_test", ""),
        oddField,
      ),
      subject: oddField,
      message: oddField,
      timestamp: oddField,
    },
    { requiredKeys: [] },
  )
  .chain((fields) =>
    fc
      .dictionary(
        fc.oneof(fc.constantFrom("__proto__", "constructor", "prototype", "toString"), fc.string()),
        fc.jsonValue({ maxDepth: 2 }),
        { maxKeys: 3 },
      )
      .map((extra) => ({ ...extra, ...fields }) as Record<string, unknown>),
  );

const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant<BodySpec>({ kind: "empty" }) },
  {
    weight: 3,
    arbitrary: fc
      .uint8Array({ maxLength: 2048 })
      .map((bytes): BodySpec => ({ kind: "bytes", bytes })),
  },
  {
    weight: 4,
    arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value): BodySpec => ({ kind: "json", value })),
  },
  {
    weight: 4,
    arbitrary: fc
      .dictionary(
        fc.oneof(fc.constantFrom(...VAST_KEYS), fc.string()),
        fc.jsonValue({ maxDepth: 3 }),
      )
      .map((value): BodySpec => ({ kind: "object", value })),
  },
  { weight: 5, arbitrary: vastLike.map((value): BodySpec => ({ kind: "object", value })) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: "binary", maxLength: 300 })
      .map((text): BodySpec => ({ kind: "text", text })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        size: fc.constantFrom(
          150 * 1024,
          MAX_BODY_BYTES - 1,
          MAX_BODY_BYTES,
          MAX_BODY_BYTES + 1,
          300 * 1024,
          1024 * 1024,
        ),
        valid: fc.boolean(),
      })
      .map(({ size, valid }): BodySpec => ({ kind: "huge", size, valid })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        depth: fc.constantFrom(100, 1000, 5000, 20_000, 40_000, 120_000),
        shape: fc.constantFrom<"array" | "object" | "unbalanced">("array", "object", "unbalanced"),
      })
      .map(({ depth, shape }): BodySpec => ({ kind: "deep", depth, shape })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '\ufeff{"event_id":"bom"}',
        '{"subject":"\udc00 lone surrogate"}',
        '{"a":1,"a":2}',
        '{"event_id":1e400}',
        '{"__proto__":{"event_id":"polluted"}}',
        "[]",
        "null",
        '"string"',
        "1",
        "true",
        "{",
        "{}",
        "{}{}",
        '{"x":NaN}',
        "\u0000",
        "invalid-utf8",
      )
      .map((text): BodySpec => ({ kind: "raw", text })),
  },
);

export function recipeArbitrary(): fc.Arbitrary<Recipe> {
  return fc.record({
    method,
    target,
    version,
    host: fc.oneof(
      { weight: 15, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    contentType,
    framing,
    framingDetail: fc.nat({ max: 1000 }),
    signing,
    oddValue,
    skewS: fc.integer({ min: 310, max: 10_000_000 }),
    extraHeaders,
    body,
    pieces: fc.oneof(
      { weight: 5, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.integer({ min: 2, max: 8 }) },
    ),
  });
}

// ---- bytes -----------------------------------------------------------------------------------

/** Invalid UTF-8 (a lone continuation byte) inside an otherwise fine JSON object. */
function invalidUtf8Json(): Buffer {
  return Buffer.concat([
    Buffer.from('{"subject":"', "latin1"),
    Buffer.from([0xc3, 0x28]),
    Buffer.from('"}'),
  ]);
}

export function bodyBytes(spec: BodySpec): Buffer {
  switch (spec.kind) {
    case "empty":
      return Buffer.alloc(0);
    case "bytes":
      return Buffer.from(spec.bytes);
    case "json":
      return Buffer.from(JSON.stringify(spec.value) ?? "null", "utf8");
    case "object":
      return Buffer.from(JSON.stringify(spec.value), "utf8");
    case "text":
      return Buffer.from(spec.text, "utf8");
    case "huge": {
      // A JSON object of exactly `size` bytes, or the same size of junk.
      if (!spec.valid) return Buffer.alloc(spec.size, 0x7b);
      const frame = '{"pad":""}';
      return Buffer.from(`{"pad":"${"p".repeat(Math.max(0, spec.size - frame.length))}"}`, "utf8");
    }
    case "deep": {
      if (spec.shape === "array") {
        return Buffer.from(`{"a":${"[".repeat(spec.depth)}${"]".repeat(spec.depth)}}`, "utf8");
      }
      if (spec.shape === "object") {
        return Buffer.from(`${'{"a":'.repeat(spec.depth)}1${"}".repeat(spec.depth)}`, "utf8");
      }
      return Buffer.from(`{"a":${"[".repeat(spec.depth)}`, "utf8");
    }
    case "raw":
      return spec.text === "invalid-utf8" ? invalidUtf8Json() : Buffer.from(spec.text, "utf8");
  }
}

export interface SigningKeys {
  secret: string;
  otherSecret: string;
}

/** The two signature headers as sent (before the server trims them), or absent. */
function signatureHeaders(
  recipe: Recipe,
  bodyBuffer: Buffer,
  keys: SigningKeys,
  nowS: number,
): Array<[string, string]> {
  const now = String(nowS);
  const sign = (secret: string, timestamp: string) => signPayload(secret, timestamp, bodyBuffer);
  const ts = (value: string): [string, string] => ["X-Vast-Timestamp", value];
  const sig = (value: string): [string, string] => ["X-Vast-Signature-256", value];
  switch (recipe.signing) {
    case "valid":
      return [ts(now), sig(sign(keys.secret, now))];
    case "none":
      return [];
    case "wrong-secret":
      return [ts(now), sig(sign(keys.otherSecret, now))];
    case "stale": {
      const then = String(nowS - recipe.skewS);
      return [ts(then), sig(sign(keys.secret, then))];
    }
    case "future": {
      const then = String(nowS + recipe.skewS);
      return [ts(then), sig(sign(keys.secret, then))];
    }
    case "odd-timestamp":
      return [ts(recipe.oddValue), sig(sign(keys.secret, recipe.oddValue))];
    case "odd-signature":
      return [ts(now), sig(recipe.oddValue)];
    case "timestamp-only":
      return [ts(now)];
    case "signature-only":
      return [sig(sign(keys.secret, now))];
    case "twice":
      return [ts(now), sig(sign(keys.secret, now)), sig(sign(keys.secret, now))];
  }
}

const BOGUS_LENGTHS = ["abc", "-1", "1e3", "0x10", "+5", "", "99999999999999999999", "5, 6"];

function chunked(bytes: Buffer, sizes: number): Buffer {
  const parts: Buffer[] = [];
  const step = Math.max(1, (sizes % 97) + 1);
  for (let at = 0; at < bytes.length; at += step) {
    const chunk = bytes.subarray(at, at + step);
    parts.push(
      Buffer.from(`${chunk.length.toString(16)}\r\n`, "latin1"),
      chunk,
      Buffer.from("\r\n"),
    );
  }
  parts.push(Buffer.from("0\r\n\r\n", "latin1"));
  return Buffer.concat(parts);
}

function framingHeaders(
  recipe: Recipe,
  length: number,
): { headers: Array<[string, string]>; encode: (b: Buffer) => Buffer } {
  const identity = (b: Buffer) => b;
  const detail = recipe.framingDetail;
  switch (recipe.framing) {
    case "length":
      return { headers: [["Content-Length", String(length)]], encode: identity };
    case "none":
      return { headers: [], encode: identity };
    case "length-short":
      return {
        headers: [["Content-Length", String(Math.max(0, length - 1 - (detail % 64)))]],
        encode: identity,
      };
    case "length-long":
      return { headers: [["Content-Length", String(length + 1 + detail)]], encode: identity };
    case "length-bogus":
      return {
        headers: [["Content-Length", BOGUS_LENGTHS[detail % BOGUS_LENGTHS.length] ?? "abc"]],
        encode: identity,
      };
    case "length-twice":
      return {
        headers: [
          ["Content-Length", String(length)],
          ["Content-Length", String(detail % 2 === 0 ? length : length + 1)],
        ],
        encode: identity,
      };
    case "length-and-chunked":
      return {
        headers: [
          ["Content-Length", String(length)],
          ["Transfer-Encoding", "chunked"],
        ],
        encode: (b) => chunked(b, detail),
      };
    case "chunked":
      return { headers: [["Transfer-Encoding", "chunked"]], encode: (b) => chunked(b, detail) };
    case "chunked-broken":
      return {
        headers: [["Transfer-Encoding", detail % 2 === 0 ? "chunked" : "gzip, chunked"]],
        encode: (b) =>
          Buffer.concat([
            Buffer.from(
              detail % 3 === 0 ? "zz\r\n" : `${(b.length + 5).toString(16)}\r\n`,
              "latin1",
            ),
            b,
            Buffer.from(detail % 5 === 0 ? "0\r\n\r\n" : "\r\n", "latin1"),
          ]),
      };
  }
}

export interface Materialised {
  /** The whole request, split into the pieces it is written in. */
  pieces: Buffer[];
  /** What README.md says the answer must be; undefined when the request is not well-formed HTTP. */
  expected: Oracle | undefined;
  bodyLength: number;
}

export function materialise(
  recipe: Recipe,
  keys: SigningKeys,
  port: number,
  nowS: number,
): Materialised {
  const payload = bodyBytes(recipe.body);
  const framed = framingHeaders(recipe, payload.length);
  const signed = signatureHeaders(recipe, payload, keys, nowS);
  const headers: Array<[string, string]> = [
    ...(recipe.host ? ([["Host", `127.0.0.1:${port}`]] as Array<[string, string]>) : []),
    ...(recipe.contentType === null
      ? []
      : ([["Content-Type", recipe.contentType]] as Array<[string, string]>)),
    ...signed,
    ...recipe.extraHeaders,
    ...framed.headers,
  ];
  const head = `${recipe.method} ${recipe.target} ${recipe.version}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join("")}\r\n`;
  const whole = Buffer.concat([Buffer.from(head, "latin1"), framed.encode(payload)]);
  return {
    pieces: split(whole, recipe.pieces),
    expected: oracle(recipe, payload, signed, keys.secret, nowS),
    bodyLength: payload.length,
  };
}

function split(bytes: Buffer, pieces: number): Buffer[] {
  if (pieces <= 1 || bytes.length < pieces) return [bytes];
  const size = Math.ceil(bytes.length / pieces);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

// ---- the oracle ------------------------------------------------------------------------------

/** Printable ASCII only: a value node:http takes as it is (after trimming spaces). */
const PLAIN = /^[\x20-\x7e]*$/;

function isWellFormed(recipe: Recipe, signed: Array<[string, string]>): boolean {
  if (!ORACLE_METHODS.includes(recipe.method)) return false;
  if (!ORACLE_TARGETS.includes(recipe.target)) return false;
  if (recipe.version !== "HTTP/1.1") return false;
  if (!recipe.host) return false;
  if (recipe.framing !== "length" && recipe.framing !== "chunked") return false;
  if (recipe.contentType !== null && !PLAIN.test(recipe.contentType)) return false;
  const extras = [...recipe.extraHeaders, ...signed];
  // Expect/Upgrade/Connection change how node:http treats the exchange; keep them out of the oracle.
  const special = /^(expect|upgrade|connection|content-length|transfer-encoding|host)$/i;
  const size = extras.reduce((total, [name, value]) => total + name.length + value.length + 4, 0);
  return (
    size < 8 * 1024 &&
    extras.every(
      ([name, value]) => /^[A-Za-z0-9-]+$/.test(name) && PLAIN.test(value) && !special.test(name),
    )
  );
}

/**
 * The server's view of a header: node:http trims surrounding spaces and joins repeats with ", ".
 * The signature headers come before the extra ones, which may (rarely) repeat them.
 */
function seen(headers: Array<[string, string]>, name: string): string | undefined {
  const values = headers
    .filter(([key]) => key.toLowerCase() === name)
    .map(([, value]) => value.trim());
  return values.length ? values.join(", ") : undefined;
}

/** The webhook path serve is started with (`serve` without --path). */
export const WEBHOOK_PATH = "/";
const HEALTH_PATH = "/health";
/** What a signature header must look like to be checked at all (src/adapter/signature-headers.ts). */
const TIMESTAMP_SHAPE = /^\d{1,12}$/;
const SIGNATURE_SHAPE = /^sha256=[0-9a-f]{64}$/;
/** Either way from now; older or newer is refused before the body is read. */
const SIGNATURE_WINDOW_S = 300;
/** How near the window's edge our clock and the server's may disagree: no promise in there. */
const CLOCK_MARGIN_S = 10;

export interface Oracle {
  status: number;
  /**
   * The answer comes before the body is read (a refusal from the request line or the headers, or
   * 413), and the connection then closes: the peer may reset it while we are still writing the
   * body, and a reset can discard the answer before we read it.
   */
  bodyUnread: boolean;
}

function payloadStatus(payload: Buffer): number {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    return 400;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? 200 : 400;
}

/**
 * The answer README.md gives ("What the adapter answers"), in the order the public listener
 * decides (src/adapter/server.ts, handler.ts, signature-headers.ts): the request line first
 * (/health: 200 to GET and HEAD, 405 otherwise; any path but the webhook's, /metrics included:
 * 404; a method but POST: 405), then the signature headers alone (missing, malformed, i.e. a
 * timestamp not in decimal or a signature not `sha256=` and 64 lower-case hex digits, or outside
 * the window: 401), then the size (413), and only then the body: a signature that does not match
 * (401), JSON that is not an object (400), else 200. A rotation in progress (503) never happens
 * in the soak.
 */
export function expectedStatus(
  recipe: Pick<Recipe, "method" | "target" | "extraHeaders">,
  payload: Buffer,
  signed: Array<[string, string]>,
  secret: string,
  nowS: number,
): Oracle | undefined {
  const unread = (status: number): Oracle => ({ status, bodyUnread: payload.length > 0 });
  const path = new URL(recipe.target, "http://x").pathname;
  const method = recipe.method;
  if (path === HEALTH_PATH) return unread(method === "GET" || method === "HEAD" ? 200 : 405);
  if (path !== WEBHOOK_PATH) return unread(404);
  if (method !== "POST") return unread(405);

  const headers = [...signed, ...recipe.extraHeaders];
  const timestamp = seen(headers, "x-vast-timestamp");
  const signature = seen(headers, "x-vast-signature-256");
  if (!timestamp || !signature) return unread(401);
  if (!TIMESTAMP_SHAPE.test(timestamp) || !SIGNATURE_SHAPE.test(signature)) return unread(401);
  const age = Math.abs(nowS - Number(timestamp));
  // Near the edge of the window the server's clock decides: no promise either way.
  if (Math.abs(age - SIGNATURE_WINDOW_S) < CLOCK_MARGIN_S) return undefined;
  if (age > SIGNATURE_WINDOW_S) return unread(401);

  if (payload.length > MAX_BODY_BYTES) return { status: 413, bodyUnread: true };
  if (signature !== signPayload(secret, timestamp, payload)) {
    return { status: 401, bodyUnread: false };
  }
  return { status: payloadStatus(payload), bodyUnread: false };
}

function oracle(
  recipe: Recipe,
  payload: Buffer,
  signed: Array<[string, string]>,
  secret: string,
  nowS: number,
): Oracle | undefined {
  return isWellFormed(recipe, signed)
    ? expectedStatus(recipe, payload, signed, secret, nowS)
    : undefined;
}

/** One line about a recipe for the report: no secret in it (signatures are HMACs, not keys). */
export function describeRecipe(recipe: Recipe, bodyLength: number): string {
  const target = recipe.target.length > 40 ? `${recipe.target.slice(0, 40)}…` : recipe.target;
  return `${JSON.stringify(recipe.method)} ${JSON.stringify(target)} ${JSON.stringify(recipe.version)} framing=${recipe.framing} signing=${recipe.signing} body=${recipe.body.kind} (${bodyLength} B) pieces=${recipe.pieces} extra headers=${recipe.extraHeaders.length}`;
}
