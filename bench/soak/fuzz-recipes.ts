import fc from "fast-check";
import { signPayload } from "../../src/vast/signature.js";

/**
 * What the fuzzer sends, as data fast-check can generate and shrink: a recipe for one raw HTTP
 * request. It is turned into bytes only when sent, because a valid signature needs the clock of
 * that moment. For requests that are well-formed HTTP, the recipe also says what README.md ("What
 * the adapter answers") promises as the answer (the oracle); for the rest, only "no 5xx but a
 * deliberate 503" is promised.
 */
type Header = [string, string];

/** fc.oneof over [weight, arbitrary or list of constants] pairs. */
function pick<T>(...options: Array<[number, fc.Arbitrary<T> | readonly T[]]>): fc.Arbitrary<T> {
  return fc.oneof(
    ...options.map(([weight, choice]) => ({
      weight,
      arbitrary: choice instanceof fc.Arbitrary ? choice : fc.constantFrom(...choice),
    })),
  );
}
const binary = (maxLength: number) => fc.string({ unit: "binary-ascii", maxLength });
const words = (text: string) => text.split(" ");

const MAX_BODY_BYTES = 256 * 1024;
const ORACLE_METHODS = words("GET POST PUT DELETE PATCH OPTIONS HEAD");
const ORACLE_TARGETS = words("/ /?x=1 /health /metrics /nope /health/ /%2F");

/** How the body is framed: `d` says how far a lying content-length is off, or which bogus value. */
const length = (value: number | string): Header => ["Content-Length", String(value)];
const encoding = (value: string): Header => ["Transfer-Encoding", value];
const BOGUS_LENGTHS = ["abc", "-1", "1e3", "0x10", "+5", "", "99999999999999999999", "5, 6"];
function chunked(bytes: Buffer, detail: number): Buffer {
  const step = (detail % 97) + 1;
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += step) {
    const chunk = bytes.subarray(at, at + step);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n"));
  }
  return Buffer.concat([...parts, Buffer.from("0\r\n\r\n")]);
}
const FRAMINGS = {
  length: (b: Buffer) => [[length(b.length)], b],
  chunked: (b: Buffer, d: number) => [[encoding("chunked")], chunked(b, d)],
  none: (b: Buffer) => [[], b],
  "length-short": (b: Buffer, d: number) => [[length(Math.max(0, b.length - 1 - (d % 64)))], b],
  "length-long": (b: Buffer, d: number) => [[length(b.length + 1 + d)], b],
  "length-bogus": (b: Buffer, d: number) => [[length(BOGUS_LENGTHS[d % 8] ?? "abc")], b],
  "length-twice": (b: Buffer, d: number) => [[length(b.length), length(b.length + (d % 2))], b],
  "length-and-chunked": (b: Buffer, d: number) => [
    [length(b.length), encoding("chunked")],
    chunked(b, d),
  ],
  "chunked-broken": (b: Buffer, d: number) => [
    [encoding(d % 2 === 0 ? "chunked" : "gzip, chunked")],
    Buffer.concat([
      Buffer.from(d % 3 === 0 ? "zz\r\n" : `${(b.length + 5).toString(16)}\r\n`),
      b,
      Buffer.from(d % 5 === 0 ? "0\r\n\r\n" : "\r\n"),
    ]),
  ],
} satisfies Record<string, (body: Buffer, detail: number) => [Header[], Buffer]>;
type Framing = keyof typeof FRAMINGS;

/**
 * The signature headers as sent (before the server trims them), or absent: `odd` is the value
 * sent instead for odd-timestamp / odd-signature, `skew` the seconds off for stale / future.
 */
type SignWith = { now: number; odd: string; skew: number; secret: string; otherSecret: string };
const timestamp = (value: string | number): Header => ["X-Vast-Timestamp", String(value)];
const signature = (value: string): Header => ["X-Vast-Signature-256", value];
const signed = (k: SignWith & { body: Buffer }, time: string | number, secret = k.secret) => [
  timestamp(time),
  signature(signPayload(secret, String(time), k.body)),
];
const SIGNINGS = {
  valid: (k) => signed(k, k.now),
  none: () => [],
  "wrong-secret": (k) => signed(k, k.now, k.otherSecret),
  stale: (k) => signed(k, k.now - k.skew),
  future: (k) => signed(k, k.now + k.skew),
  "odd-timestamp": (k) => signed(k, k.odd),
  "odd-signature": (k) => [timestamp(k.now), signature(k.odd)],
  "timestamp-only": (k) => [timestamp(k.now)],
  "signature-only": (k) => signed(k, k.now).slice(1),
  twice: (k) => [...signed(k, k.now), ...signed(k, k.now).slice(1)],
} satisfies Record<string, (k: SignWith & { body: Buffer }) => Header[]>;
type Signing = keyof typeof SIGNINGS;

/** Values for the odd timestamp or signature: near misses and junk, some not even ASCII. */
const oddValue = fc.oneof(
  fc.constantFrom(
    ...["", " ", ...words("0 -1 1e9 0x10 99999999999999999999 NaN sha256= sha256 SHA256=00")],
    ...[`sha256=${"0".repeat(64)}`, `sha256=${"g".repeat(64)}`, `sha256=${"a".repeat(10_000)}`],
  ),
  fc.string({ maxLength: 80 }),
  binary(80),
  fc.stringMatching(/^sha256=[0-9a-f]{0,70}$/),
);

const NAMES =
  "X-Vast-Event-Id X-Vast-Delivery-Attempt Connection Expect Upgrade Cookie Authorization";
const headerName = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
  fc.constantFrom(...words(NAMES)),
);
const safeHeaderValue = fc.stringMatching(/^[ -~]{0,60}$/).map((value) => value.trim());
const wildHeader = fc.oneof(
  fc.tuple(binary(20), fc.string({ maxLength: 40 })),
  fc.tuple(
    fc.constant("X-Big"),
    fc.nat({ max: 40_000 }).map((n) => "b".repeat(n)),
  ),
  fc.constant<Header>(["X-Folded", "first\r\n  folded continuation"]),
  fc.constant<Header>(["Expect", "100-continue"]),
  fc.tuple(fc.constant("Connection"), fc.constantFrom("upgrade", "keep-alive, Upgrade")),
);

/** A body: its kind (for the report) and its bytes. */
const body = (kind: string) => (b: Buffer | string | Uint8Array) => ({
  kind,
  bytes: Buffer.from(b),
});
const json = (value: unknown) => JSON.stringify(value) ?? "null";
const VAST_KEYS = words("event_id user_id notif_type subject message timestamp");
const oddField = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom<unknown>(
    ...["", "   ", "<b>bold</b> *x* _y_ ~z~ `c` <users/all>", "\u0000\u0007\u001b[31m"],
    ...["\ud83d\ude80".repeat(500), 1e308, -0, Number.MAX_SAFE_INTEGER + 2],
  ),
  fc.nat({ max: 60_000 }).map((n) => "x".repeat(n)),
);
const trapKey = fc.oneof(
  fc.constantFrom(...words("__proto__ constructor prototype toString")),
  fc.string(),
);
const trapFields = fc.dictionary(trapKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
/** Objects shaped like a delivery but with every field odd, plus keys that trip naive code. */
const vastLike = fc
  .record(
    {
      ...Object.fromEntries(VAST_KEYS.map((key) => [key, oddField])),
      notif_type: fc.oneof(
        fc.constantFrom("low_credit", "instance_stopped", "client:outbid", "webhook_test", ""),
        oddField,
      ),
    },
    { requiredKeys: [] },
  )
  .chain((fields) => trapFields.map((extra) => ({ ...extra, ...fields })));
const objectOfAnyKeys = fc.dictionary(
  fc.oneof(fc.constantFrom(...VAST_KEYS), fc.string()),
  fc.jsonValue({ maxDepth: 3 }),
);
const RAW = [
  ...['\ufeff{"event_id":"bom"}', '{"subject":"\udc00 lone surrogate"}', '{"a":1,"a":2}'],
  ...['{"event_id":1e400}', '{"__proto__":{"event_id":"polluted"}}', "[]", "null", '"string"'],
  ...["1", "true", "{", "{}", "{}{}", '{"x":NaN}', "\u0000"],
].map((text) => Buffer.from(text));
/** Invalid UTF-8 (a lone continuation byte) inside an otherwise fine JSON object. */
const INVALID_UTF8 = Buffer.concat([
  Buffer.from('{"subject":"'),
  Buffer.from([0xc3, 0x28]),
  Buffer.from('"}'),
]);
const HUGE_SIZES = [150 << 10, ...[-1, 0, 1].map((d) => MAX_BODY_BYTES + d), 300 << 10, 1 << 20];
/** A JSON object of exactly `size` bytes, or the same size of junk. */
const huge = fc
  .tuple(fc.constantFrom(...HUGE_SIZES), fc.boolean())
  .map(([size, valid]) =>
    body("huge")(valid ? `{"pad":"${"p".repeat(size - 10)}"}` : Buffer.alloc(size, 0x7b)),
  );
const DEPTHS = [100, 1000, 5000, 20_000, 40_000, 120_000];
const deep = fc
  .tuple(fc.constantFrom(...DEPTHS), fc.constantFrom(...words("array object unbalanced")))
  .map(([depth, shape]) =>
    body("deep")(
      shape === "array"
        ? `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`
        : shape === "object"
          ? `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
          : `{"a":${"[".repeat(depth)}`,
    ),
  );
const bodies = pick(
  [2, [body("empty")("")]],
  [3, fc.uint8Array({ maxLength: 2048 }).map(body("bytes"))],
  [4, fc.jsonValue({ maxDepth: 4 }).map((value) => body("json")(json(value)))],
  [4, objectOfAnyKeys.map((value) => body("object")(json(value)))],
  [5, vastLike.map((value) => body("object")(json(value)))],
  [1, fc.string({ unit: "binary", maxLength: 300 }).map(body("text"))],
  [1, huge],
  [1, deep],
  [1, fc.constantFrom(...RAW, INVALID_UTF8).map(body("raw"))],
);

export const recipeArbitrary = fc.record({
  method: pick(
    [12, ORACLE_METHODS],
    [6, ["POST"]],
    [2, ["CONNECT", "TRACE", "post", "PROPFIND", "BREW", "GET /", " POST"]],
    [1, fc.stringMatching(/^[A-Z!#$%&'*+.^_`|~-]{1,12}$/)],
    [1, binary(12)],
  ),
  target: pick(
    [20, ORACLE_TARGETS],
    [10, ["/"]],
    [3, [...words("* http://127.0.0.1/ // /../../etc/passwd /% /health?%zz /\u00e9 /%00 ?"), ""]],
    [1, fc.nat({ max: 20_000 }).map((n) => `/${"a".repeat(n)}`)],
    [2, binary(40).map((path) => `/${path}`)],
  ),
  version: pick(
    [20, ["HTTP/1.1"]],
    [2, ["HTTP/1.0"]],
    [1, [...words("HTTP/2.0 HTTP/1.2 HTTP/0.9 HTTX/1.1"), ""]],
  ),
  host: pick([15, [true]], [1, [false]]),
  contentType: pick<string | null>(
    [8, ["application/json"]],
    [2, [null]],
    [
      2,
      [
        ...["text/plain", "application/json; charset=utf-16", "multipart/form-data; boundary=x"],
        ...["application/x-www-form-urlencoded", ""],
      ],
    ],
  ),
  // The first of each table is the common case; the rest share one weight.
  framing: pick(
    [14, ["length" as Framing]],
    [3, ["chunked" as Framing]],
    [4, (Object.keys(FRAMINGS) as Framing[]).slice(2)],
  ),
  framingDetail: fc.nat({ max: 1000 }),
  signing: pick([10, ["valid" as Signing]], [6, (Object.keys(SIGNINGS) as Signing[]).slice(1)]),
  oddValue,
  skewS: fc.integer({ min: 310, max: 10_000_000 }),
  extraHeaders: pick<Header[]>(
    [6, [[]]],
    [3, fc.array(fc.tuple(headerName, safeHeaderValue), { maxLength: 6 })],
    [1, fc.array(wildHeader, { minLength: 1, maxLength: 3 })],
  ),
  body: bodies,
  /** How many writes the bytes are split into. */
  pieces: pick([5, [1]], [1, fc.integer({ min: 2, max: 8 })]),
});
type Recipe = typeof recipeArbitrary extends fc.Arbitrary<infer R> ? R : never;

/**
 * The recipe, its bytes in the pieces they are written in, and what README.md says the answer
 * must be (undefined when the request is not well-formed HTTP).
 */
export type Materialised = ReturnType<typeof materialise>;
export function materialise(
  recipe: Recipe,
  keys: { secret: string; otherSecret: string },
  port: number,
  now: number,
) {
  const payload = recipe.body.bytes;
  const [framingHeaders, framed] = FRAMINGS[recipe.framing](payload, recipe.framingDetail);
  const signing = { now, odd: recipe.oddValue, skew: recipe.skewS, body: payload, ...keys };
  const signatureHeaders: Header[] = SIGNINGS[recipe.signing](signing);
  const headers: Header[] = [
    ...(recipe.host ? [["Host", `127.0.0.1:${port}`] as Header] : []),
    ...(recipe.contentType === null ? [] : [["Content-Type", recipe.contentType] as Header]),
    ...signatureHeaders,
    ...recipe.extraHeaders,
    ...framingHeaders,
  ];
  const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join("");
  const head = `${recipe.method} ${recipe.target} ${recipe.version}\r\n${lines}\r\n`;
  const whole = Buffer.concat([Buffer.from(head, "latin1"), framed]);
  const size =
    whole.length < recipe.pieces ? whole.length : Math.ceil(whole.length / recipe.pieces);
  const pieces = Array.from({ length: Math.ceil(whole.length / size) }, (_, index) =>
    whole.subarray(index * size, (index + 1) * size),
  );
  return { recipe, pieces, expected: oracle(recipe, payload, signatureHeaders, keys.secret, now) };
}

// ---- the oracle ------------------------------------------------------------------------------

/** Printable ASCII only: a value node:http takes as it is (after trimming spaces). */
const PLAIN = /^[\x20-\x7e]*$/;
// Expect/Upgrade/Connection change how node:http treats the exchange; keep them out of the oracle.
const SPECIAL = /^(expect|upgrade|connection|content-length|transfer-encoding|host)$/i;
/** What a signature header must look like to be checked at all (src/adapter/signature-headers.ts). */
const TIMESTAMP_SHAPE = /^\d{1,12}$/;
const SIGNATURE_SHAPE = /^sha256=[0-9a-f]{64}$/;
/** Either way from now; older or newer is refused before the body is read. */
const SIGNATURE_WINDOW_S = 300;
/** How near the window's edge our clock and the server's may disagree: no promise in there. */
const CLOCK_MARGIN_S = 10;

/**
 * For a well-formed request, the answer README.md gives ("What the adapter answers"), in the order
 * the public listener decides (src/adapter/server.ts, handler.ts, signature-headers.ts): the
 * request line first (/health: 200 to GET and HEAD, 405 otherwise; any path but the webhook's `/`
 * (serve without --path), /metrics included: 404; a method but POST: 405), then the signature
 * headers alone (missing, malformed, i.e. a timestamp not in decimal or a signature not `sha256=`
 * and 64 lower-case hex digits, or outside the window: 401), then the size (413), and only then
 * the body: a signature that does not match (401), JSON that is not an object (400), else 200. A
 * rotation in progress (503) never happens in the soak.
 *
 * `bodyUnread`: the answer comes before the body is read (a refusal from the request line or the
 * headers, or 413), and the connection then closes: the peer may reset it while we are still
 * writing the body, and a reset can discard the answer before we read it.
 */
function oracle(
  recipe: Recipe,
  payload: Buffer,
  signatureHeaders: Header[],
  secret: string,
  now: number,
) {
  const extras = [...recipe.extraHeaders, ...signatureHeaders];
  const size = extras.reduce((total, [name, value]) => total + name.length + value.length + 4, 0);
  const wellFormed =
    ORACLE_METHODS.includes(recipe.method) &&
    ORACLE_TARGETS.includes(recipe.target) &&
    recipe.version === "HTTP/1.1" &&
    recipe.host &&
    (recipe.framing === "length" || recipe.framing === "chunked") &&
    (recipe.contentType === null || PLAIN.test(recipe.contentType)) &&
    size < 8 * 1024 &&
    extras.every(
      ([name, value]) => /^[A-Za-z0-9-]+$/.test(name) && PLAIN.test(value) && !SPECIAL.test(name),
    );
  if (!wellFormed) return undefined;

  const answer = (status: number, bodyUnread = payload.length > 0) => ({ status, bodyUnread });
  const path = new URL(recipe.target, "http://x").pathname;
  if (path === "/health") return answer(["GET", "HEAD"].includes(recipe.method) ? 200 : 405);
  if (path !== "/") return answer(404);
  if (recipe.method !== "POST") return answer(405);
  // The server's view of a header: node:http trims surrounding spaces and joins repeats with
  // ", ". The signature headers come before the extra ones, which may (rarely) repeat them.
  const seen = (name: string) =>
    [...signatureHeaders, ...recipe.extraHeaders]
      .filter(([key]) => key.toLowerCase() === name)
      .map(([, value]) => value.trim())
      .join(", ");
  const [time, sig] = [seen("x-vast-timestamp"), seen("x-vast-signature-256")];
  if (!TIMESTAMP_SHAPE.test(time) || !SIGNATURE_SHAPE.test(sig)) return answer(401);
  const age = Math.abs(now - Number(time));
  // Near the edge of the window the server's clock decides: no promise either way.
  if (Math.abs(age - SIGNATURE_WINDOW_S) < CLOCK_MARGIN_S) return undefined;
  if (age > SIGNATURE_WINDOW_S) return answer(401);
  if (payload.length > MAX_BODY_BYTES) return answer(413, true);
  if (sig !== signPayload(secret, time, payload)) return answer(401, false);
  try {
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
    return answer(
      typeof value === "object" && value !== null && !Array.isArray(value) ? 200 : 400,
      false,
    );
  } catch {
    return answer(400, false);
  }
}

/** One line about a recipe for the report: no secret in it (signatures are HMACs, not keys). */
export function describeRecipe(recipe: Recipe): string {
  const target = recipe.target.length > 40 ? `${recipe.target.slice(0, 40)}…` : recipe.target;
  return `${JSON.stringify(recipe.method)} ${JSON.stringify(target)} ${JSON.stringify(recipe.version)} framing=${recipe.framing} signing=${recipe.signing} body=${recipe.body.kind} (${recipe.body.bytes.length} B) pieces=${recipe.pieces} extra headers=${recipe.extraHeaders.length}`;
}
