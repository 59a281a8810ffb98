import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeRuntimeState } from "../../src/config/runtime-state.js";
import { openSecretStore } from "../../src/config/secret-store.js";
import { type AdapterFixture, SECRET, startAdapterFixture } from "../support/adapter-fixture.js";
import { cleanEnv } from "../support/cli-process.js";
import { runInProcess } from "../support/run-program.js";

let fx: AdapterFixture;
beforeEach(async () => {
  fx = await startAdapterFixture();
});
afterEach(async () => {
  await fx.close();
});

const env = (extra: Record<string, string> = {}) =>
  cleanEnv({ VAST_WEBHOOK_SECRET: SECRET, ...extra });

describe("trigger", () => {
  it("signs a sample event that the adapter accepts and delivers to Chat", async () => {
    const result = await runInProcess(["trigger", "client:low_credit", "--url", fx.url], env());
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Sent: low_credit event [0-9a-f]{32} -> http:\/\/127\.0\.0\.1:\d+\/: 200 /,
    );
    await fx.chat.waitForMessages(1);
    expect(JSON.stringify(fx.chat.messages[0]?.body)).toContain("Credit Balance Is Getting Low");
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  });

  it("uses the given subject and message, and reports JSON with --json", async () => {
    const args = [
      "trigger",
      "instance_stopped",
      "--url",
      fx.url,
      "--subject",
      "Box 42 went down",
      "--message",
      "details",
      "--json",
    ];
    const result = await runInProcess(args, env());
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      status: number;
      event: { subject: string };
      answer: unknown;
    };
    expect(report).toMatchObject({ ok: true, status: 200, event: { subject: "Box 42 went down" } });
    await fx.chat.waitForMessages(1);
    expect(JSON.stringify(fx.chat.messages[0]?.body)).toContain("Box 42 went down");
  });

  it("targets 127.0.0.1:$PORT by default", async () => {
    const result = await runInProcess(
      ["trigger", "outbid"],
      env({ PORT: String(fx.adapter.port) }),
    );
    expect(result.code).toBe(0);
    await fx.chat.waitForMessages(1);
  });

  it("sends an unknown type anyway, with a note", async () => {
    const result = await runInProcess(["trigger", "gpu_on_fire", "--url", fx.url], env());
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("gpu_on_fire is not a type vast-gchat knows");
  });

  it("exits 1 when the adapter refuses it (wrong secret)", async () => {
    const result = await runInProcess(
      ["trigger", "low_credit", "--url", fx.url],
      env({ VAST_WEBHOOK_SECRET: "not-the-secret" }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Refused: .* 401 \{"ok":false,"error":"invalid_signature"\}/);
  });

  it("exits 1 with a hint when nothing listens", async () => {
    const result = await runInProcess(
      ["trigger", "low_credit", "--url", "http://127.0.0.1:9/"],
      env(),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Could not reach the adapter at http://127.0.0.1:9");
    expect(result.stderr).toContain("vast-gchat serve");
  });

  it.each([
    [["trigger", "Low Credit!"], /is not an event type/],
    [["trigger", "low_credit", "--url", "http://example.com/"], /--url is not usable/],
  ])("exits 2 for bad input: %j", async (args, message) => {
    const result = await runInProcess(args, env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it("without flags or environment, signs with the stored secret and finds the running serve", async () => {
    const configDir = mkdtempSync(join(tmpdir(), "trigger-config-"));
    try {
      const fileStore = { VAST_GCHAT_SECRET_STORE: "file" };
      openSecretStore(configDir, { env: fileStore }).set("webhookSecret", SECRET);
      const { origin, pathname } = new URL(fx.url);
      writeRuntimeState(configDir, { pid: process.pid, origin, path: pathname, startedAt: 0 });

      const result = await runInProcess(
        ["trigger", "instance_stopped", "--config-dir", configDir],
        cleanEnv(fileStore),
      );
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`-> ${fx.url}: 200`);
    } finally {
      rmSync(configDir, { recursive: true, force: true });
    }
  });

  it("exits 2 without a secret", async () => {
    const empty = mkdtempSync(join(tmpdir(), "trigger-empty-"));
    const result = await runInProcess(
      ["trigger", "low_credit", "--url", fx.url],
      cleanEnv({ VAST_GCHAT_CONFIG_DIR: empty, VAST_GCHAT_SECRET_STORE: "file" }),
    );
    rmSync(empty, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/No webhook signing secret/);
  });
});
