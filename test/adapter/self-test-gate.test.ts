import { describe, expect, it } from "vitest";
import { type ClaimedEvent, SelfTestGate } from "../../src/adapter/self-test-gate.js";

function event(eventId: string, notifType = "webhook_test"): ClaimedEvent {
  return { eventId, notifType, payload: `{"event_id":"${eventId}"}`, receivedAt: 1 };
}

function makeGate() {
  const released: string[] = [];
  const gate = new SelfTestGate({ release: (e) => released.push(e.eventId) });
  return { gate, released };
}

const never = new Promise<void>(() => {});
const now = Promise.resolve();

describe("SelfTestGate", () => {
  it("claims nothing when no self-test runs", () => {
    const { gate } = makeGate();
    expect(gate.claim(event("a"))).toBe(false);
  });

  it("during the call claims webhook_test only; Vast.ai's answer names ours, the others are released", async () => {
    const { gate, released } = makeGate();
    const run = gate.begin();
    expect(gate.claim(event("low", "low_credit"))).toBe(false);
    expect(gate.claim(event("theirs"))).toBe(true);
    // The type named by key, as Vast.ai's catalogue also names it, is the same type.
    expect(gate.claim(event("keyed", "client:webhook_test"))).toBe(true);
    expect(gate.claim(event("ours"))).toBe(true);
    expect(await run.arrival("ours", never)).toBe(true);
    expect(released).toEqual(["theirs", "keyed"]);
    run.close();
    expect(released).toEqual(["theirs", "keyed"]);
    expect(gate.claim(event("later"))).toBe(false);
  });

  it("after the answer only the named event is claimed, until it comes or the wait ends", async () => {
    const { gate, released } = makeGate();
    const run = gate.begin();
    let deadline = () => {};
    const arrival = run.arrival("ours", new Promise<void>((resolve) => (deadline = resolve)));
    expect(gate.claim(event("someone-elses"))).toBe(false);
    expect(gate.claim(event("ours"))).toBe(true);
    expect(await arrival).toBe(true);
    deadline();
    run.close();
    expect(released).toEqual([]);
  });

  it("an event that never comes: false at the deadline", async () => {
    const { gate } = makeGate();
    const run = gate.begin();
    expect(await run.arrival("ours", now)).toBe(false);
    run.close();
    expect(gate.claim(event("ours"))).toBe(false);
  });

  it("with the {msg} answer, a webhook_test claimed during the run is taken as the self-test's", async () => {
    const { gate, released } = makeGate();
    const run = gate.begin();
    expect(gate.claim(event("x"))).toBe(true);
    expect(await run.arrival(undefined, never)).toBe(true);
    run.close();
    expect(released).toEqual([]);
  });

  it("a failed call releases what it claimed: nothing held back is lost", () => {
    const { gate, released } = makeGate();
    const run = gate.begin();
    gate.claim(event("a"));
    run.close();
    expect(released).toEqual(["a"]);
  });

  it("closing the run ends a wait at once", async () => {
    const { gate } = makeGate();
    const run = gate.begin();
    const arrival = run.arrival("ours", never);
    run.close();
    expect(await arrival).toBe(false);
  });
});
