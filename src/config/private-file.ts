import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../user-error.js";
import { checkConfigDir, checkOpenFile, linkedFileError, READ_NO_FOLLOW } from "./trust.js";

/**
 * Small JSON files in the config directory that only the user may read: the secrets file (when
 * there is no OS keychain) and the settings. Both are 0600 in a 0700 directory, replaced
 * atomically, and their content is never quoted in an error: for the secrets file that content is
 * secret, and the settings file gets the same care so nobody has to think about which is which.
 *
 * `what` is how messages name the file, e.g. "secrets file" or "settings file".
 */
export type PrivateJsonObject = Record<string, unknown>;

/** What to do about a file that is there but wrong: the same advice for every file we keep. */
export const DAMAGED_FILE_HINT = "Fix it by hand, or delete it and run `vast-gchat init` again.";

/**
 * Creates the directory 0700; one that exists readable by others is tightened if it is ours (the
 * config directory holds the secrets file and the event store: nobody else has business there).
 * One that others could write, or that is not ours, is refused rather than tightened: what is
 * already in it cannot be trusted (trust.ts). Checked after mkdir too, since in a sticky directory
 * such as /tmp another user could have made the directory first.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform === "win32") return;
  checkConfigDir(dir);
  const stats = statSync(dir);
  if ((stats.mode & 0o077) !== 0 && stats.uid === process.getuid?.()) chmodSync(dir, 0o700);
}

/**
 * The file's JSON object (null-prototype, so a `__proto__` key is just a key), or undefined when
 * there is no file. An empty file counts as an empty object. A file readable by others is
 * tightened to 0600 on the way, if it is ours. Throws a UserError naming the file, never its text.
 * A symbolic link, a file of another user's or one others can write is refused (trust.ts): its
 * content could be anyone's. The check is on the open file, so nothing can swap it in between.
 */
export function readPrivateJsonObject(path: string, what: string): PrivateJsonObject | undefined {
  let text: string;
  try {
    const fd = openSync(path, READ_NO_FOLLOW);
    try {
      const stats = fstatSync(fd);
      checkOpenFile(stats, path, what);
      tightenFile(fd, stats);
      text = readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    const code = errorCode(error);
    // ENOTDIR: the config "directory" is a file, so there is no file of ours in it either.
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    if (code === "ELOOP") throw linkedFileError(path, what);
    throw new UserError(`Cannot read the ${what} ${path} (${code ?? "unknown error"}).`, {
      hint: "It must be a file you own and can read.",
      kind: "usage",
    });
  }
  if (text.trim() === "") return Object.create(null) as PrivateJsonObject;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which may be secret: it is neither shown nor kept.
    throw damagedFileError(path, what, "not valid JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw damagedFileError(path, what, "not a JSON object");
  }
  return Object.assign(Object.create(null) as PrivateJsonObject, data);
}

/** "The <what> <path> is damaged (<why>)." with the advice to fix or delete it. */
export function damagedFileError(path: string, what: string, why: string): UserError {
  return new UserError(`The ${what} ${path} is damaged (${why}).`, {
    hint: DAMAGED_FILE_HINT,
    kind: "usage",
  });
}

/**
 * Replaces the file with `data` as JSON: a 0600 temp file in the same directory, fsync, rename,
 * then fsync of the directory. A crash leaves the old file or the new one, never half of one, and
 * the content is never readable by others, whatever the umask. The directory is made private too.
 */
export function writePrivateJson(path: string, data: PrivateJsonObject, what: string): void {
  const dir = dirname(path);
  const temp = join(dir, `${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    ensurePrivateDir(dir);
    const fd = openSync(temp, "wx", 0o600);
    try {
      if (process.platform !== "win32") fchmodSync(fd, 0o600); // whatever the umask
      writeFileSync(fd, `${JSON.stringify(data, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // There was no temp file to remove.
    }
    if (error instanceof UserError) throw error;
    // Only the code: a message could be anything, and the data must not end up in an error.
    throw new UserError(
      `Cannot write the ${what} ${path} (${errorCode(error) ?? "unknown error"}).`,
    );
  }
  syncDir(dir);
}

/** Removes the file and any temp file a crash in writePrivateJson left beside it. */
export function removePrivateFile(path: string, what: string): void {
  const dir = dirname(path);
  const name = basename(path);
  try {
    rmSync(path, { force: true });
    for (const entry of listDir(dir)) {
      if (isTempFileOf(entry, name)) rmSync(join(dir, entry), { force: true });
    }
  } catch (error) {
    throw new UserError(
      `Cannot remove the ${what} ${path} (${errorCode(error) ?? "unknown error"}).`,
    );
  }
  syncDir(dir);
}

/** Whether there is a regular file at the path (not a directory, not nothing). */
export function fileExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The `code` of a Node.js system error ("ENOENT", "EACCES"…), the one part safe to show. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** `<name>.<hex>.tmp`, exactly what writePrivateJson makes: nothing else is touched. */
function isTempFileOf(entry: string, name: string): boolean {
  if (!entry.startsWith(`${name}.`) || !entry.endsWith(".tmp")) return false;
  return /^[0-9a-f]+$/.test(entry.slice(name.length + 1, -".tmp".length));
}

/** A file readable by others (copied in, or made by hand) is made 0600 if it is ours. */
function tightenFile(fd: number, stats: Stats): void {
  if (process.platform === "win32") return;
  if ((stats.mode & 0o077) !== 0 && stats.uid === process.getuid?.()) fchmodSync(fd, 0o600);
}

/** Makes the rename itself durable; not possible everywhere (Windows), so best effort. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort.
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
