import type BetterSqlite3 from "better-sqlite3";
import { NoStoreDriverError } from "../event-store.js";
import { SQLITE_CODE_NAMES } from "./sqlite-codes.js";

/**
 * The seam between the SQLite store and the library that talks to SQLite. Two stand behind it:
 * Node's own `node:sqlite` (Node 22.13 and later: nothing to build or install) and better-sqlite3
 * (a native addon built for each Node version; an optional dependency, for Node 20). Both run the
 * same SQL: pragmas are statements, a transaction is BEGIN IMMEDIATE ... COMMIT, and an error from
 * either is named by SQLite's code (SQLITE_BUSY, SQLITE_FULL...).
 *
 * Neither is loaded before a store is opened (`--help` loads nothing), Node 20 never asks for
 * node:sqlite, and where node:sqlite is there better-sqlite3 is not even imported.
 */
export type SqliteDriverName = "node:sqlite" | "better-sqlite3";

/** A testing knob: `node` or `better-sqlite3` forces that driver; unset, the choice is automatic. */
export const SQLITE_DRIVER_ENV = "VAST_GCHAT_SQLITE_DRIVER";

export const SQLITE_DRIVERS: readonly SqliteDriverName[] = ["node:sqlite", "better-sqlite3"];

/** A statement's parameters: positional values, or one object of named ones (`@name` in the SQL). */
type Bind<P> = P extends readonly unknown[] ? P : [P];

export interface SqliteStatement<P = [], R = unknown> {
  /** Rows changed (a number: neither driver is asked for BigInts). */
  run(...params: Bind<P>): { changes: number };
  get(...params: Bind<P>): R | undefined;
  all(...params: Bind<P>): R[];
}

export interface SqliteConnection {
  readonly driver: SqliteDriverName;
  readonly open: boolean;
  /** Runs one or more statements, discarding any rows (pragmas that set something). */
  exec(sql: string): void;
  prepare<P extends readonly unknown[] | object = [], R = unknown>(
    sql: string,
  ): SqliteStatement<P, R>;
  /**
   * Runs `work` in one transaction (BEGIN IMMEDIATE: the write lock is taken first, within the
   * busy timeout), committed if it returns, rolled back if it throws.
   */
  transaction<T>(work: () => T): T;
  /** Safe to call twice. */
  close(): void;
}

export interface SqliteOpenOptions {
  /** How long a statement waits for another connection's lock (SQLite's busy timeout). */
  timeoutMs?: number;
  readonly?: boolean;
}

export interface SqliteDriver {
  readonly name: SqliteDriverName;
  /** Opens (creating unless `readonly`) the database file; throws the driver's error if it cannot. */
  open(path: string, options?: SqliteOpenOptions): SqliteConnection;
}

/**
 * SQLite's code for an error from either driver, e.g. "SQLITE_BUSY": better-sqlite3 names it in
 * `code`; node:sqlite has `code: "ERR_SQLITE_ERROR"` and the (extended) number in `errcode`.
 * Another error's `code` (ENOENT, ERR_INVALID_STATE) as it is; undefined without one.
 */
export function sqliteErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  if (typeof errcode === "number") {
    return SQLITE_CODE_NAMES.get(errcode) ?? `UNKNOWN_SQLITE_ERROR_${errcode}`;
  }
  return typeof code === "string" ? code : undefined;
}

// --- the two drivers ---

/** What this file uses of `node:sqlite` (@types/node 20 does not describe it). */
interface NodeSqliteModule {
  DatabaseSync: new (
    path: string,
    options?: { readOnly?: boolean },
  ) => {
    exec(sql: string): void;
    prepare(sql: string): unknown;
    close(): void;
  };
}

/** The transaction of both drivers: same SQL, rather than better-sqlite3's own helper. */
function inTransaction<T>(exec: (sql: string) => void, work: () => T): T {
  exec("BEGIN IMMEDIATE");
  try {
    const result = work();
    exec("COMMIT");
    return result;
  } catch (error) {
    // SQLite may have rolled back already (a full disk, say): then there is nothing to undo.
    try {
      exec("ROLLBACK");
    } catch {}
    throw error;
  }
}

function nodeSqliteDriver(sqlite: NodeSqliteModule): SqliteDriver {
  return {
    name: "node:sqlite",
    open(path, options = {}) {
      const db = new sqlite.DatabaseSync(path, { readOnly: options.readonly ?? false });
      let open = true;
      const exec = (sql: string) => db.exec(sql);
      try {
        // A pragma rather than the `timeout` option, which Node 22.13 to 22.15 do not have.
        exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.timeoutMs ?? 5000))}`);
      } catch (error) {
        db.close();
        throw error;
      }
      return {
        driver: "node:sqlite",
        get open() {
          return open;
        },
        exec,
        // StatementSync takes the same arguments as better-sqlite3's statements: run(named?, ...positional).
        prepare: <P, R>(sql: string) => db.prepare(sql) as SqliteStatement<P, R>,
        transaction: (work) => inTransaction(exec, work),
        close() {
          if (!open) return;
          open = false;
          db.close();
        },
      };
    },
  };
}

function betterSqlite3Driver(Database: typeof BetterSqlite3): SqliteDriver {
  return {
    name: "better-sqlite3",
    open(path, options = {}) {
      const db = new Database(path, {
        timeout: options.timeoutMs ?? 5000,
        readonly: options.readonly ?? false,
      });
      const exec = (sql: string) => {
        db.exec(sql);
      };
      return {
        driver: "better-sqlite3",
        get open() {
          return db.open;
        },
        exec,
        prepare: <P, R>(sql: string) => db.prepare(sql) as unknown as SqliteStatement<P, R>,
        transaction: (work) => inTransaction(exec, work),
        close() {
          if (db.open) db.close();
        },
      };
    },
  };
}

// --- loading and choosing ---

/** node:sqlite without a flag: Node 22.13+ and 23.4+ (before, `--experimental-sqlite`). */
export function hasUnflaggedNodeSqlite(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  if (major === 22) return minor >= 13;
  if (major === 23) return minor >= 4;
  return major > 23;
}

const SQLITE_WARNING = /^SQLite is an experimental feature/;

/**
 * Node 22 warns "ExperimentalWarning: SQLite is an experimental feature..." once, as node:sqlite
 * loads (24 and later do not): nothing a user of vast-gchat can act on. Exactly that warning is
 * dropped, while loading; every other goes on as usual.
 */
function withoutSqliteWarning<T>(load: () => T): T {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, ...args: unknown[]) {
    const [warning, typeOrOptions] = args;
    const type =
      typeof typeOrOptions === "string"
        ? typeOrOptions
        : (typeOrOptions as { type?: unknown } | undefined)?.type;
    const message = warning instanceof Error ? warning.message : String(warning);
    const kind = warning instanceof Error ? warning.name : type;
    if (kind === "ExperimentalWarning" && SQLITE_WARNING.test(message)) return;
    Reflect.apply(emitWarning, this, args);
  } as typeof process.emitWarning;
  try {
    return load();
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** The same filter, as source for the checkpointer's worker thread (plain CommonJS). */
export const REQUIRE_NODE_SQLITE_SOURCE = `(() => {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, typeOrOptions, ...rest) {
    const type = typeof typeOrOptions === "string" ? typeOrOptions : typeOrOptions && typeOrOptions.type;
    const message = warning instanceof Error ? warning.message : String(warning);
    const kind = warning instanceof Error ? warning.name : type;
    if (kind === "ExperimentalWarning" && ${SQLITE_WARNING}.test(message)) return;
    return emitWarning.call(this, warning, typeOrOptions, ...rest);
  };
  try {
    return require("node:sqlite");
  } finally {
    process.emitWarning = emitWarning;
  }
})()`;

function loadNodeSqlite(): SqliteDriver {
  if (!hasUnflaggedNodeSqlite()) {
    throw new Error(`Node.js ${process.version} has no node:sqlite (it needs 22.13 or later)`);
  }
  const sqlite = withoutSqliteWarning(() => process.getBuiltinModule("node:sqlite")) as
    | NodeSqliteModule
    | undefined;
  if (!sqlite?.DatabaseSync) throw new Error(`Node.js ${process.version} has no node:sqlite`);
  return nodeSqliteDriver(sqlite);
}

async function loadBetterSqlite3(): Promise<SqliteDriver> {
  const { default: Database } = await import("better-sqlite3");
  // The native addon loads with the first database: one built for another Node fails here.
  new Database(":memory:").close();
  return betterSqlite3Driver(Database);
}

const loading = new Map<SqliteDriverName, Promise<SqliteDriver>>();

/** Loads one driver (once per process); rejects with the reason it cannot be had. */
export function loadSqliteDriver(name: SqliteDriverName): Promise<SqliteDriver> {
  let load = loading.get(name);
  if (!load) {
    load = name === "node:sqlite" ? Promise.resolve().then(loadNodeSqlite) : loadBetterSqlite3();
    loading.set(name, load);
  }
  return load;
}

/** The drivers that load on this Node, in order of preference (tests run on each). */
export async function availableSqliteDrivers(): Promise<SqliteDriverName[]> {
  const loaded = await Promise.all(
    SQLITE_DRIVERS.map((name) =>
      loadSqliteDriver(name).then(
        () => name,
        () => undefined,
      ),
    ),
  );
  return loaded.filter((name) => name !== undefined);
}

/** Why a driver would not load, in a few words (a failed dlopen says a paragraph). */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] ?? "").replace(/\s*Tried:$/, "").trim();
}

/** What is wrong with better-sqlite3 here, and the command that mends it. */
export function betterSqlite3Problem(error: unknown): { what: string; fix: string } {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (
    code === "ERR_MODULE_NOT_FOUND" ||
    /Cannot find (package|module) 'better-sqlite3'/.test(message)
  ) {
    return { what: "is not installed", fix: "npm install better-sqlite3" };
  }
  if (message.includes("NODE_MODULE_VERSION")) {
    return { what: "was built for another Node.js version", fix: "npm rebuild better-sqlite3" };
  }
  if (message.includes("Could not locate the bindings file")) {
    return { what: "was installed without its build", fix: "npm rebuild better-sqlite3" };
  }
  return { what: `could not be loaded (${reason(error)})`, fix: "npm rebuild better-sqlite3" };
}

/** `node`, `node:sqlite` or `better-sqlite3`; undefined for the automatic choice. */
function requestedDriver(requested: string | undefined): SqliteDriverName | undefined {
  const value = requested?.trim() ?? "";
  if (value === "") return undefined;
  if (value === "node" || value === "node:sqlite") return "node:sqlite";
  if (value === "better-sqlite3") return "better-sqlite3";
  throw new NoStoreDriverError(
    `${SQLITE_DRIVER_ENV} must be node or better-sqlite3, not ${JSON.stringify(value)}`,
  );
}

/**
 * The driver the store runs on: node:sqlite where Node has it, else better-sqlite3; one named in
 * VAST_GCHAT_SQLITE_DRIVER (or `requested`) if it loads. Rejects with StoreUnavailableError,
 * saying what to do, when there is none.
 */
export async function chooseSqliteDriver(
  requested: string | undefined = process.env[SQLITE_DRIVER_ENV],
): Promise<SqliteDriver> {
  const forced = requestedDriver(requested);
  if (forced) {
    try {
      return await loadSqliteDriver(forced);
    } catch (error) {
      let problem = `cannot be loaded here (${reason(error)})`;
      if (forced === "better-sqlite3") {
        const { what, fix } = betterSqlite3Problem(error);
        problem = `${what} (${fix})`;
      }
      throw new NoStoreDriverError(`${SQLITE_DRIVER_ENV} asks for ${forced}, which ${problem}`, {
        cause: error,
      });
    }
  }
  if (hasUnflaggedNodeSqlite()) {
    try {
      return await loadSqliteDriver("node:sqlite");
    } catch {
      // A Node built without SQLite: better-sqlite3 may still do.
    }
  }
  try {
    return await loadSqliteDriver("better-sqlite3");
  } catch (error) {
    const { what, fix } = betterSqlite3Problem(error);
    throw new NoStoreDriverError(
      `no SQLite driver: Node.js ${process.version} has no built-in SQLite and better-sqlite3 ` +
        `${what}; run vast-gchat on Node.js 22.13 or later (SQLite built in), or run \`${fix}\` ` +
        "where vast-gchat is installed",
      { cause: error },
    );
  }
}
