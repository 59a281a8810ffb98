import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type CheckpointResult,
  startCheckpointer,
} from "../../../src/delivery/sqlite/checkpointer.js";
import { openSqliteStore } from "../../../src/delivery/sqlite/sqlite-store.js";
import { SQLITE_DRIVERS_HERE } from "./drivers.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-checkpoint-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(SQLITE_DRIVERS_HERE)("the checkpointer thread on %s", (driver) => {
  it("checkpoints the WAL from another thread while the main connection never does", async () => {
    const path = join(dir, "events.db");
    // The main connection never checkpoints; the one this test starts does.
    const store = await openSqliteStore(path, { driver, checkpoints: "external" });
    const receivedAt = Date.now();
    for (let i = 0; i < 3000; i++) {
      await store.accept({
        eventId: `e${i}`,
        notifType: "low_credit",
        payload: `{"i":${i}}`,
        receivedAt,
        routes: ["default"],
      });
    }
    // Without a checkpoint everything is still in the WAL, past SQLite's usual 1,000-page threshold.
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(1000 * 4096);
    const databaseBefore = statSync(path).size;

    let checkpointer: ReturnType<typeof startCheckpointer> | undefined;
    const result = await new Promise<CheckpointResult>((resolve) => {
      checkpointer = startCheckpointer(path, {
        driver,
        intervalMs: 10,
        onCheckpoint: (r) => {
          if (r.log > 0 && r.checkpointed === r.log) resolve(r);
        },
      });
    });
    await checkpointer?.stop();
    expect(result.busy).toBe(0);
    expect(statSync(path).size).toBeGreaterThan(databaseBefore);
    expect((await store.stats()).pending).toBe(3000);
    await store.close();
  });

  it("reports a thread that cannot work, and still stops", async () => {
    let checkpointer: ReturnType<typeof startCheckpointer> | undefined;
    const failure = await new Promise<Error>((resolve) => {
      checkpointer = startCheckpointer(join(dir, "missing", "nested", "events.db"), {
        driver,
        onFailure: resolve,
      });
    });
    expect(failure.message).toMatch(/directory does not exist|unable to open/);
    await checkpointer?.stop();
  });

  it("with `background`, the store runs its own checkpointer and stops it on close", async () => {
    const path = join(dir, "events.db");
    const results: CheckpointResult[] = [];
    const store = await openSqliteStore(path, {
      driver,
      background: true,
      checkpointer: { intervalMs: 10, onCheckpoint: (result) => results.push(result) },
    });
    await store.accept({
      eventId: "a",
      notifType: "low_credit",
      payload: "{}",
      receivedAt: 1,
      routes: ["default"],
    });
    await vi.waitFor(() =>
      expect(results.some((r) => r.log > 0 && r.checkpointed === r.log)).toBe(true),
    );
    await store.close();
  });
});
