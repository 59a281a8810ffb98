import { describe, expect, it } from "vitest";
import type { AdapterLog } from "../../src/adapter/adapter.js";
import { AlertSender } from "../../src/adapter/alert-sender.js";
import type { PostOutcome } from "../../src/chat/post-message.js";
import type { ChatMessage } from "../../src/chat/render.js";
import { ManualScheduler, settle } from "../support/manual-scheduler.js";

function setUp(answers: PostOutcome[]) {
  const scheduler = new ManualScheduler();
  const posted: Array<{ text: string | undefined; at: number }> = [];
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields: fields as Record<string, unknown> });
    };
  const log: AdapterLog = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  const sender = new AlertSender({
    scheduler,
    log,
    post: async (message: ChatMessage) => {
      posted.push({ text: message.text, at: scheduler.now() });
      return answers.shift() ?? { kind: "delivered", status: 200 };
    },
  });
  return { scheduler, sender, posted, lines };
}

describe("AlertSender", () => {
  it("retries what Chat may take later, 1 s then doubling, and keeps the order", async () => {
    const t = setUp([
      { kind: "retry", reason: "Chat answered 429", status: 429 },
      { kind: "retry", reason: "Chat answered 503", status: 503 },
    ]);
    t.sender.send({ text: "first" }, "first");
    t.sender.send({ text: "second" }, "second");
    await settle();
    await t.scheduler.advance(10_000);
    const start = t.posted[0]?.at ?? 0;
    expect(t.posted.map((p) => [p.text, p.at - start])).toEqual([
      ["first", 0],
      ["first", 1000],
      ["first", 3000],
      ["second", 3000],
    ]);
    expect(t.lines.filter((l) => l.msg === "alert posted").map((l) => l.fields.alert)).toEqual([
      "first",
      "second",
    ]);
    expect(t.sender.pending).toBe(0);
  });

  it("an alert Chat refuses for good is logged as an error and dropped; the next goes on", async () => {
    const t = setUp([{ kind: "rejected", reason: "Chat answered 400", status: 400 }]);
    t.sender.send({ text: "bad" }, "bad");
    t.sender.send({ text: "good" }, "good");
    await settle();
    expect(t.posted.map((p) => p.text)).toEqual(["bad", "good"]);
    expect(t.lines.find((l) => l.level === "error")?.fields).toEqual({
      alert: "bad",
      reason: "Chat answered 400",
    });
  });

  it("on stop, what was not posted is named in the log (it lived in memory)", async () => {
    const t = setUp([{ kind: "retry", reason: "could not reach Chat (ECONNREFUSED)" }]);
    t.sender.send({ text: "one" }, "one");
    await settle();
    t.sender.stop();
    expect(t.scheduler.pending).toBe(0);
    expect(t.lines.filter((l) => l.msg === "alert not sent: serve is stopping")).toHaveLength(1);
  });
});
