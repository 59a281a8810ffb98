import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningAdapter } from "../../src/adapter/adapter.js";
import type { MessageFormat } from "../../src/chat/render.js";
import { type AdapterFixture, SECRET, startAdapterFixture } from "../support/adapter-fixture.js";
import { hostileEvent } from "../support/hostile-events.js";
import { postSigned } from "../support/sign.js";

/**
 * End to end, with a fake Chat that refuses what Google refuses (unknown fields, lone surrogates,
 * text over 4,096 characters, bodies over 32,000 bytes): no hostile event that Chat could take as a
 * plain message ends in the dead letters, alone or in a digest, in either format.
 */
let fx: AdapterFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** The issue's own cases, then a fixed sample of generated ones. */
const HAND_PICKED: Array<Record<string, unknown>> = [
  { notif_type: "\ud800bad\u0007type", subject: "lone surrogate in the type" },
  { notif_type: "t".repeat(40_000), subject: "a huge type name" },
  { notif_type: "t".repeat(40_000), subject: "a huge type name, again" },
  { notif_type: "<users/all>", subject: "a type that mentions" },
  { subject: `${"😀".repeat(99)}x😀`, notif_type: `${"a".repeat(99)}😀😀` },
  { subject: "Instance \u202Edeppots\u202C 42", message: "[click](https://evil.example) # **x**" },
];

/**
 * Watches the adapter from before the first post: `settled(ids)` resolves once every id is
 * delivered, and rejects as soon as any event goes to the dead letters.
 */
function watchDeliveries(adapter: RunningAdapter) {
  const delivered = new Set<string>();
  let deadReason: string | undefined;
  let wake = () => {};
  adapter.events.on("delivered", (event) => {
    delivered.add(event.eventId);
    wake();
  });
  adapter.events.on("dead", (event, reason) => {
    deadReason = `${event.eventId.slice(0, 40)}: ${reason}`;
    wake();
  });
  return async (ids: Set<string>): Promise<void> => {
    while ([...ids].some((id) => !delivered.has(id))) {
      if (deadReason !== undefined) throw new Error(`dead letter: ${deadReason}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    if (deadReason !== undefined) throw new Error(`dead letter: ${deadReason}`);
  };
}

describe.each(["card", "text"] as MessageFormat[])("hostile events, %s format", (format) => {
  it("are all delivered: none ends in the dead letters, Chat refuses nothing", async () => {
    fx = await startAdapterFixture({ format });
    const settled = watchDeliveries(fx.adapter);
    const generated = fc.sample(hostileEvent, { numRuns: 30, seed: 20261130 });
    const ids = new Set<string>();
    for (const payload of [...HAND_PICKED, ...generated]) {
      const answer = await postSigned(fx.url, SECRET, payload);
      expect(answer.status).toBe(200);
      ids.add(String(answer.body.event_id));
    }
    await settled(ids);
    expect(fx.chat.refused).toEqual([]);
    expect(await fx.adapter.store.stats()).toMatchObject({ dead: 0 });
  });
});
