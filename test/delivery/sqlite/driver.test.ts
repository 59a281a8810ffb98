import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "../../../src/delivery/event-store.js";
import {
  betterSqlite3Problem,
  chooseSqliteDriver,
  hasUnflaggedNodeSqlite,
  loadSqliteDriver,
  SQLITE_DRIVERS,
  type SqliteConnection,
  sqliteErrorCode,
} from "../../../src/delivery/sqlite/sqlite-driver.js";
import { SQLITE_DRIVERS_HERE } from "./drivers.js";

/** The seam itself: both drivers run the same SQL and fail with the same SQLite code names. */
let dir: string;
const connections: SqliteConnection[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-driver-"));
});
afterEach(() => {
  for (const connection of connections.splice(0)) connection.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What a call threw, for its code. */
function thrown(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  throw new Error("it did not throw");
}

describe.each(SQLITE_DRIVERS_HERE)("the %s driver", (name) => {
  async function open(file = "a.db", options = {}): Promise<SqliteConnection> {
    const connection = (await loadSqliteDriver(name)).open(join(dir, file), options);
    connections.push(connection);
    return connection;
  }

  it("runs statements with positional and named parameters", async () => {
    const db = await open();
    expect(db.driver).toBe(name);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, n INTEGER)");
    const insert = db.prepare<{ v: string; n: number | null }>(
      "INSERT INTO t (v, n) VALUES (@v, @n) ON CONFLICT (v) DO NOTHING",
    );
    expect(insert.run({ v: "a", n: 1 }).changes).toBe(1);
    expect(insert.run({ v: "a", n: 2 }).changes).toBe(0);
    insert.run({ v: "b", n: null });
    const byValue = db.prepare<[v: string], { id: number; v: string; n: number | null }>(
      "SELECT * FROM t WHERE v = ?",
    );
    expect(byValue.get("a")).toEqual({ id: 1, v: "a", n: 1 });
    expect(byValue.get("nothing")).toBeUndefined();
    expect(db.prepare<[], { v: string }>("SELECT v FROM t ORDER BY id").all()).toEqual([
      { v: "a" },
      { v: "b" },
    ]);
    expect(db.prepare<[], { user_version: number }>("PRAGMA user_version").get()).toEqual({
      user_version: 0,
    });
  });

  it("commits a transaction that returns and rolls back one that throws", async () => {
    const db = await open();
    db.exec("CREATE TABLE t (v TEXT)");
    const insert = db.prepare<[v: string]>("INSERT INTO t (v) VALUES (?)");
    expect(db.transaction(() => insert.run("kept").changes)).toBe(1);
    expect(() =>
      db.transaction(() => {
        insert.run("undone");
        throw new Error("no");
      }),
    ).toThrow("no");
    expect(db.prepare<[], { v: string }>("SELECT v FROM t").all()).toEqual([{ v: "kept" }]);
  });

  it("names SQLite's codes as better-sqlite3 does: busy, full, constraint, read-only, cannot open", async () => {
    const db = await open("a.db", { timeoutMs: 20 });
    db.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT UNIQUE)");
    const insert = db.prepare<[v: string]>("INSERT INTO t (v) VALUES (?)");
    insert.run("a");
    expect(sqliteErrorCode(thrown(() => insert.run("a")))).toBe("SQLITE_CONSTRAINT_UNIQUE");

    const other = await open();
    other.exec("BEGIN EXCLUSIVE");
    expect(sqliteErrorCode(thrown(() => insert.run("b")))).toBe("SQLITE_BUSY");
    expect(sqliteErrorCode(thrown(() => db.transaction(() => insert.run("b"))))).toBe(
      "SQLITE_BUSY",
    );
    other.exec("ROLLBACK");

    // A file that may not grow is full, as a full disk is.
    const small = await open("small.db");
    small.exec("CREATE TABLE big (v TEXT); PRAGMA max_page_count = 3");
    const full = thrown(() => {
      for (;;) small.prepare<[v: string]>("INSERT INTO big (v) VALUES (?)").run("x".repeat(4000));
    });
    expect(sqliteErrorCode(full)).toBe("SQLITE_FULL");

    const readonly = await open("a.db", { readonly: true });
    expect(sqliteErrorCode(thrown(() => readonly.exec("INSERT INTO t (v) VALUES ('c')")))).toBe(
      "SQLITE_READONLY",
    );
  });

  it("cannot open a file in a directory that does not exist", async () => {
    const driver = await loadSqliteDriver(name);
    const error = thrown(() => driver.open(join(dir, "missing", "a.db")));
    // better-sqlite3 looks first and says so; node:sqlite leaves it to SQLite (SQLITE_CANTOPEN).
    expect((error as Error).message).toMatch(/directory does not exist|unable to open/);
    if (name === "node:sqlite") expect(sqliteErrorCode(error)).toBe("SQLITE_CANTOPEN");
  });

  it("closes once, and says so", async () => {
    const db = await open();
    expect(db.open).toBe(true);
    db.close();
    db.close();
    expect(db.open).toBe(false);
  });

  it("is chosen when VAST_GCHAT_SQLITE_DRIVER names it", async () => {
    const requested = name === "node:sqlite" ? "node" : name;
    expect((await chooseSqliteDriver(requested)).name).toBe(name);
    expect((await chooseSqliteDriver(name)).name).toBe(name);
    vi.stubEnv("VAST_GCHAT_SQLITE_DRIVER", requested);
    try {
      expect((await chooseSqliteDriver()).name).toBe(name);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe("choosing the driver", () => {
  it("takes node:sqlite where Node has it unflagged (22.13+, 23.4+), else better-sqlite3", async () => {
    const expected = hasUnflaggedNodeSqlite() ? "node:sqlite" : "better-sqlite3";
    expect((await chooseSqliteDriver(undefined)).name).toBe(expected);
    expect((await chooseSqliteDriver("")).name).toBe(expected);
    expect(SQLITE_DRIVERS_HERE).toContain(expected);
  });

  it("knows which Node versions have node:sqlite without a flag", () => {
    const cases: Array<[string, boolean]> = [
      ["20.19.0", false],
      ["20.20.2", false],
      ["22.5.0", false],
      ["22.12.0", false],
      ["22.13.0", true],
      ["22.23.5", true],
      ["23.3.0", false],
      ["23.4.0", true],
      ["24.0.0", true],
      ["26.12.1", true],
    ];
    for (const [version, expected] of cases) {
      expect(hasUnflaggedNodeSqlite(version), version).toBe(expected);
    }
  });

  it("refuses a forced driver that does not load here, and a name it does not know", async () => {
    for (const name of SQLITE_DRIVERS.filter((driver) => !SQLITE_DRIVERS_HERE.includes(driver))) {
      await expect(chooseSqliteDriver(name)).rejects.toThrow(
        new RegExp(`^VAST_GCHAT_SQLITE_DRIVER asks for ${name}, which .+ \\(.+\\)$`),
      );
    }
    await expect(chooseSqliteDriver("postgres")).rejects.toThrow(StoreUnavailableError);
    await expect(chooseSqliteDriver("postgres")).rejects.toThrow(
      'VAST_GCHAT_SQLITE_DRIVER must be node or better-sqlite3, not "postgres"',
    );
  });

  it("says what mends better-sqlite3: missing, built for another Node, or never built", () => {
    const missing = Object.assign(
      new Error("Cannot find package 'better-sqlite3' imported from x"),
      {
        code: "ERR_MODULE_NOT_FOUND",
      },
    );
    expect(betterSqlite3Problem(missing)).toEqual({
      what: "is not installed",
      fix: "npm install better-sqlite3",
    });
    // Node 26 loading an addon built for Node 20 (the message as it comes, cut short).
    const otherAbi = Object.assign(
      new Error(
        "The module '/x/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION 147.",
      ),
      { code: "ERR_DLOPEN_FAILED" },
    );
    expect(betterSqlite3Problem(otherAbi)).toEqual({
      what: "was built for another Node.js version",
      fix: "npm rebuild better-sqlite3",
    });
    // Installed with --ignore-scripts: no addon at all.
    const unbuilt = new Error("Could not locate the bindings file. Tried:\n → /x/build/a.node");
    expect(betterSqlite3Problem(unbuilt)).toEqual({
      what: "was installed without its build",
      fix: "npm rebuild better-sqlite3",
    });
    expect(betterSqlite3Problem(new Error("odd\nmore")).what).toBe("could not be loaded (odd)");
  });

  it("reads either driver's error shape", () => {
    // better-sqlite3: a SqliteError named by its code.
    expect(sqliteErrorCode(Object.assign(new Error("full"), { code: "SQLITE_FULL" }))).toBe(
      "SQLITE_FULL",
    );
    // node:sqlite: ERR_SQLITE_ERROR with SQLite's (extended) number and its text.
    const nodeError = (errcode: number, errstr: string) =>
      Object.assign(new Error(errstr), { code: "ERR_SQLITE_ERROR", errcode, errstr });
    expect(sqliteErrorCode(nodeError(5, "database is locked"))).toBe("SQLITE_BUSY");
    expect(sqliteErrorCode(nodeError(13, "database or disk is full"))).toBe("SQLITE_FULL");
    expect(sqliteErrorCode(nodeError(2067, "constraint failed"))).toBe("SQLITE_CONSTRAINT_UNIQUE");
    expect(sqliteErrorCode(nodeError(778, "disk I/O error"))).toBe("SQLITE_IOERR_WRITE");
    expect(sqliteErrorCode(nodeError(99_999, "?"))).toBe("UNKNOWN_SQLITE_ERROR_99999");
    // Anything else: its own code, or none.
    expect(sqliteErrorCode(Object.assign(new Error("gone"), { code: "ENOENT" }))).toBe("ENOENT");
    expect(sqliteErrorCode(new TypeError("bad"))).toBeUndefined();
    expect(sqliteErrorCode("a string")).toBeUndefined();
  });
});
