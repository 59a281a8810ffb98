import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { usageError } from "./errors.js";

/**
 * Secrets from files, for containers (which have no keychain): `VAST_WEBHOOK_SECRET_FILE` and
 * `GOOGLE_CHAT_URL_FILE` name files holding what `VAST_WEBHOOK_SECRET` and `GOOGLE_CHAT_URL` would
 * (the container-secrets convention: Docker and Kubernetes mount each secret as a file). The plain
 * variable wins when both are set. The file's trailing line breaks are dropped (`echo` and editors
 * add one); nothing else is changed, so a stray space is still caught where the value is checked.
 *
 * A file that cannot be read is a usage error (exit 2) naming the variable and the path, never the
 * content. The file may be anywhere and owned by anyone (container runtimes mount secrets 0444 and
 * root-owned), but not writable by every user: whoever can write it could sign forged events or
 * redirect the messages.
 */
export const SECRET_FILE_VARIABLES = {
  VAST_WEBHOOK_SECRET: "VAST_WEBHOOK_SECRET_FILE",
  GOOGLE_CHAT_URL: "GOOGLE_CHAT_URL_FILE",
} as const;

/** More than any secret here: a path to something else by mistake is refused, not read whole. */
const MAX_BYTES = 64 * 1024;

/**
 * The environment with each secret that is given only as a file filled in from it; the environment
 * itself is not changed. Throws a usage error for a file that cannot be used.
 */
export function withSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  let resolved: NodeJS.ProcessEnv | undefined;
  for (const [variable, fileVariable] of Object.entries(SECRET_FILE_VARIABLES)) {
    const path = env[fileVariable];
    if (env[variable] || !path) continue;
    resolved ??= { ...env };
    resolved[variable] = readSecretFile(path, fileVariable);
  }
  return resolved ?? env;
}

/** Where a secret came from, for `status`: the variable, its file variable, or nothing. */
export function secretSource(env: NodeJS.ProcessEnv, variable: string): string | undefined {
  if (env[variable]) return variable;
  const fileVariable = SECRET_FILE_VARIABLES[variable as keyof typeof SECRET_FILE_VARIABLES];
  return fileVariable && env[fileVariable] ? fileVariable : undefined;
}

function readSecretFile(path: string, variable: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw usageError(
      `${variable} names a file that cannot be read: ${path} (${code}).`,
      `Check the path and that this user may read it, or unset ${variable}.`,
    );
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw usageError(`${variable} names ${path}, which is not a file.`);
    }
    if (stats.mode & 0o002) {
      throw usageError(
        `${variable} names ${path}, which every user may write: a secret there cannot be trusted.`,
        `Remove the write permission for others: chmod o-w ${path}`,
      );
    }
    if (stats.size > MAX_BYTES) {
      throw usageError(
        `${variable} names ${path}, which is larger than a secret can be (${stats.size} bytes).`,
      );
    }
    const buffer = Buffer.alloc(Math.min(stats.size, MAX_BYTES) + 1);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const value = buffer
      .subarray(0, length)
      .toString("utf8")
      .replace(/[\r\n]+$/, "");
    if (value === "") throw usageError(`${variable} names ${path}, which is empty.`);
    return value;
  } finally {
    closeSync(fd);
  }
}
