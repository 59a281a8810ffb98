import { EventEmitter } from "node:events";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import type { AdapterEvents } from "../../src/adapter/events.js";
import { Narrator } from "../../src/cli/demo/narrator.js";
import type { ServeEvents } from "../../src/cli/serve-events.js";
import type { StoredDelivery } from "../../src/delivery/event-store.js";

/**
 * The demo's commentary from serve's typed events, in-process: no serve, no log. The demo's own
 * test (demo.test.ts) runs the real chain; this one pins what each event reads as.
 */
function stored(eventId: string, notifType: string | null): StoredDelivery {
  return {
    route: "default",
    seq: 1,
    eventId,
    notifType,
    payload: "{}",
    state: "pending",
    attempts: 0,
    receivedAt: 0,
    queuedAt: 0,
    nextAttemptAt: 0,
    lastError: null,
    deliveredAt: null,
  };
}

function followed() {
  const lines: string[] = [];
  const narrator = new Narrator((line) => lines.push(line));
  const serve = new EventEmitter<ServeEvents>();
  const adapter = new EventEmitter<AdapterEvents>();
  narrator.follow(serve);
  serve.emit("adapterStarted", adapter);
  return { lines, narrator, serve, adapter };
}

describe("the demo's narrator", () => {
  it("tells serve's start and each event's fate, and keeps the tallies", () => {
    const { lines, narrator, serve, adapter } = followed();
    serve.emit("tunnelOpen", "http://127.0.0.1:4000");
    serve.emit("webhookPointed", 1, "http://127.0.0.1:4000/");
    serve.emit("ready", { url: "http://127.0.0.1:3000/", publicUrl: "http://127.0.0.1:4000/" });
    adapter.emit("accepted", "ev-1", false, "low_credit", ["default"]);
    adapter.emit("accepted", "ev-1", true, "low_credit", ["default"]);
    adapter.emit("delivered", stored("ev-1", "low_credit"), 13);
    adapter.emit("retrying", stored("ev-2", null), "Chat answered 503", 1000);
    adapter.emit("dead", stored("ev-3", "outbid"), "Chat refused it: 400");
    adapter.emit("rejected", "invalid_signature", 401, "mismatch");

    expect(lines.map(stripVTControlCharacters)).toEqual([
      "tunnel      loopback stand-in open at http://127.0.0.1:4000",
      "webhook     1 now delivers to http://127.0.0.1:4000/",
      "serve       ready: http://127.0.0.1:4000/",
      "received    low_credit             signature ok, kept on disk, answered 200",
      "duplicate   low_credit             already kept: answered 200 duplicate, not posted again",
      "  delivered low_credit             in 13 ms",
      "  retrying  (no type)              Chat answered 503",
      "  dead  outbid                 Chat refused it: 400",
      "rejected    401 invalid_signature (mismatch)",
    ]);
    expect([...narrator.tally.delivered]).toEqual(["ev-1"]);
    expect(narrator.tally.rejected).toBe(1);
  });

  it("shows an event type's control characters as escapes: the type comes from the network", () => {
    const { lines, adapter } = followed();
    adapter.emit("accepted", "ev-1", false, "x\u001b[2J\ny", ["default"]);
    // Whatever colour chalk adds, the type's own escape sequence and newline are not among it.
    expect(lines[0]).not.toContain("\u001b[2J");
    expect(lines[0]).not.toContain("\n");
    expect(stripVTControlCharacters(lines[0] ?? "")).toMatch(/^received {4}x.*\\n.*y/);
  });

  it("wakes a waiter when the event it waits for is told", async () => {
    const { narrator, adapter } = followed();
    const delivered = narrator.until(() => narrator.tally.delivered.has("ev-9"), 5000, "ev-9");
    adapter.emit("delivered", stored("ev-9", "outbid"), 5);
    await expect(delivered).resolves.toBeUndefined();
  });
});
