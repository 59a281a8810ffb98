import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, bench, describe } from "vitest";
import type { AcceptInput, EventStore } from "../../src/delivery/event-store.js";
import { openEventStore } from "../../src/delivery/open-store.js";
import { sampleEvent } from "../../src/vast/sample-events.js";

/**
 * What keeping an event costs before the receiver may answer 200 (`npx vitest bench`): the
 * store's accept on a file in the temporary directory, opened as serve opens it (background
 * checkpoints). Timings depend on the disk under TMPDIR; the end-to-end figures are bench/'s.
 */
const payload = JSON.stringify(sampleEvent("instance_stopped"));
let dir: string;
let normal: EventStore;
let full: EventStore;
let seq = 0;

function event(eventId: string): AcceptInput {
  return {
    eventId,
    notifType: "client:instance_stopped",
    payload,
    receivedAt: Date.now(),
    routes: ["default"],
  };
}

async function expectKept(store: EventStore, input: AcceptInput, duplicate: boolean) {
  if ((await store.accept(input)).duplicate !== duplicate) throw new Error("unexpected answer");
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-bench-store-"));
  normal = await openEventStore(join(dir, "normal.db"), { background: true });
  full = await openEventStore(join(dir, "full.db"), { background: true, durability: "full" });
  await normal.accept(event("ev-kept"));
});

afterAll(async () => {
  await normal.close();
  await full.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("EventStore.accept", () => {
  bench("a new event, durability normal (committed to the WAL)", () =>
    expectKept(normal, event(`ev-${seq++}`), false),
  );
  bench("a new event, durability full (a disk flush per commit)", () =>
    expectKept(full, event(`ev-${seq++}`), false),
  );
  bench("an event already kept (the dedupe answer)", () =>
    expectKept(normal, event("ev-kept"), true),
  );
});
