import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { secretSource, withSecretFiles } from "../../src/cli/secret-files.js";
import { UserError } from "../../src/user-error.js";

/**
 * VAST_WEBHOOK_SECRET_FILE and GOOGLE_CHAT_URL_FILE: secrets as files, the way container runtimes
 * hand them over. The plain variable wins; a trailing line break is dropped; a file that cannot be
 * used is a usage error naming the variable, never the content.
 */
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-secret-files-"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function secretFile(name: string, content: string, mode = 0o444): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

function refusal(env: NodeJS.ProcessEnv): UserError {
  try {
    withSecretFiles(env);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("secrets from files", () => {
  it("reads each secret from its file, without the trailing newline, leaving the environment as it was", () => {
    const env = {
      VAST_WEBHOOK_SECRET_FILE: secretFile("secret", "whsec-from-file\n"),
      GOOGLE_CHAT_URL_FILE: secretFile(
        "chat",
        "https://chat.googleapis.com/v1/spaces/X/messages\r\n",
      ),
    };
    const resolved = withSecretFiles(env);
    expect(resolved.VAST_WEBHOOK_SECRET).toBe("whsec-from-file");
    expect(resolved.GOOGLE_CHAT_URL).toBe("https://chat.googleapis.com/v1/spaces/X/messages");
    expect(env).not.toHaveProperty("VAST_WEBHOOK_SECRET");
    expect(secretSource(env, "VAST_WEBHOOK_SECRET")).toBe("VAST_WEBHOOK_SECRET_FILE");
  });

  it("lets the plain variable win when both are set, without reading the file", () => {
    const env = {
      VAST_WEBHOOK_SECRET: "whsec-plain",
      VAST_WEBHOOK_SECRET_FILE: join(dir, "missing"),
    };
    expect(withSecretFiles(env).VAST_WEBHOOK_SECRET).toBe("whsec-plain");
    expect(secretSource(env, "VAST_WEBHOOK_SECRET")).toBe("VAST_WEBHOOK_SECRET");
  });

  it("takes a read-only file owned by anyone (0444, as container runtimes mount secrets)", () => {
    const path = secretFile("mounted", "whsec-mounted", 0o444);
    expect(withSecretFiles({ VAST_WEBHOOK_SECRET_FILE: path }).VAST_WEBHOOK_SECRET).toBe(
      "whsec-mounted",
    );
  });

  it("refuses a missing file, a directory, an empty file and one every user may write, naming the variable and never the content", () => {
    const missing = refusal({ GOOGLE_CHAT_URL_FILE: join(dir, "nope") });
    expect(missing.kind).toBe("usage");
    expect(missing.message).toMatch(
      /^GOOGLE_CHAT_URL_FILE names a file that cannot be read: .*nope \(ENOENT\)\.$/,
    );

    mkdirSync(join(dir, "folder"));
    expect(refusal({ VAST_WEBHOOK_SECRET_FILE: join(dir, "folder") }).message).toMatch(
      /VAST_WEBHOOK_SECRET_FILE names .*folder, which is not a file/,
    );
    expect(refusal({ VAST_WEBHOOK_SECRET_FILE: secretFile("empty", "\n") }).message).toMatch(
      /which is empty/,
    );
    const writable = refusal({
      VAST_WEBHOOK_SECRET_FILE: secretFile("open", "whsec-visible-content", 0o666),
    });
    expect(writable.message).toMatch(/which every user may write/);
    expect(`${writable.message} ${writable.hint}`).not.toContain("whsec-visible-content");
  });
});
