import { PassThrough } from "node:stream";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { createLogger, formatRecord } from "../../src/cli/logger.js";

function capture(pretty: boolean) {
  const out = new PassThrough();
  let text = "";
  out.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
  });
  return { log: createLogger({ pretty, out }), text: () => text };
}

describe("the adapter's log", () => {
  it("on a terminal, prints nothing from an event that could forge a line or steer the terminal", () => {
    const line = formatRecord({
      time: Date.now(),
      level: "info",
      msg: "received",
      type: "low_credit\n12:00:00 delivered  type=forged",
      event_id: "\u001b]0;pwned\u0007\u001b[2J\u009b2J\u202Eid",
    });
    const plain = stripVTControlCharacters(line);
    expect(plain).not.toContain("\n");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
    expect(plain).not.toMatch(/[\u0000-\u001F\u007F-\u009F\u202A-\u202E]/);
    expect(plain).toContain("type=low_credit\\n12:00:00 delivered  type=forged");
    expect(plain).toContain("event_id=\\u001b]0;pwned\\u0007");
  });

  it("writes one JSON object per line when not on a terminal", () => {
    const { log, text } = capture(false);
    log.info({ type: "low_credit", event_id: "abc" }, "received");
    log.warn({ reason: "invalid_signature" }, "rejected");
    const records = text()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toMatchObject([
      { level: "info", msg: "received", type: "low_credit", event_id: "abc" },
      { level: "warn", msg: "rejected", reason: "invalid_signature" },
    ]);
    expect(typeof records[0]?.time).toBe("string");
  });

  it("writes one readable line per record on a terminal", () => {
    const { log, text } = capture(true);
    log.info({ type: "low_credit", event_id: "abc", latency_ms: 12 }, "delivered");
    const lines = stripVTControlCharacters(text()).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d delivered\s+type=low_credit event_id=abc latency_ms=12$/,
    );
  });

  it("redacts fields that must never be logged, even if a caller passes them", () => {
    const { log, text } = capture(false);
    log.info(
      { secret: "whsec-leak", chatUrl: "https://chat.googleapis.com/?token=t0k3n", apiKey: "k3y" },
      "oops",
    );
    expect(text()).not.toMatch(/whsec-leak|t0k3n|k3y/);
    expect(text()).toContain("[redacted]");
  });

  it("formats values that are not strings as JSON", () => {
    const line = formatRecord({
      time: 0,
      level: "info",
      msg: "ready",
      queue: { pending: 2 },
      nothing: null,
    });
    expect(line).toContain('queue={"pending":2}');
    expect(line).not.toContain("nothing");
  });
});
