import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { REQUIRE_NODE_SQLITE_SOURCE, type SqliteDriverName } from "./sqlite-driver.js";

/**
 * Moves SQLite's WAL checkpoints off the main thread. Left to itself, SQLite checkpoints inside
 * the commit that crosses its threshold (every ~1,000 pages), and that commit's request then waits
 * for several fsyncs: measured, the slowest 1% of acknowledgements. Here the main connection never
 * checkpoints (`wal_autocheckpoint=0`) and a second connection in a worker thread does, PASSIVE,
 * on a timer: it never blocks writers, and a crash at any point leaves a valid WAL to recover.
 * The thread opens the file with the store's driver (node:sqlite or better-sqlite3).
 */
export interface Checkpointer {
  stop(): Promise<void>;
}

// The worker is plain CommonJS code, so it runs the same from dist/ and from TypeScript sources.
// Both drivers take a statement's rows alike; the busy timeout is a pragma on either.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const db = workerData.driver === "node:sqlite"
  ? new (${REQUIRE_NODE_SQLITE_SOURCE}).DatabaseSync(workerData.path)
  : new (require(workerData.driver))(workerData.path);
db.exec("PRAGMA busy_timeout = 1000");
const checkpoint = (mode) => {
  try {
    const { busy, log, checkpointed } = db.prepare("PRAGMA wal_checkpoint(" + mode + ")").get();
    parentPort.postMessage({ busy, log, checkpointed });
  } catch { /* busy: the next tick retries */ }
};
const timer = setInterval(() => checkpoint("PASSIVE"), workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  checkpoint("PASSIVE");
  db.close();
  parentPort.close();
});
`;

/** SQLite's answer to `PRAGMA wal_checkpoint`: WAL frames in all, and how many are in the database. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

export interface CheckpointerOptions {
  /** The store's driver: the thread opens the file with the same one. */
  driver: SqliteDriverName;
  intervalMs?: number;
  onCheckpoint?: (result: CheckpointResult) => void;
  /** The thread died (it should not): the caller must checkpoint some other way. */
  onFailure?: (error: Error) => void;
}

export function startCheckpointer(path: string, options: CheckpointerOptions): Checkpointer {
  // better-sqlite3 by its file (the thread's require has no node_modules to start from).
  const driver =
    options.driver === "node:sqlite"
      ? "node:sqlite"
      : createRequire(import.meta.url).resolve("better-sqlite3");
  const intervalMs = options.intervalMs ?? 1000;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, driver, intervalMs },
  });
  let stopping: Promise<void> | undefined;
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.on("message", (result: CheckpointResult) => options.onCheckpoint?.(result));
  worker.on("error", (error) => {
    if (!stopping) options.onFailure?.(error);
  });
  worker.unref();
  return {
    stop() {
      stopping ??= (async () => {
        // Keep the process alive until the last checkpoint is done (a dead thread exits at once).
        worker.ref();
        worker.postMessage("stop");
        await exited;
      })();
      return stopping;
    },
  };
}
