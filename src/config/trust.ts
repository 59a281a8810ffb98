import { constants, lstatSync, readlinkSync, type Stats } from "node:fs";
import { isAbsolute, join, parse, resolve, sep } from "node:path";
import { UserError } from "../user-error.js";

/**
 * Whether the config directory can be trusted, as ssh decides for ~/.ssh (StrictModes). What is in
 * it steers the tool: config.json names a tunnel command that `serve` runs and the API URL that
 * receives the API key, adapter.json tells `trigger` and `status` where the adapter is, and the
 * event store feeds Chat. So another local user must not be able to put anything there: every
 * directory on the way must be owned by the user (or root) and not writable by others, and so must
 * every file the tool reads from it. A sticky directory on the way (/tmp) is fine: others can add
 * entries to it but not rename or replace ours. POSIX only: Windows has no uid and no mode bits.
 */

/** The files vast-gchat reads from the config directory; each is checked when it is there. */
export const CONFIG_FILES = [
  "config.json",
  "secrets.json",
  "adapter.json",
  "events.db",
  "events.db-wal",
  "events.db-shm",
  "events.db-journal",
] as const;

/** Writable by the group or by everyone. */
const WRITABLE_BY_OTHERS = 0o022;
const STICKY = 0o1000;
/** As Linux's own limit on links followed in one path. */
const MAX_LINKS = 40;

/**
 * `open` flags that refuse a symbolic link as the last part of the path (ELOOP): inside a checked
 * directory only the user can make a link, but a link could still lead to a file others can write.
 * O_NOFOLLOW is undefined on Windows, where there is nothing to add.
 */
export const READ_NO_FOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

/**
 * Throws a UserError of kind "usage" (exit 2) when the config directory, a directory on the way to it, a link on
 * the way, or a file of CONFIG_FILES in it could have been changed by another user. A directory
 * that does not exist yet is fine as long as the one it will be created in is.
 */
export function checkConfigDir(configDir: string): void {
  const me = process.getuid?.();
  if (me === undefined) return;
  const dir = physicalDir(resolve(configDir), me);
  if (dir === undefined) return;
  for (const name of CONFIG_FILES) {
    const path = join(dir, name);
    const stats = lstatOrUndefined(path);
    if (stats) checkFileStats(stats, path, describeFile(name), me);
  }
}

/**
 * Throws when an open file (by its fstat) belongs to another user or others can write it. For the
 * files opened with READ_NO_FOLLOW, after checkConfigDir: the file may have changed in between.
 */
export function checkOpenFile(stats: Stats, path: string, what: string): void {
  const me = process.getuid?.();
  if (me === undefined) return;
  checkFileStats(stats, path, what, me);
}

/** The error for a file that turned out to be a symbolic link (ELOOP from READ_NO_FOLLOW). */
export function linkedFileError(path: string, what: string): UntrustedError {
  return untrusted(
    `The ${what} ${path} is a symbolic link, so it cannot be trusted.`,
    `Put the file itself there: vast-gchat follows no links in its config directory.`,
  );
}

/** How messages name each file of the config directory. */
function describeFile(name: (typeof CONFIG_FILES)[number]): string {
  switch (name) {
    case "config.json":
      return "settings file";
    case "secrets.json":
      return "secrets file";
    case "adapter.json":
      return "adapter state file";
    default:
      return "event store file";
  }
}

/**
 * Follows the path as the kernel would, one name at a time, checking every directory looked into
 * and every link followed; returns the real path of the config directory, or undefined when it is
 * not there (yet) or is not a directory (the commands say so themselves when they use it).
 */
function physicalDir(target: string, me: number): string | undefined {
  const root = parse(target).root;
  const pending = target.slice(root.length).split(sep).filter(Boolean);
  let current = root;
  let links = 0;
  checkAncestor(lstatSync(current), current, target, me);
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === ".") continue;
    if (name === "..") {
      // Every directory above `current` was looked into on the way down, so it is checked.
      current = resolve(current, "..");
      continue;
    }
    const next = join(current, name);
    const stats = lstatOrUndefined(next);
    if (!stats) return undefined;
    if (stats.isSymbolicLink()) {
      // In a sticky directory the link's owner may still replace it, so it must be one we trust.
      if (!trustedOwner(stats.uid, me)) {
        throw untrusted(
          `The link ${next} on the way to the config directory ${target} belongs to another user (uid ${stats.uid}), so the config directory cannot be trusted.`,
          `Remove the link, or use --config-dir with a directory only you can write.`,
        );
      }
      links += 1;
      if (links > MAX_LINKS) return undefined;
      const link = readlinkSync(next);
      if (isAbsolute(link)) current = parse(link).root;
      pending.unshift(...link.split(sep).filter(Boolean));
      continue;
    }
    if (!stats.isDirectory()) return undefined;
    current = next;
    if (pending.length > 0) checkAncestor(stats, current, target, me);
  }
  // Whatever the walk ended on is the config directory, however it was reached (a link whose
  // target ends in "." or ".." too): it gets the strict check, where a sticky bit is no excuse.
  checkDirectory(lstatSync(current), current, me);
  return current;
}

/** A directory above the config directory: whoever can write it can swap what lies below. */
function checkAncestor(stats: Stats, dir: string, target: string, me: number): void {
  if (!trustedOwner(stats.uid, me)) {
    throw untrusted(
      `The directory ${dir} above the config directory ${target} belongs to another user (uid ${stats.uid}), so the config directory cannot be trusted.`,
      `Use --config-dir with a directory only you can write, or run: ${sudo(me)}chown ${ownerArg(me)} ${shellQuote(dir)}`,
    );
  }
  if ((stats.mode & WRITABLE_BY_OTHERS) !== 0 && (stats.mode & STICKY) === 0) {
    throw untrusted(
      `The directory ${dir} above the config directory ${target} is writable by other users, so the config directory cannot be trusted.`,
      `Run: chmod go-w ${shellQuote(dir)} (or use --config-dir with a directory only you can write)`,
    );
  }
}

/** The config directory itself: nobody else may add a file to it, sticky or not. */
function checkDirectory(stats: Stats, dir: string, me: number): void {
  if (!trustedOwner(stats.uid, me)) {
    throw untrusted(
      `The config directory ${dir} belongs to another user (uid ${stats.uid}), so what is in it cannot be trusted.`,
      `Check what is in it, then run: ${sudo(me)}chown ${ownerArg(me)} ${shellQuote(dir)}`,
    );
  }
  if ((stats.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw untrusted(
      `The config directory ${dir} is writable by other users, so what is in it cannot be trusted.`,
      `Check what is in it, then run: chmod go-w ${shellQuote(dir)}`,
    );
  }
}

function checkFileStats(stats: Stats, path: string, what: string, me: number): void {
  if (stats.isSymbolicLink()) throw linkedFileError(path, what);
  if (!trustedOwner(stats.uid, me)) {
    throw untrusted(
      `The ${what} ${path} belongs to another user (uid ${stats.uid}), so it cannot be trusted.`,
      `Check it, then run: ${sudo(me)}chown ${ownerArg(me)} ${shellQuote(path)}`,
    );
  }
  if ((stats.mode & WRITABLE_BY_OTHERS) !== 0) {
    throw untrusted(
      `The ${what} ${path} is writable by other users, so it cannot be trusted.`,
      `Check it, then run: chmod go-w ${shellQuote(path)}`,
    );
  }
}

/** Root can change anything anyway, so what root owns is as safe as what the user owns. */
function trustedOwner(uid: number, me: number): boolean {
  return uid === me || uid === 0;
}

/** Only root may give a file away: a user fixing ownership needs sudo. */
function sudo(me: number): string {
  return me === 0 ? "" : "sudo ";
}

function ownerArg(me: number): string {
  return me === 0 ? "root" : '"$(id -un)"';
}

/** Quotes a path for a POSIX shell when it needs quoting, so the hint can be pasted. */
function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * A refusal of this module's: a UserError of kind "usage" (exit 2) of its own class, so a reader that shrugs off a
 * damaged file (the adapter state file, say) can still let this one through.
 */
export class UntrustedError extends UserError {
  override name = "UntrustedError";
}

function untrusted(message: string, hint: string): UntrustedError {
  return new UntrustedError(message, { hint, kind: "usage" });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    // Not there, or not ours to look at (EACCES): then nothing of it can be read either, and the
    // command that needs it says so in its own words.
    return undefined;
  }
}
