/**
 * Builds test/support/chat-schema/chat-protos.json from Google's published Chat API protos in the
 * googleapis/googleapis repository (see README.md in this folder).
 *
 *   npx tsx test/support/chat-schema/generate.ts [--git-dir <bare googleapis mirror>] [--rev <rev>]
 *
 * It reads the .proto text straight from git (no checkout, no protoc), follows the imports of
 * google/chat/v1/message.proto, parses messages, fields, enums, oneofs, repeated, map and field
 * options, and keeps only the messages and enums reachable from google.chat.v1.Message. Types under
 * google/protobuf/ are not in googleapis: they are recorded as well-known types, whose JSON form the
 * checker knows from the proto3 JSON mapping.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type {
  ChatProtos,
  EnumDescriptor,
  FieldDescriptor,
  MessageDescriptor,
  ScalarType,
  ValueType,
} from "./descriptor.js";

const SCALARS = new Set<string>([
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
  "bytes",
]);

// ---------------------------------------------------------------------------------------------
// Tokenizer

interface Token {
  kind: "ident" | "number" | "string" | "symbol";
  text: string;
  line: number;
  /** The comment block directly above the token (no blank line between), without the slashes. */
  comment: string;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let pending: string[] = [];
  let pendingEndLine = -1;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      const body = text.slice(i + 2, end === -1 ? n : end);
      if (pendingEndLine !== line - 1) pending = [];
      pending.push(body.startsWith(" ") ? body.slice(1) : body);
      pendingEndLine = line;
      i = end === -1 ? n : end;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const body = text.slice(i + 2, end === -1 ? n : end);
      line += body.split("\n").length - 1;
      pending = [];
      pendingEndLine = -1;
      i = end === -1 ? n : end + 2;
      continue;
    }
    const comment = pendingEndLine === line - 1 ? pending.join("\n") : "";
    pending = [];
    pendingEndLine = -1;
    if (/[A-Za-z_.]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_.]/.test(text[j] as string)) j++;
      tokens.push({ kind: "ident", text: text.slice(i, j), line, comment });
      i = j;
      continue;
    }
    if (/[0-9-]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z.+-]/.test(text[j] as string)) j++;
      tokens.push({ kind: "number", text: text.slice(i, j), line, comment });
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let value = "";
      while (j < n && text[j] !== c) {
        if (text[j] === "\\") {
          value += text[j + 1];
          j += 2;
        } else {
          value += text[j];
          j++;
        }
      }
      tokens.push({ kind: "string", text: value, line, comment });
      i = j + 1;
      continue;
    }
    tokens.push({ kind: "symbol", text: c, line, comment });
    i++;
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Parser: just enough of the proto3 grammar for Google's API protos.

interface RawField {
  name: string;
  number: number;
  label: "singular" | "repeated" | "map";
  typeName: string;
  mapKey?: string;
  oneof?: string;
  proto3Optional: boolean;
  behaviors: string[];
  deprecated: boolean;
  jsonName?: string;
  comment: string;
  line: number;
}

interface RawMessage {
  fullName: string;
  file: string;
  fields: RawField[];
  oneofs: string[];
}

interface RawEnum {
  fullName: string;
  file: string;
  values: Array<{ name: string; number: number }>;
}

interface ParsedFile {
  path: string;
  pkg: string;
  imports: string[];
  messages: RawMessage[];
  enums: RawEnum[];
}

class Parser {
  private pos = 0;
  readonly result: ParsedFile;

  constructor(
    private readonly tokens: Token[],
    path: string,
  ) {
    this.result = { path, pkg: "", imports: [], messages: [], enums: [] };
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  private next(): Token {
    const t = this.tokens[this.pos++];
    if (!t) throw new Error(`${this.result.path}: unexpected end of file`);
    return t;
  }

  private expect(text: string): Token {
    const t = this.next();
    if (t.text !== text) {
      throw new Error(`${this.result.path}:${t.line}: expected "${text}", found "${t.text}"`);
    }
    return t;
  }

  /** Skips a statement up to its ";", stepping over balanced {...} aggregates. */
  private skipStatement(): void {
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.kind !== "symbol") continue;
      if (t.text === "{") depth++;
      else if (t.text === "}") depth--;
      else if (t.text === ";" && depth === 0) return;
    }
  }

  /** Skips a block "name ... { ... }" (service, extend). */
  private skipBlock(): void {
    while (this.peek()?.text !== "{") this.next();
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.text === "{") depth++;
      else if (t.text === "}" && --depth === 0) return;
    }
  }

  parse(): ParsedFile {
    while (this.peek()) {
      const t = this.next();
      switch (t.text) {
        case "syntax":
        case "option":
          this.skipStatement();
          break;
        case "package":
          this.result.pkg = this.next().text;
          this.expect(";");
          break;
        case "import": {
          let p = this.next();
          if (p.text === "public" || p.text === "weak") p = this.next();
          this.result.imports.push(p.text);
          this.expect(";");
          break;
        }
        case "message":
          this.parseMessage(this.result.pkg);
          break;
        case "enum":
          this.parseEnum(this.result.pkg);
          break;
        case "service":
        case "extend":
          this.skipBlock();
          break;
        case ";":
          break;
        default:
          throw new Error(`${this.result.path}:${t.line}: unexpected "${t.text}"`);
      }
    }
    return this.result;
  }

  private parseEnum(scope: string): void {
    const name = this.next().text;
    const fullName = `${scope}.${name}`;
    const values: RawEnum["values"] = [];
    this.expect("{");
    for (;;) {
      const t = this.next();
      if (t.text === "}") break;
      if (t.text === ";") continue;
      if (t.text === "option" || t.text === "reserved") {
        this.skipStatement();
        continue;
      }
      this.expect("=");
      const number = Number(this.next().text);
      values.push({ name: t.text, number });
      this.skipStatement();
    }
    this.result.enums.push({ fullName, file: this.result.path, values });
  }

  private parseMessage(scope: string): void {
    const name = this.next().text;
    const fullName = `${scope}.${name}`;
    const message: RawMessage = { fullName, file: this.result.path, fields: [], oneofs: [] };
    this.expect("{");
    this.parseMessageBody(message, undefined);
    this.result.messages.push(message);
  }

  /** Parses fields up to the closing "}" of a message or oneof body. */
  private parseMessageBody(message: RawMessage, oneof: string | undefined): void {
    for (;;) {
      const t = this.peek();
      if (!t) throw new Error(`${this.result.path}: unterminated message ${message.fullName}`);
      if (t.text === "}") {
        this.next();
        return;
      }
      if (t.text === ";") {
        this.next();
        continue;
      }
      if (t.text === "option" || t.text === "reserved" || t.text === "extensions") {
        this.next();
        this.skipStatement();
        continue;
      }
      if (t.text === "message" && this.peek(2)?.text === "{") {
        this.next();
        this.parseMessage(message.fullName);
        continue;
      }
      if (t.text === "enum" && this.peek(2)?.text === "{") {
        this.next();
        this.parseEnum(message.fullName);
        continue;
      }
      if (t.text === "extend") {
        this.skipBlock();
        continue;
      }
      if (t.text === "oneof" && this.peek(2)?.text === "{") {
        this.next();
        const oneofName = this.next().text;
        message.oneofs.push(oneofName);
        this.expect("{");
        this.parseMessageBody(message, oneofName);
        continue;
      }
      this.parseField(message, oneof);
    }
  }

  private parseField(message: RawMessage, oneof: string | undefined): void {
    const first = this.next();
    const comment = first.comment;
    let label: RawField["label"] = "singular";
    let proto3Optional = false;
    let typeToken = first;
    let mapKey: string | undefined;
    if (first.text === "repeated") {
      label = "repeated";
      typeToken = this.next();
    } else if (first.text === "optional") {
      proto3Optional = true;
      typeToken = this.next();
    }
    let typeName = typeToken.text;
    if (typeName === "map" && this.peek()?.text === "<") {
      this.expect("<");
      mapKey = this.next().text;
      this.expect(",");
      typeName = this.next().text;
      this.expect(">");
      label = "map";
    }
    const name = this.next().text;
    this.expect("=");
    const number = Number(this.next().text);
    const field: RawField = {
      name,
      number,
      label,
      typeName,
      proto3Optional,
      behaviors: [],
      deprecated: false,
      comment,
      line: first.line,
    };
    if (mapKey !== undefined) field.mapKey = mapKey;
    if (oneof !== undefined) field.oneof = oneof;
    if (this.peek()?.text === "[") {
      this.next();
      this.parseFieldOptions(field);
    }
    this.expect(";");
    message.fields.push(field);
  }

  private parseFieldOptions(field: RawField): void {
    for (;;) {
      let optionName = "";
      const t = this.next();
      if (t.text === "(") {
        optionName = `(${this.next().text})`;
        this.expect(")");
        while (this.peek()?.kind === "ident" && this.peek()?.text.startsWith(".")) {
          optionName += this.next().text;
        }
      } else {
        optionName = t.text;
      }
      this.expect("=");
      const value = this.next();
      if (value.text === "{") {
        let depth = 1;
        while (depth > 0) {
          const v = this.next();
          if (v.text === "{") depth++;
          else if (v.text === "}") depth--;
        }
      } else if (optionName === "(google.api.field_behavior)") {
        field.behaviors.push(value.text);
      } else if (optionName === "deprecated") {
        field.deprecated = value.text === "true";
      } else if (optionName === "json_name") {
        field.jsonName = value.text;
      }
      const sep = this.next();
      if (sep.text === "]") return;
      if (sep.text !== ",") {
        throw new Error(`${this.result.path}:${sep.line}: bad field options near "${sep.text}"`);
      }
    }
  }
}

/** protoc's default JSON name: drop each "_" and upper-case the letter after it. */
export function protoJsonName(name: string): string {
  let out = "";
  let upper = false;
  for (const c of name) {
    if (c === "_") {
      upper = true;
    } else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading googleapis from git and building the descriptor.

interface Options {
  gitDir: string;
  rev: string;
  out: string;
}

function git(gitDir: string, args: string[]): string {
  return execFileSync("git", [`--git-dir=${gitDir}`, ...args], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
}

const ROOT_FILE = "google/chat/v1/message.proto";
const ROOT_MESSAGE = "google.chat.v1.Message";
const ICON_ENUM = "google.chat.v1.WidgetMarkup.Icon";

export function generate(options: Options): ChatProtos {
  const commit = git(options.gitDir, ["rev-parse", `${options.rev}^{commit}`]).trim();
  const commitDate = git(options.gitDir, ["show", "-s", "--format=%cI", commit]).trim();
  const files = new Map<string, ParsedFile>();
  const queue = [ROOT_FILE];
  while (queue.length > 0) {
    const path = queue.shift() as string;
    if (files.has(path) || path.startsWith("google/protobuf/")) continue;
    const text = git(options.gitDir, ["show", `${commit}:${path}`]);
    const parsed = new Parser(tokenize(text), path).parse();
    files.set(path, parsed);
    queue.push(...parsed.imports);
  }

  const messages = new Map<string, RawMessage>();
  const enums = new Map<string, RawEnum>();
  for (const file of files.values()) {
    for (const m of file.messages) messages.set(m.fullName, m);
    for (const e of file.enums) enums.set(e.fullName, e);
  }

  const wellKnown = new Set<string>();
  /** Resolves a type name the way protoc does: innermost scope outwards; ".x" is absolute. */
  function resolve(typeName: string, scope: string): ValueType {
    if (SCALARS.has(typeName)) return { kind: "scalar", scalar: typeName as ScalarType };
    const candidates: string[] = [];
    if (typeName.startsWith(".")) {
      candidates.push(typeName.slice(1));
    } else {
      const parts = scope.split(".");
      for (let k = parts.length; k >= 0; k--) {
        candidates.push([...parts.slice(0, k), typeName].join("."));
      }
    }
    for (const c of candidates) {
      if (messages.has(c)) return { kind: "message", name: c };
      if (enums.has(c)) return { kind: "enum", name: c };
      if (c.startsWith("google.protobuf.")) {
        wellKnown.add(c);
        return { kind: "message", name: c };
      }
    }
    throw new Error(`cannot resolve type "${typeName}" in ${scope}`);
  }

  const outMessages: Record<string, MessageDescriptor> = {};
  const outEnums: Record<string, EnumDescriptor> = {};
  const todo = [ROOT_MESSAGE];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const name = todo.shift() as string;
    if (seen.has(name)) continue;
    seen.add(name);
    const raw = messages.get(name);
    if (!raw) continue; // a well-known type
    const fields: FieldDescriptor[] = raw.fields.map((f) => {
      const type = resolve(f.typeName, raw.fullName);
      if (type.kind === "message") todo.push(type.name);
      if (type.kind === "enum" && !outEnums[type.name]) {
        const e = enums.get(type.name) as RawEnum;
        outEnums[type.name] = { file: e.file, values: e.values };
      }
      const out: FieldDescriptor = {
        name: f.name,
        jsonName: f.jsonName ?? protoJsonName(f.name),
        number: f.number,
        label: f.label,
        type,
        behaviors: f.behaviors,
        source: `${raw.file}:${f.line}`,
      };
      if (f.mapKey !== undefined) out.mapKey = f.mapKey as ScalarType;
      if (f.oneof !== undefined) out.oneof = f.oneof;
      if (f.proto3Optional) out.proto3Optional = true;
      if (f.deprecated) out.deprecated = true;
      if (/^Required\.\s/.test(f.comment)) {
        out.documentedRequired = f.comment.split("\n")[0] as string;
      }
      if (/\bHTTPS\b/.test(f.comment)) out.documentedHttps = true;
      return out;
    });
    outMessages[name] = { file: raw.file, fields, oneofs: raw.oneofs };
  }

  const icons = outEnums[ICON_ENUM] ?? enums.get(ICON_ENUM);
  if (!icons) throw new Error(`${ICON_ENUM} not found`);
  const usedFiles = new Set<string>();
  for (const m of Object.values(outMessages)) usedFiles.add(m.file);
  for (const e of Object.values(outEnums)) usedFiles.add(e.file);

  const sortKeys = <T>(record: Record<string, T>): Record<string, T> =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));

  return {
    about:
      "The messages and enums reachable from google.chat.v1.Message (the body of an incoming-webhook post), parsed from Google's published protos. Generated: do not edit; see README.md.",
    source: {
      repository: "https://github.com/googleapis/googleapis",
      commit,
      commitDate,
      files: [...usedFiles].sort(),
    },
    generatedBy: "npx tsx test/support/chat-schema/generate.ts",
    root: ROOT_MESSAGE,
    messages: sortKeys(outMessages),
    enums: sortKeys(outEnums),
    wellKnownTypes: [...wellKnown].sort(),
    knownIcons: {
      about:
        "Names accepted for google.apps.card.v1.Icon.known_icon (a plain string in card.proto, whose comment sends readers to https://developers.google.com/workspace/chat/format-messages#builtinicons).",
      source: `google/chat/v1/widgets.proto enum ${ICON_ENUM} at ${commit}, without ICON_UNSPECIFIED`,
      corroboratedBy: [
        "https://developers.google.com/apps-script/reference/card-service/icon (CardService.Icon: the same 30 names plus NONE)",
      ],
      names: icons.values.map((v) => v.name).filter((v) => v !== "ICON_UNSPECIFIED"),
    },
  };
}

function parseArgs(argv: string[]): Options {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const options: Options = {
    gitDir: process.env.GOOGLEAPIS_GIT_DIR ?? "/work/.mirror/googleapis+googleapis/repo",
    rev: "HEAD",
    out: `${here}chat-protos.json`,
  };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === "--git-dir" && value) options.gitDir = value;
    else if (argv[i] === "--rev" && value) options.rev = value;
    else if (argv[i] === "--out" && value) options.out = value;
    else continue;
    i++;
  }
  return options;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const options = parseArgs(process.argv.slice(2));
  const protos = generate(options);
  writeFileSync(options.out, `${JSON.stringify(protos, null, 2)}\n`);
  // Keep the file in the form `biome check` wants.
  execFileSync("npx", ["biome", "format", "--write", options.out], { stdio: "inherit" });
  const counts = `${Object.keys(protos.messages).length} messages, ${Object.keys(protos.enums).length} enums`;
  console.log(`wrote ${options.out}: ${counts} from ${protos.source.commit}`);
}
