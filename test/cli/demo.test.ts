import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { KNOWN_EVENT_TYPES } from "../../src/vast/event-types.js";
import { cleanEnv, runCli } from "../support/cli-process.js";

const demoDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith("vast-gchat-demo-"));

describe("demo", () => {
  it("delivers every known type to the Chat preview, refuses the duplicate and the forgery, and cleans up", async () => {
    const before = new Set(demoDirs());
    const result = await runCli(["demo", "--json"], cleanEnv({}));
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    const sent = KNOWN_EVENT_TYPES.size + 1;
    expect(summary).toMatchObject({
      ok: true,
      sent,
      delivered: sent,
      chat_messages: sent,
      duplicate_refused: true,
      bad_signature_status: 401,
    });
    expect(demoDirs().filter((name) => !before.has(name))).toEqual([]);
  });

  it("tells the story on a terminal, without colour when asked", async () => {
    const result = await runCli(["demo", "--no-color"], cleanEnv({ FORCE_COLOR: "1" }));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("✅ Test event received");
    const sent = KNOWN_EVENT_TYPES.size + 1;
    expect(result.stdout).toContain(`Done: ${sent} of ${sent} events delivered`);
    expect(result.stdout).not.toContain("\u001b[");
  });
});
