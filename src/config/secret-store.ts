import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import type { EntryOptions, Entry as KeyringEntry } from "@napi-rs/keyring";
import { ROUTE_NAME_PATTERN } from "../route-syntax.js";
import { UserError } from "../user-error.js";
import {
  damagedFileError,
  fileExists,
  type PrivateJsonObject,
  readPrivateJsonObject,
  removePrivateFile,
  writePrivateJson,
} from "./private-file.js";

/**
 * The secrets: the Vast.ai API key, the webhook signing secret (and the previous one during a
 * rotation), and the Google Chat URL (its key and token let anyone post into the space). They live
 * in the OS keychain where one is usable, else in a file only the user can read (README, "Where
 * things live").
 * Environment variables override stored values; that is the caller's business, not this module's.
 */
export type SecretName = FixedSecretName | RouteChatUrlName;
type FixedSecretName = "apiKey" | "webhookSecret" | "previousWebhookSecret" | "chatUrl";
/** The Chat URL of a route other than `default` (config/routes.ts, routeSecretName). */
export type RouteChatUrlName = `chatUrl:${string}`;

/** The secrets every set-up may have; each route's Chat URL comes on top (isSecretName). */
export const SECRET_NAMES: readonly FixedSecretName[] = [
  "apiKey",
  "webhookSecret",
  "previousWebhookSecret",
  "chatUrl",
];

export interface SecretStore {
  readonly kind: "keychain" | "file";
  /** Where, for people: "the OS keychain (service vast-gchat)" or the file's path. */
  readonly location: string;
  /** One line to show the user when secrets are kept in a file, else undefined. */
  readonly notice: string | undefined;
  get(name: SecretName): string | undefined;
  set(name: SecretName, value: string): void;
  delete(name: SecretName): void;
  /**
   * Every secret this store holds, removed (and the file itself, for the file store). Returns the
   * names removed. A keychain cannot be listed: the routes' Chat URLs it holds are named in `also`.
   */
  clear(also?: readonly SecretName[]): SecretName[];
}

export type SecretStorePreference = "keychain" | "file" | "auto";

export interface OpenSecretStoreOptions {
  /** Beats `VAST_GCHAT_SECRET_STORE`; "auto" (the default) uses the keychain when it works. */
  prefer?: SecretStorePreference;
  env?: NodeJS.ProcessEnv;
  /** A stand-in for @napi-rs/keyring (tests); by default the real one, loaded on first use. */
  keyring?: KeyringModule;
}

/** The part of @napi-rs/keyring used here. */
export interface KeyringModule {
  Entry: new (
    service: string,
    account: string,
    options?: EntryOptions,
  ) => Pick<KeyringEntry, "setPassword" | "getPassword" | "deletePassword">;
}

/** The keychain service name every entry is filed under. */
export const KEYCHAIN_SERVICE = "vast-gchat";
/** `file` or `keychain` forces a store; `auto` or unset probes the keychain. */
export const SECRET_STORE_ENV = "VAST_GCHAT_SECRET_STORE";
const SECRETS_FILE = "secrets.json";
/** How messages name the file. */
const WHAT = "secrets file";

/** For people, in messages: never the value itself. */
const LABELS: Record<FixedSecretName, string> = {
  apiKey: "the Vast.ai API key",
  webhookSecret: "the webhook signing secret",
  previousWebhookSecret: "the previous webhook signing secret",
  chatUrl: "the Google Chat URL",
};
const ROUTE_SECRET_PREFIX = "chatUrl:";

/** The route whose Chat URL `name` is, or undefined. */
function routeOfSecret(name: string): string | undefined {
  if (!name.startsWith(ROUTE_SECRET_PREFIX)) return undefined;
  const route = name.slice(ROUTE_SECRET_PREFIX.length);
  return ROUTE_NAME_PATTERN.test(route) ? route : undefined;
}

/** A name this store keeps: one of SECRET_NAMES, or a route's Chat URL (`chatUrl:NAME`). */
export function isSecretName(name: string): name is SecretName {
  return isFixedSecretName(name) || routeOfSecret(name) !== undefined;
}

function isFixedSecretName(name: string): name is FixedSecretName {
  return (SECRET_NAMES as readonly string[]).includes(name);
}

function labelOf(name: SecretName): string {
  const route = routeOfSecret(name);
  if (route !== undefined) return `the Google Chat URL of the route ${route}`;
  return isFixedSecretName(name) ? LABELS[name] : name;
}

/** Fixed names first, then the routes' in name order: how `clear` reports them. */
function inReportOrder(names: Iterable<SecretName>): SecretName[] {
  const set = new Set(names);
  const fixed = SECRET_NAMES.filter((name) => set.has(name));
  const routes = [...set].filter((name) => !isFixedSecretName(name)).sort();
  return [...fixed, ...routes];
}

export function secretsFilePath(configDir: string): string {
  return resolve(configDir, SECRETS_FILE);
}

export function openSecretStore(
  configDir: string,
  options: OpenSecretStoreOptions = {},
): SecretStore {
  const filePath = secretsFilePath(configDir);
  const fromEnv = preferenceFromEnv(options.env ?? process.env);
  const choice = options.prefer ?? fromEnv ?? "auto";

  if (choice === "file") {
    return new FileSecretStore(filePath, `Secrets are kept in ${filePath}, readable only by you.`);
  }
  if (choice === "auto" && fileExists(filePath)) {
    // An earlier set-up kept them in the file (no keychain then): keep using it, so that `init`
    // and `serve` run in different sessions still agree on where the secrets are.
    return new FileSecretStore(filePath, `Secrets are kept in ${filePath}, readable only by you.`);
  }

  const scope = configScope(configDir);
  const probe = probeKeychain(scope, options.keyring);
  if (probe.ok) return new KeychainSecretStore(probe.keyring, scope, filePath);
  if (choice === "keychain") {
    throw new UserError(`The OS keychain is not usable here: ${probe.reason}.`, {
      hint:
        fromEnv === "keychain" && options.prefer === undefined
          ? `Unset ${SECRET_STORE_ENV} (or set it to "file") to keep secrets in ${filePath}, readable only by you.`
          : `Secrets can be kept in ${filePath} instead, readable only by you.`,
      kind: "usage",
    });
  }
  return new FileSecretStore(
    filePath,
    `No OS keychain here: secrets are kept in ${filePath}, readable only by you.`,
  );
}

function preferenceFromEnv(env: NodeJS.ProcessEnv): SecretStorePreference | undefined {
  const raw = env[SECRET_STORE_ENV]?.trim().toLowerCase();
  if (!raw) return undefined;
  if (raw === "file" || raw === "keychain" || raw === "auto") return raw;
  throw new UserError(`${SECRET_STORE_ENV} must be "keychain", "file" or "auto".`, {
    kind: "usage",
  });
}

/** Short and stable per config directory, so two config dirs never share keychain entries. */
function configScope(configDir: string): string {
  return createHash("sha256").update(resolve(configDir)).digest("hex").slice(0, 12);
}

// ---------------------------------------------------------------------------------------------
// The OS keychain

/**
 * On Linux, require the Secret Service: the binding's own fallback, the kernel keyring, is kept in
 * memory and lost on reboot, which would silently lose the set-up.
 */
const ENTRY_OPTIONS: EntryOptions = { linux: { store: "secret-service" } };

type Probe = { ok: true; keyring: KeyringModule } | { ok: false; reason: string };
type KeyringEntryLike = InstanceType<KeyringModule["Entry"]>;

/** Store, read back and delete a throw-away entry; anything unexpected means "not usable". */
function probeKeychain(scope: string, given: KeyringModule | undefined): Probe {
  let keyring: KeyringModule;
  try {
    // A native addon: loaded only when secrets are needed, so `--help` stays fast.
    keyring = given ?? (createRequire(import.meta.url)("@napi-rs/keyring") as KeyringModule);
  } catch (error) {
    return { ok: false, reason: `the keychain module did not load (${describe(error)})` };
  }
  const account = `probe-${process.pid}-${randomBytes(4).toString("hex")}@${scope}`;
  const value = randomBytes(16).toString("hex");
  let entry: KeyringEntryLike | undefined;
  try {
    entry = new keyring.Entry(KEYCHAIN_SERVICE, account, ENTRY_OPTIONS);
    entry.setPassword(value);
    if (entry.getPassword() !== value) {
      return { ok: false, reason: "it did not give back what was stored" };
    }
    if (!entry.deletePassword()) return { ok: false, reason: "it could not delete an entry" };
    entry = undefined;
    return { ok: true, keyring };
  } catch (error) {
    return { ok: false, reason: describe(error) };
  } finally {
    try {
      entry?.deletePassword();
    } catch {
      // Nothing was stored, or nothing can be done about it.
    }
  }
}

class KeychainSecretStore implements SecretStore {
  readonly kind = "keychain";
  readonly location = `the OS keychain (service ${KEYCHAIN_SERVICE})`;
  readonly notice = undefined;

  constructor(
    private readonly keyring: KeyringModule,
    private readonly scope: string,
    private readonly filePath: string,
  ) {}

  get(name: SecretName): string | undefined {
    try {
      return this.entry(name).getPassword() ?? undefined;
    } catch (error) {
      throw keychainError("read", name, error);
    }
  }

  set(name: SecretName, value: string): void {
    refuseEmpty(name, value);
    try {
      this.entry(name).setPassword(value);
    } catch (error) {
      throw keychainError("store", name, error, value);
    }
  }

  delete(name: SecretName): void {
    try {
      this.entry(name).deletePassword();
    } catch (error) {
      throw keychainError("delete", name, error);
    }
  }

  clear(also: readonly SecretName[] = []): SecretName[] {
    const removed = new Set<SecretName>();
    for (const name of new Set([...SECRET_NAMES, ...also])) {
      try {
        if (this.entry(name).deletePassword()) removed.add(name);
      } catch (error) {
        throw keychainError("delete", name, error);
      }
    }
    // A secrets file left by an earlier set-up without a keychain goes too: nothing secret stays.
    for (const name of removeSecretsFile(this.filePath)) removed.add(name);
    return inReportOrder(removed);
  }

  private entry(name: SecretName): KeyringEntryLike {
    return new this.keyring.Entry(KEYCHAIN_SERVICE, `${name}@${this.scope}`, ENTRY_OPTIONS);
  }
}

function keychainError(
  verb: "read" | "store" | "delete",
  name: SecretName,
  error: unknown,
  value?: string,
): UserError {
  let reason = describe(error);
  if (value) reason = reason.split(value).join("…");
  return new UserError(`Could not ${verb} ${labelOf(name)} in the OS keychain: ${reason}.`, {
    hint: `Unlock the keychain, or set ${SECRET_STORE_ENV}=file to keep secrets in a file readable only by you.`,
  });
}

/** The first line of an error's message, without anything that looks like raw bytes. */
function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = (message.split("\n")[0] ?? "").replace(/\[[\d,\s]*\]/g, "[…]").trim();
  return (line.length > 200 ? `${line.slice(0, 200)}…` : line).replace(/\.$/, "") || "unknown";
}

function refuseEmpty(name: SecretName, value: string): void {
  if (!isSecretName(name)) throw new Error(`Refusing to store an unknown secret "${name}".`);
  if (value === "") throw new Error(`Refusing to store an empty value as ${labelOf(name)}.`);
}

// ---------------------------------------------------------------------------------------------
// The file: <configDir>/secrets.json, 0600 in a 0700 directory, replaced atomically

type SecretsData = PrivateJsonObject;

class FileSecretStore implements SecretStore {
  readonly kind = "file";

  constructor(
    readonly location: string,
    readonly notice: string | undefined,
  ) {}

  /** Read from disk every time: `rotate-secret` may change the file while `serve` runs. */
  get(name: SecretName): string | undefined {
    const value = readSecretsFile(this.location)?.[name];
    return typeof value === "string" ? value : undefined;
  }

  set(name: SecretName, value: string): void {
    refuseEmpty(name, value);
    const data = readSecretsFile(this.location) ?? {};
    data[name] = value;
    writePrivateJson(this.location, data, WHAT);
  }

  delete(name: SecretName): void {
    const data = readSecretsFile(this.location);
    if (!data || !Object.hasOwn(data, name)) return;
    delete data[name];
    if (Object.keys(data).length === 0) removeSecretsFile(this.location);
    else writePrivateJson(this.location, data, WHAT);
  }

  clear(): SecretName[] {
    // The file holds every secret there is, the routes' too: removing it removes them all.
    return removeSecretsFile(this.location);
  }
}

/** The parsed file, or undefined when there is none. Throws a sentence naming the file. */
function readSecretsFile(path: string): SecretsData | undefined {
  const record = readPrivateJsonObject(path, WHAT);
  if (!record) return undefined;
  for (const [name, value] of Object.entries(record)) {
    if (!isSecretName(name)) continue;
    if (typeof value !== "string" || value === "") {
      throw damagedFileError(path, WHAT, `"${name}" is not a non-empty string`);
    }
  }
  return record;
}

/** Removes the file (and temp files a crash may have left); returns the secrets it held. */
function removeSecretsFile(path: string): SecretName[] {
  let names: SecretName[] = [];
  try {
    const data = readSecretsFile(path);
    if (data) names = inReportOrder(Object.keys(data).filter(isSecretName));
  } catch {
    // Damaged or unreadable: removed all the same, its content unknown.
  }
  removePrivateFile(path, WHAT);
  return names;
}
