import { describe, expect, it } from "vitest";
import { handleRequest, type ReceiverDeps } from "../../src/adapter/handler.js";
import type { ClaimedEvent } from "../../src/adapter/self-test-gate.js";
import type { AcceptInput } from "../../src/delivery/event-store.js";
import { signPayload } from "../../src/vast/signature.js";

/**
 * The receiver's side of the self-test (self-test-gate.ts): the gate is asked only about a
 * delivery whose signature and body passed, and what it claims is answered 200 without reaching
 * the store, so the worker never posts it.
 */
const SECRET = "whsec-self-test-0123456789";
const NOW = 1_750_000_000;
const BODY = JSON.stringify({ event_id: "test-1", notif_type: "webhook_test", message: "hi" });

function post(body: string, secret = SECRET) {
  const timestamp = String(NOW);
  return {
    method: "POST",
    path: "/",
    headers: {
      "x-vast-timestamp": timestamp,
      "x-vast-signature-256": signPayload(secret, timestamp, Buffer.from(body)),
    },
    body: Buffer.from(body),
  };
}

function deps(claim: (event: ClaimedEvent) => boolean) {
  const accepted: AcceptInput[] = [];
  const asked: ClaimedEvent[] = [];
  const receiver: ReceiverDeps = {
    path: "/",
    secrets: () => [SECRET],
    now: () => NOW * 1000,
    store: {
      accept: async (input) => {
        accepted.push(input);
        return { duplicate: false };
      },
    },
    claimSelfTest: (event) => {
      asked.push(event);
      return claim(event);
    },
  };
  return { receiver, accepted, asked };
}

describe("the self-test's event at the receiver", () => {
  it("claimed: 200 as for any event, but not kept", async () => {
    const t = deps(() => true);
    const response = await handleRequest(post(BODY), t.receiver);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ ok: true, event_id: "test-1", duplicate: false });
    expect(response.outcome).toEqual({ kind: "self_test", eventId: "test-1" });
    expect(t.accepted).toEqual([]);
    expect(t.asked).toEqual([
      { eventId: "test-1", notifType: "webhook_test", payload: BODY, receivedAt: NOW * 1000 },
    ]);
  });

  it("not claimed: kept as usual", async () => {
    const t = deps(() => false);
    const response = await handleRequest(post(BODY), t.receiver);
    expect(response.outcome).toMatchObject({ kind: "accepted", eventId: "test-1" });
    expect(t.accepted).toHaveLength(1);
  });

  it("a forged one never gets as far as the gate", async () => {
    const t = deps(() => true);
    const response = await handleRequest(post(BODY, "whsec-someone-else"), t.receiver);
    expect(response.status).toBe(401);
    expect(t.asked).toEqual([]);
  });
});
