import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ensurePrivateDir,
  readPrivateJsonObject,
  removePrivateFile,
  writePrivateJson,
} from "../../src/config/private-file.js";
import { UserError } from "../../src/user-error.js";

const posix = process.platform !== "win32";
const mode = (path: string) => statSync(path).mode & 0o777;

/** Looks like a credential, so a leak into an error would be obvious. */
const CONTENT = '{"token": "s3cr3t-VALUE-do-not-show", ';

let root: string;
let dir: string;
let file: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "vast-gchat-private-"));
  dir = join(root, "config"); // not there yet
  file = join(dir, "data.json");
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error("expected an error");
}

/** Everything an error could show: message, hint, cause and stack. */
const allText = (error: UserError) =>
  [error.message, error.hint ?? "", String(error.cause ?? ""), error.stack ?? ""].join("\n");

describe("private files", () => {
  it("reads nothing, and creates nothing, when there is no file", () => {
    expect(readPrivateJsonObject(file, "test file")).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
  });

  it("round-trips a JSON object, creating the directory", () => {
    writePrivateJson(file, { a: 1, b: ["x"], c: { d: true } }, "test file");
    expect(readPrivateJsonObject(file, "test file")).toEqual({ a: 1, b: ["x"], c: { d: true } });
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ a: 1, b: ["x"], c: { d: true } });
  });

  it("reads an empty file as an empty object", () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, " \n");
    expect(readPrivateJsonObject(file, "test file")).toEqual({});
  });

  it.runIf(posix)("keeps the file 0600 in a 0700 directory, tightening looser ones", () => {
    writePrivateJson(file, { a: 1 }, "test file");
    expect(mode(dir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);

    chmodSync(dir, 0o755);
    chmodSync(file, 0o644);
    readPrivateJsonObject(file, "test file"); // reading alone tightens the file
    expect(mode(file)).toBe(0o600);
    writePrivateJson(file, { a: 2 }, "test file");
    expect(mode(dir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);

    const other = join(root, "other");
    mkdirSync(other, { mode: 0o755 });
    chmodSync(other, 0o755); // whatever the umask
    ensurePrivateDir(other);
    expect(mode(other)).toBe(0o700);
  });

  it("writes through a temp file that does not stay behind", () => {
    writePrivateJson(file, { a: 1 }, "test file");
    writePrivateJson(file, { a: 2 }, "test file");
    expect(readdirSync(dir)).toEqual(["data.json"]);
  });

  it("names the path, not the content, when the file cannot be written", () => {
    mkdirSync(file, { recursive: true }); // a directory where the file should be
    const error = errorOf(() => writePrivateJson(file, { token: "s3cr3t-VALUE" }, "test file"));
    expect(error.message).toMatch(
      new RegExp(`^Cannot write the test file ${file} \\(E[A-Z]+\\)\\.$`),
    );
    expect(allText(error)).not.toContain("s3cr3t-VALUE");
    expect(readdirSync(dir)).toEqual(["data.json"]); // no temp file left
  });

  it("names the path of a damaged file and never shows what is in it", () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, CONTENT);
    const error = errorOf(() => readPrivateJsonObject(file, "test file"));
    expect(error.message).toBe(`The test file ${file} is damaged (not valid JSON).`);
    expect(error.kind).toBe("usage");
    expect(error.hint).toMatch(/vast-gchat init/);
    expect(allText(error)).not.toContain("s3cr3t");

    writeFileSync(file, '["s3cr3t-VALUE-do-not-show"]');
    const notObject = errorOf(() => readPrivateJsonObject(file, "test file"));
    expect(notObject.message).toBe(`The test file ${file} is damaged (not a JSON object).`);
    expect(allText(notObject)).not.toContain("s3cr3t");
  });

  it("names the path when the file cannot be read", () => {
    mkdirSync(file, { recursive: true }); // a directory is not a readable file
    const error = errorOf(() => readPrivateJsonObject(file, "test file"));
    expect(error.message).toMatch(
      new RegExp(`^Cannot read the test file ${file} \\(E[A-Z]+\\)\\.$`),
    );
    expect(error.kind).toBe("usage");
  });

  it("removes the file and temp files a crash left, but nothing else", () => {
    writePrivateJson(file, { a: 1 }, "test file");
    writeFileSync(join(dir, "data.json.0a1b2c3d4e5f.tmp"), CONTENT);
    writeFileSync(join(dir, "data.json.not-ours.tmp"), "{}");
    writeFileSync(join(dir, "other.json"), "{}");
    removePrivateFile(file, "test file");
    expect(readdirSync(dir).sort()).toEqual(["data.json.not-ours.tmp", "other.json"]);
    removePrivateFile(file, "test file"); // nothing there: fine
    removePrivateFile(join(root, "missing", "x.json"), "test file"); // nor a directory
  });
});
