import { afterEach, describe, expect, it, vi } from "vitest";
import type { AdapterLog } from "../../src/adapter/adapter.js";
import { createRejectionLog } from "../../src/adapter/rejection-log.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { type AdapterFixture, SECRET, startAdapterFixture } from "../support/adapter-fixture.js";
import { postSigned } from "../support/sign.js";

/** Refused deliveries cost a stranger nothing to send: they must not cost a log line each. */
interface Line {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function capture(): { log: AdapterLog; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return {
    lines,
    log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  };
}

const messages = (lines: Line[]) => lines.map((line) => line.message);

describe("an adapter under a flood of forgeries", () => {
  let fx: AdapterFixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it("logs the first refusal, then one line with how many it left out", async () => {
    const { log, lines } = capture();
    fx = await startAdapterFixture({ log });
    for (let i = 0; i < 20; i++) {
      expect((await postSigned(fx.url, "forged", sampleEvent("low_credit"))).status).toBe(401);
    }
    for (let i = 0; i < 5; i++) {
      expect((await fetch(fx.url, { method: "POST", body: "{}" })).status).toBe(401);
    }
    expect((await postSigned(fx.url, SECRET, sampleEvent("outbid"))).status).toBe(200);

    const rejected = lines.filter((line) => line.message === "rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.fields).toMatchObject({
      status: 401,
      reason: "invalid_signature",
      detail: "mismatch",
    });
    // Accepted deliveries are still logged one by one.
    expect(messages(lines)).toContain("received");

    await fx.adapter.close(500);
    const summary = lines.filter((line) => line.message === "rejections not logged");
    expect(summary).toEqual([
      {
        level: "warn",
        fields: { status: 401, reason: "invalid_signature", suppressed: 24, window_s: 10 },
        message: "rejections not logged",
      },
    ]);
  });
});

describe("createRejectionLog", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const forged = { status: 401, reason: "invalid_signature", detail: "mismatch" };

  it("says how many it left out at the end of each interval, and starts afresh after a quiet one", () => {
    vi.useFakeTimers();
    const { log, lines } = capture();
    const rejections = createRejectionLog(log, 1000);
    for (let i = 0; i < 3; i++) rejections.rejected(forged);
    expect(messages(lines)).toEqual(["rejected"]);

    vi.advanceTimersByTime(1000);
    expect(lines[1]?.fields).toMatchObject({ reason: "invalid_signature", suppressed: 2 });

    // Still flooding: counted again, and said again one interval later.
    rejections.rejected(forged);
    vi.advanceTimersByTime(1000);
    expect(lines.map((line) => line.fields.suppressed)).toEqual([undefined, 2, 1]);

    // A quiet interval ends the window: the next refusal is logged in full.
    vi.advanceTimersByTime(1000);
    rejections.rejected({ ...forged, detail: "stale" });
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ message: "rejected", fields: { detail: "stale" } });
    rejections.close();
  });

  it("keeps each reason apart, and logs a store that cannot keep events as an error", () => {
    vi.useFakeTimers();
    const { log, lines } = capture();
    const rejections = createRejectionLog(log, 1000);
    rejections.rejected(forged);
    rejections.rejected({ status: 413, reason: "payload_too_large" });
    rejections.rejected({ status: 503, reason: "unavailable", detail: "database is locked" });
    rejections.rejected({ status: 503, reason: "unavailable", detail: "database is locked" });
    expect(lines.map((line) => [line.level, line.fields.reason])).toEqual([
      ["warn", "invalid_signature"],
      ["warn", "payload_too_large"],
      ["error", "unavailable"],
    ]);
    rejections.close();
    expect(lines[3]).toMatchObject({
      level: "error",
      message: "rejections not logged",
      fields: { reason: "unavailable", suppressed: 1 },
    });
    // Closed: no timer is left to write later.
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(4);
  });
});
