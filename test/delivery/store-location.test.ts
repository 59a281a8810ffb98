import { describe, expect, it } from "vitest";
import { unavailable } from "../../src/delivery/postgres/errors.js";
import {
  isPostgresUrl,
  parseStoreLocation,
  redactStoreLocation,
  scrubSecrets,
} from "../../src/delivery/store-location.js";
import { UserError } from "../../src/user-error.js";

/**
 * `--store`: a postgres:// or postgresql:// URL selects PostgreSQL, anything else is a SQLite path;
 * and a URL's password never shows, wherever the URL or an error about it is printed.
 */
describe("the store's location", () => {
  it("chooses PostgreSQL for postgres:// and postgresql:// URLs, SQLite for anything else", () => {
    expect(isPostgresUrl("postgres://u@h/db")).toBe(true);
    expect(isPostgresUrl("postgresql://u@h/db")).toBe(true);
    expect(isPostgresUrl("POSTGRESQL://u@h/db")).toBe(true);
    expect(parseStoreLocation("/var/lib/vast-gchat/events.db")).toEqual({
      kind: "sqlite",
      path: "/var/lib/vast-gchat/events.db",
    });
    expect(parseStoreLocation("events.db").kind).toBe("sqlite");
    expect(parseStoreLocation("./postgres/events.db").kind).toBe("sqlite");
    expect(parseStoreLocation("postgresql://vast@db.internal:5432/vast").kind).toBe("postgresql");
  });

  it("shows a URL with its password replaced by ***, in the user part and in password=", () => {
    expect(redactStoreLocation("postgresql://vast:s3cret@db.internal:5432/vast")).toBe(
      "postgresql://vast:***@db.internal:5432/vast",
    );
    expect(
      redactStoreLocation(
        "postgres://vast@db.internal/vast?sslmode=require&password=s3cret&sslpassword=k3y",
      ),
    ).toBe("postgres://vast@db.internal/vast?sslmode=require&password=***&sslpassword=***");
    // Nothing to hide: as it is.
    expect(redactStoreLocation("postgresql://vast@localhost/vast")).toBe(
      "postgresql://vast@localhost/vast",
    );
    expect(redactStoreLocation("/srv/events.db")).toBe("/srv/events.db");
  });

  it("finds every spelling of a percent-encoded password, to take it out of any text", () => {
    const where = parseStoreLocation("postgresql://vast:p%40ss%2Fw0rd@db:5432/vast");
    if (where.kind !== "postgresql") throw new Error("not postgres");
    expect(where.shown).toBe("postgresql://vast:***@db:5432/vast");
    const text = "failed for p@ss/w0rd and p%40ss%2Fw0rd";
    expect(scrubSecrets(text, where.secrets)).toBe("failed for *** and ***");
  });

  it("refuses a postgresql:// text that is no URL without quoting it (it may hold the password)", () => {
    let error: unknown;
    try {
      parseStoreLocation("postgresql://vast:hunter2@[not-a-host/vast");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).kind).toBe("usage");
    expect(String((error as Error).message)).not.toContain("hunter2");
    expect(String((error as UserError).hint)).not.toContain("hunter2");
    expect(redactStoreLocation("postgresql://vast:hunter2@[not-a-host/vast")).not.toContain(
      "hunter2",
    );
  });

  it("takes the password out of a driver's error, its message and the stack DEBUG prints", () => {
    const where = parseStoreLocation("postgresql://vast:hunter2@db:5432/vast");
    if (where.kind !== "postgresql") throw new Error("not postgres");
    const raw = Object.assign(new Error("could not connect with hunter2 to db:5432"), {
      code: "ECONNREFUSED",
    });
    const error = unavailable(raw, where.secrets);
    expect(error.message).toBe(
      "event store unavailable (ECONNREFUSED: could not connect with *** to db:5432)",
    );
    const cause = error.cause as Error;
    expect(cause).not.toBe(raw);
    expect(cause.message).not.toContain("hunter2");
    expect(String(cause.stack)).not.toContain("hunter2");
  });
});
