/**
 * checkChatMessage(body): does this JSON body read as a google.chat.v1.Message the way Google's
 * proto3 JSON reader would read it, for a create through an incoming webhook?
 *
 * Everything about fields, types, enums and oneofs comes from chat-protos.json, generated from the
 * Chat API protos in googleapis/googleapis (commit and files recorded there; README.md here). The few
 * rules the protos state only in prose are in DOCUMENTED_RULES below, each with its source line.
 *
 * Returns one readable problem per violation ("$.cardsV2[0].card.header.title: ..."); empty = valid.
 */
import type {
  ChatProtos,
  FieldDescriptor,
  MessageDescriptor,
  ScalarType,
  ValueType,
} from "./descriptor.js";
import { loadChatProtos } from "./descriptor.js";

const protos: ChatProtos = loadChatProtos();

/** Where the definitions come from, for test names and messages. */
export const CHAT_SCHEMA_SOURCE = protos.source;

/** Built-in icon names accepted for `knownIcon` (see chat-protos.json knownIcons for the source). */
export const KNOWN_ICONS: ReadonlySet<string> = new Set(protos.knownIcons.names);

export interface CheckOptions {
  /**
   * Accept fields the protos mark `deprecated = true` (Message.cards, DecoratedText.icon, ...).
   * Chat still reads them; by default they are reported, because nothing we send should use them.
   */
  allowDeprecated?: boolean;
}

export function checkChatMessage(body: unknown, options: CheckOptions = {}): string[] {
  const problems: string[] = [];
  if (!isPlainObject(body)) {
    problems.push(`$: the body must be a JSON object (${protos.root}), not ${describe(body)}`);
    return problems;
  }
  checkMessageValue(body, protos.root, "$", { problems, options, isRoot: true });
  return problems;
}

// ---------------------------------------------------------------------------------------------

interface Ctx {
  problems: string[];
  options: CheckOptions;
  isRoot: boolean;
}

interface Present {
  key: string;
  value: unknown;
  field: FieldDescriptor;
}

const fieldIndex = new Map<string, Map<string, FieldDescriptor>>();

/** The proto3 JSON reader accepts a field under its JSON name and under its proto name. */
function fieldsByKey(typeName: string, message: MessageDescriptor): Map<string, FieldDescriptor> {
  let index = fieldIndex.get(typeName);
  if (!index) {
    index = new Map();
    for (const f of message.fields) {
      index.set(f.jsonName, f);
      index.set(f.name, f);
    }
    fieldIndex.set(typeName, index);
  }
  return index;
}

function checkMessageValue(value: unknown, typeName: string, path: string, ctx: Ctx): void {
  if (typeName.startsWith("google.protobuf.")) {
    const reason = checkWellKnown(typeName, value);
    if (reason) ctx.problems.push(`${path}: ${reason}`);
    return;
  }
  const message = protos.messages[typeName];
  if (!message) {
    ctx.problems.push(`${path}: no descriptor for ${typeName}`);
    return;
  }
  if (!isPlainObject(value)) {
    ctx.problems.push(`${path}: expected an object (${typeName}), found ${describe(value)}`);
    return;
  }
  const isRoot = ctx.isRoot;
  const inner: Ctx = { ...ctx, isRoot: false };
  const index = fieldsByKey(typeName, message);
  const setFields = new Map<string, Present>();
  const oneofSet = new Map<string, string>();

  for (const [key, fieldValue] of Object.entries(value)) {
    const at = childPath(path, key);
    const loneKey = loneSurrogate(key);
    if (loneKey) ctx.problems.push(`${at}: the field name has ${loneKey}`);
    const field = index.get(key);
    if (!field) {
      ctx.problems.push(`${at}: unknown field "${key}" in ${typeName}${suggest(key, message)}`);
      continue;
    }
    const earlier = [...setFields.values()].find((p) => p.field === field);
    if (earlier) {
      ctx.problems.push(`${at}: ${field.jsonName} is set twice (as "${earlier.key}" and "${key}")`);
      continue;
    }
    // proto3 JSON: "null is an accepted value for all field types and treated as the default
    // value of the corresponding field type" — so a null member does not count as set.
    if (fieldValue === null) continue;
    setFields.set(key, { key, value: fieldValue, field });

    if (field.oneof !== undefined) {
      const other = oneofSet.get(field.oneof);
      if (other !== undefined) {
        ctx.problems.push(
          `${at}: oneof "${field.oneof}" of ${typeName} takes only one member, but "${other}" is set too`,
        );
      } else {
        oneofSet.set(field.oneof, key);
      }
    }
    // OUTPUT_ONLY, per google/api/field_behavior.proto: "including the field in a request does
    // nothing (the server *must* ignore it and *must not* throw an error as a result of the
    // field's presence)". So Chat IGNORES these on create rather than refusing them; we report
    // them because a value we send and Google throws away is a bug on our side.
    if (field.behaviors.includes("OUTPUT_ONLY")) {
      ctx.problems.push(
        `${at}: ${typeName}.${field.name} is output only: Chat ignores it on create (${field.source})`,
      );
      continue;
    }
    // IDENTIFIER on the resource being created, per field_behavior.proto: "for Create methods
    // name is optional and unused". Thread.name, by contrast, names an existing thread to reply
    // in, so it is only flagged on the root Message.
    if (isRoot && field.behaviors.includes("IDENTIFIER")) {
      ctx.problems.push(
        `${at}: ${typeName}.${field.name} is the resource name, unused on create (${field.source})`,
      );
      continue;
    }
    if (field.deprecated && !ctx.options.allowDeprecated) {
      ctx.problems.push(
        `${at}: ${typeName}.${field.name} is deprecated in the proto (${field.source}); still read by Chat, refused by this check's policy`,
      );
    }
    checkFieldValue(field, fieldValue, at, inner, typeName);
  }

  // REQUIRED (field_behavior) or documented "Required." (card.proto prose). In proto3 an empty
  // string, zero or empty list is indistinguishable from an unset field, so those count as missing.
  for (const field of message.fields) {
    const why = field.behaviors.includes("REQUIRED")
      ? "(google.api.field_behavior) = REQUIRED"
      : field.documentedRequired
        ? `documented: "${field.documentedRequired}"`
        : undefined;
    if (!why) continue;
    const p = [...setFields.values()].find((x) => x.field === field);
    if (!p || isDefaultValue(p.value)) {
      ctx.problems.push(
        `${childPath(path, field.jsonName)}: missing required field ${typeName}.${field.name} (${why}, ${field.source})`,
      );
    }
  }

  const rule = DOCUMENTED_RULES[typeName];
  if (rule) {
    const get = (jsonName: string): unknown => {
      for (const p of setFields.values()) if (p.field.jsonName === jsonName) return p.value;
      return undefined;
    };
    for (const reason of rule(get)) ctx.problems.push(`${path}: ${reason}`);
  }
}

function checkFieldValue(
  field: FieldDescriptor,
  value: unknown,
  path: string,
  ctx: Ctx,
  owner: string,
): void {
  if (field.label === "repeated") {
    if (!Array.isArray(value)) {
      ctx.problems.push(`${path}: expected an array (repeated ${typeLabel(field.type)})`);
      return;
    }
    value.forEach((element, i) => {
      const at = `${path}[${i}]`;
      if (element === null) ctx.problems.push(`${at}: null is not allowed inside a repeated field`);
      else checkSingle(field, element, at, ctx, owner);
    });
    return;
  }
  if (field.label === "map") {
    if (!isPlainObject(value)) {
      ctx.problems.push(`${path}: expected an object (map<${field.mapKey}, ...>)`);
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const at = childPath(path, k);
      const keyReason = checkMapKey(field.mapKey ?? "string", k);
      if (keyReason) ctx.problems.push(`${at}: ${keyReason}`);
      if (v === null) ctx.problems.push(`${at}: a map value cannot be null`);
      else checkSingle(field, v, at, ctx, owner);
    }
    return;
  }
  checkSingle(field, value, path, ctx, owner);
}

function checkSingle(
  field: FieldDescriptor,
  value: unknown,
  path: string,
  ctx: Ctx,
  owner: string,
): void {
  const type = field.type;
  if (type.kind === "message") {
    checkMessageValue(value, type.name, path, ctx);
    return;
  }
  if (type.kind === "enum") {
    const reason = checkEnum(type.name, value);
    if (reason) ctx.problems.push(`${path}: ${reason}`);
    return;
  }
  const reason = checkScalar(type.scalar, value);
  if (reason) {
    ctx.problems.push(`${path}: ${reason}`);
    return;
  }
  if (typeof value !== "string") return;
  if (owner === "google.apps.card.v1.Icon" && field.name === "known_icon") {
    if (!KNOWN_ICONS.has(value)) {
      ctx.problems.push(
        `${path}: "${value}" is not a built-in icon name (known: ${[...KNOWN_ICONS].join(", ")})`,
      );
    }
  }
  if (isLinkField(field)) {
    const linkReason = checkHttpsUrl(value);
    if (linkReason) ctx.problems.push(`${path}: ${linkReason}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Scalars, enums and well-known types, per the proto3 JSON mapping
// (https://protobuf.dev/programming-guides/json/).

const INT_RANGES: Partial<Record<ScalarType, [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

const FLOAT_MAX = 3.4028234663852886e38;

function checkScalar(scalar: ScalarType, value: unknown): string | undefined {
  switch (scalar) {
    case "string": {
      if (typeof value !== "string") return `expected a string, found ${describe(value)}`;
      const lone = loneSurrogate(value);
      return lone ? `${lone}: Google's JSON reader refuses the body` : undefined;
    }
    case "bool":
      return typeof value === "boolean"
        ? undefined
        : `expected true or false, found ${describe(value)}`;
    case "bytes":
      return typeof value === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)
        ? undefined
        : `expected a base64 string (bytes), found ${describe(value)}`;
    case "float":
    case "double":
      return checkFloat(value, scalar === "float");
    default:
      return checkInteger(scalar, value);
  }
}

function checkInteger(scalar: ScalarType, value: unknown): string | undefined {
  // "JSON value will be a decimal number. Either numbers or strings are accepted."
  let n: bigint;
  if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^-?\d+$/.test(value)) n = BigInt(value);
  else
    return `expected an integer (${scalar}, a number or a decimal string), found ${describe(value)}`;
  const range = INT_RANGES[scalar];
  if (range && (n < range[0] || n > range[1])) return `${value} is out of range for ${scalar}`;
  return undefined;
}

function checkFloat(value: unknown, single: boolean): string | undefined {
  let x: number;
  if (typeof value === "number") x = value;
  else if (value === "NaN" || value === "Infinity" || value === "-Infinity") return undefined;
  else if (typeof value === "string" && /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
    x = Number(value);
  } else {
    return `expected a number (${single ? "float" : "double"}), found ${describe(value)}`;
  }
  if (!Number.isFinite(x) || (single && Math.abs(x) > FLOAT_MAX)) {
    return `${String(value)} is out of range for ${single ? "float" : "double"}`;
  }
  return undefined;
}

function checkEnum(enumName: string, value: unknown): string | undefined {
  const e = protos.enums[enumName];
  if (!e) return `no descriptor for enum ${enumName}`;
  const names = e.values.map((v) => v.name);
  if (typeof value === "string") {
    if (names.includes(value)) return undefined;
    return `"${value}" is not a value of ${enumName} (one of ${names.join(", ")})`;
  }
  if (typeof value === "number" && e.values.some((v) => v.number === value)) {
    // proto3 JSON: "Parsers accept both enum names and integer values." We require the name.
    const name = e.values.find((v) => v.number === value)?.name;
    return `enum ${enumName} given as the number ${value}; proto3 JSON reads it, but this check's policy is to send the name ("${name}")`;
  }
  return `expected a name of ${enumName} (one of ${names.join(", ")}), found ${describe(value)}`;
}

function checkMapKey(scalar: ScalarType, key: string): string | undefined {
  if (scalar === "string") {
    const lone = loneSurrogate(key);
    return lone ? `the map key has ${lone}` : undefined;
  }
  if (scalar === "bool") return key === "true" || key === "false" ? undefined : "bad bool map key";
  return checkInteger(scalar, key);
}

const RFC3339 =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

const WRAPPERS: Record<string, ScalarType> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

function checkWellKnown(typeName: string, value: unknown): string | undefined {
  const wrapped = WRAPPERS[typeName];
  if (wrapped) return checkScalar(wrapped, value);
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return typeof value === "string" && RFC3339.test(value)
        ? undefined
        : `expected an RFC 3339 timestamp string (google.protobuf.Timestamp), found ${describe(value)}`;
    case "google.protobuf.Duration":
      return typeof value === "string" && /^-?\d+(\.\d{1,9})?s$/.test(value)
        ? undefined
        : `expected a duration string like "1.5s", found ${describe(value)}`;
    case "google.protobuf.FieldMask":
      return typeof value === "string" ? undefined : `expected a field mask string`;
    default:
      return `no JSON rule for the well-known type ${typeName}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Strings and links

/**
 * A UTF-16 code unit D800–DFFF that is not half of a pair. JSON can carry it ("\ud800"), but
 * Google's JSON reader refuses it: the string cannot be turned into UTF-8.
 */
export function loneSurrogate(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return `a lone high surrogate U+${c.toString(16).toUpperCase()} at UTF-16 index ${i}`;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      return `a lone low surrogate U+${c.toString(16).toUpperCase()} at UTF-16 index ${i}`;
    }
  }
  return undefined;
}

/**
 * Fields holding a link Chat opens or fetches: every string field named url / uri / *_url / *_uri
 * (openLink.url, imageUrl, iconUrl, imageUri, startIconUri, ...). card.proto asks for HTTPS for
 * CardHeader.image_url, Image.image_url, Icon.icon_url and SelectionItem.start_icon_uri; this check
 * holds every such link to https.
 */
function isLinkField(field: FieldDescriptor): boolean {
  return /(^|_)(url|uri)$/.test(field.name);
}

function checkHttpsUrl(value: string): string | undefined {
  // The WHATWG parser would silently strip surrounding blanks and tabs/newlines inside; Chat may
  // not. Refuse them so that what we check is what we send.
  for (const ch of value) {
    const c = ch.codePointAt(0) as number;
    if (c <= 0x20 || c === 0x7f) return `link has whitespace or control characters`;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `not an absolute URL: ${JSON.stringify(value.slice(0, 80))}`;
  }
  if (url.protocol !== "https:") return `link must be https, found ${url.protocol}`;
  if (!url.hostname) return `link has no host`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Rules the protos state only in prose. Each quotes its source (googleapis at the vendored commit).

type Getter = (jsonName: string) => unknown;

const DOCUMENTED_RULES: Record<string, (get: Getter) => string[]> = {
  // message.proto, CardWithId.card_id: "Required if the message contains multiple cards. A unique
  // identifier for a card in a message."
  "google.chat.v1.Message": (get) => {
    const cards = get("cardsV2");
    if (!Array.isArray(cards) || cards.length < 2) return [];
    const out: string[] = [];
    const ids = new Map<string, number>();
    cards.forEach((c, i) => {
      const id = isPlainObject(c) ? (c.cardId ?? c.card_id) : undefined;
      if (typeof id !== "string" || id === "") {
        out.push(`cardsV2[${i}].cardId is required when the message has several cards`);
      } else if (ids.has(id)) {
        out.push(`cardsV2[${i}].cardId "${id}" repeats cardsV2[${ids.get(id)}].cardId`);
      } else {
        ids.set(id, i);
      }
    });
    return out;
  },
  "google.chat.v1.CardWithId": (get) => {
    const card = get("card");
    if (!isPlainObject(card)) return [];
    const out: string[] = [];
    // card.proto, Card.fixed_footer: "For Chat apps, you can use fixed footers in dialogs, but
    // not card messages."
    if (present(card.fixedFooter ?? card.fixed_footer)) {
      out.push(
        "card.fixedFooter is for dialogs only, not card messages (card.proto Card.fixed_footer)",
      );
    }
    // card.proto, Card: "You can add up to 100 widgets per card. Any widgets beyond this limit
    // are ignored." Counted over sections[].widgets (nested widgets: not known how they count).
    const sections = card.sections;
    let widgets = 0;
    if (Array.isArray(sections)) {
      for (const s of sections) {
        if (isPlainObject(s) && Array.isArray(s.widgets)) widgets += s.widgets.length;
      }
    }
    if (widgets > 100) {
      out.push(`card has ${widgets} widgets; Chat ignores those beyond 100 (card.proto Card)`);
    }
    return out;
  },
  // card.proto, Section.widgets: "All the widgets in the section. Must contain at least one widget."
  "google.apps.card.v1.Card.Section": (get) => {
    const widgets = get("widgets");
    return Array.isArray(widgets) && widgets.length > 0
      ? []
      : ["a section must contain at least one widget (card.proto Card.Section.widgets)"];
  },
  // card.proto, Columns.column_items: "You can include up to 2 columns in a card or dialog."
  "google.apps.card.v1.Columns": (get) => {
    const items = get("columnItems");
    return Array.isArray(items) && items.length > 2
      ? [`${items.length} columns; at most 2 (card.proto Columns.column_items)`]
      : [];
  },
  // card.proto, CollapseControl: "Both expand_button and collapse_button field must be set. Only
  // one field set will not take into effect."
  "google.apps.card.v1.CollapseControl": (get) =>
    present(get("expandButton")) !== present(get("collapseButton"))
      ? ["expandButton and collapseButton must be set together (card.proto CollapseControl)"]
      : [],
  // message.proto, Thread.thread_key: "ID for the thread. Supports up to 4000 characters."
  // Counted in code points (not known whether Google counts UTF-16 units or bytes).
  "google.chat.v1.Thread": (get) => {
    const key = get("threadKey");
    if (typeof key !== "string") return [];
    const length = [...key].length;
    return length > 4000
      ? [`threadKey has ${length} characters; at most 4000 (message.proto Thread.thread_key)`]
      : [];
  },
  // google/type/color.proto: "The amount of red in the color as a value in the interval [0, 1]."
  // (likewise green and blue).
  "google.type.Color": (get) =>
    ["red", "green", "blue"].flatMap((c) => {
      const v = get(c);
      const x = typeof v === "string" ? Number(v) : v;
      return typeof x === "number" && (x < 0 || x > 1)
        ? [`${c} is ${String(v)}; must be in [0, 1] (google/type/color.proto)`]
        : [];
    }),
};

// ---------------------------------------------------------------------------------------------
// Helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function isDefaultValue(v: unknown): boolean {
  return v === "" || v === 0 || v === false || (Array.isArray(v) && v.length === 0);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function typeLabel(t: ValueType): string {
  return t.kind === "scalar" ? t.scalar : t.name;
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function suggest(key: string, message: MessageDescriptor): string {
  const k = key.toLowerCase().replace(/_/g, "");
  const near = message.fields.find((f) => f.jsonName.toLowerCase() === k);
  return near ? ` (did you mean "${near.jsonName}"?)` : "";
}
