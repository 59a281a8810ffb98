/**
 * The shape of chat-protos.json: Google's Chat API protos (googleapis/googleapis), reduced to what
 * a proto3 JSON check needs. Written by generate.ts, read by check.ts.
 */
import { readFileSync } from "node:fs";

export type ScalarType =
  | "double"
  | "float"
  | "int32"
  | "int64"
  | "uint32"
  | "uint64"
  | "sint32"
  | "sint64"
  | "fixed32"
  | "fixed64"
  | "sfixed32"
  | "sfixed64"
  | "bool"
  | "string"
  | "bytes";

/** The type of one value: a scalar, or a message / enum named by its full name. */
export type ValueType =
  | { kind: "scalar"; scalar: ScalarType }
  | { kind: "message"; name: string }
  | { kind: "enum"; name: string };

export interface FieldDescriptor {
  /** The proto field name (snake_case). */
  name: string;
  /** The proto3 JSON name (lowerCamelCase, or json_name). */
  jsonName: string;
  number: number;
  label: "singular" | "repeated" | "map";
  type: ValueType;
  /** Only for maps: the key's scalar type. */
  mapKey?: ScalarType;
  /** The real oneof this field belongs to (not the synthetic one of a proto3 `optional`). */
  oneof?: string;
  /** `optional` in proto3: explicit presence, no oneof semantics in JSON. */
  proto3Optional?: boolean;
  /** Every (google.api.field_behavior) annotation, e.g. ["OUTPUT_ONLY"]. */
  behaviors: string[];
  deprecated?: boolean;
  /**
   * The field's own comment starts with "Required." (card.proto has no field_behavior
   * annotations and says "Required." in prose instead). The first line of that comment.
   */
  documentedRequired?: string;
  /** The field's comment mentions HTTPS (e.g. "The HTTPS URL of the image"). */
  documentedHttps?: boolean;
  /** The proto file and line where the field is declared. */
  source: string;
}

export interface MessageDescriptor {
  file: string;
  fields: FieldDescriptor[];
  oneofs: string[];
}

export interface EnumDescriptor {
  file: string;
  values: Array<{ name: string; number: number }>;
}

export interface ChatProtos {
  about: string;
  source: {
    repository: string;
    commit: string;
    commitDate: string;
    files: string[];
  };
  generatedBy: string;
  root: string;
  messages: Record<string, MessageDescriptor>;
  enums: Record<string, EnumDescriptor>;
  wellKnownTypes: string[];
  knownIcons: {
    about: string;
    source: string;
    corroboratedBy: string[];
    names: string[];
  };
}

/** Reads the vendored descriptor next to this file. */
export function loadChatProtos(): ChatProtos {
  const url = new URL("./chat-protos.json", import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as ChatProtos;
}
