import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CheckpointResult, startCheckpointer } from "../../src/delivery/checkpointer.js";
import { EventStore } from "../../src/delivery/store.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-checkpoint-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("checkpoints the WAL from another thread while the main connection never does", async () => {
  const path = join(dir, "events.db");
  const store = EventStore.open(path, { backgroundCheckpoints: true });
  const receivedAt = Date.now();
  for (let i = 0; i < 3000; i++) {
    store.accept({ eventId: `e${i}`, notifType: "low_credit", payload: `{"i":${i}}`, receivedAt });
  }
  // Without a checkpoint everything is still in the WAL, past SQLite's usual 1,000-page threshold.
  expect(statSync(`${path}-wal`).size).toBeGreaterThan(1000 * 4096);
  const databaseBefore = statSync(path).size;

  let checkpointer: ReturnType<typeof startCheckpointer> | undefined;
  const result = await new Promise<CheckpointResult>((resolve) => {
    checkpointer = startCheckpointer(path, {
      intervalMs: 10,
      onCheckpoint: (r) => {
        if (r.log > 0 && r.checkpointed === r.log) resolve(r);
      },
    });
  });
  await checkpointer?.stop();
  expect(result.busy).toBe(0);
  expect(statSync(path).size).toBeGreaterThan(databaseBefore);
  expect(store.stats().pending).toBe(3000);
  store.close();
});

it("reports a thread that cannot work, and still stops", async () => {
  let checkpointer: ReturnType<typeof startCheckpointer> | undefined;
  const failure = await new Promise<Error>((resolve) => {
    checkpointer = startCheckpointer(join(dir, "missing", "nested", "events.db"), {
      onFailure: resolve,
    });
  });
  expect(failure.message).toMatch(/directory does not exist|unable to open/);
  await checkpointer?.stop();
});
