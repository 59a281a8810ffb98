import { EventEmitter } from "node:events";
import { PassThrough, Writable } from "node:stream";
import { runProgram } from "../../src/cli/main.js";

/**
 * `serve` run in this process through the real command line (createProgram, as run-program.ts
 * runs commands), for tests that follow it while it runs: its JSON log lines as they are written,
 * and a SIGTERM through its signals emitter to stop it. A test that needs a process of its own
 * (signals, kill -9) uses cli-process.ts instead.
 */
export interface ServeInProcess {
  /** The "ready" line. */
  ready: Record<string, unknown>;
  /** Every JSON log line so far. */
  records(): Record<string, unknown>[];
  /** Resolves with the first log line, since the start, for which `predicate` holds. */
  waitForLog(
    predicate: (record: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM, then serve's exit code. */
  stop(): Promise<number>;
}

export async function startServeInProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<ServeInProcess> {
  const lines: Record<string, unknown>[] = [];
  let partial = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  const stdout = Object.assign(
    new Writable({
      decodeStrings: false,
      write(chunk: Buffer | string, _encoding, callback) {
        partial += typeof chunk === "string" ? chunk : chunk.toString("utf8");
        const complete = partial.split("\n");
        partial = complete.pop() ?? "";
        for (const line of complete) {
          if (line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        for (const waiter of [...waiters]) waiter();
        callback();
      },
    }),
    { isTTY: false as const },
  );
  const errors = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stderr += chunk.toString("utf8");
      callback();
    },
  });
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end();
  const signals = new EventEmitter();
  // As main() does for the process (run-program.ts puts it back after each command).
  const umask = process.platform === "win32" ? undefined : process.umask(0o077);
  let ended = false;
  const exited = runProgram(["node", "vast-gchat", "serve", ...args], {
    env,
    stdin,
    stdout,
    stderr: errors,
    signals,
  }).finally(() => {
    ended = true;
    if (umask !== undefined) process.umask(umask);
    for (const waiter of [...waiters]) waiter();
  });

  const waitForLog = (
    predicate: (record: Record<string, unknown>) => boolean,
    timeoutMs = 15_000,
  ): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (ended) {
          done();
          reject(new Error(`serve ended before the log line; stderr:\n${stderr}\n${dump()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching log line in ${timeoutMs} ms; stderr:\n${stderr}\n${dump()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const dump = () => lines.map((line) => JSON.stringify(line)).join("\n");

  const ready = await waitForLog((record) => record.msg === "ready");
  return {
    ready,
    records: () => [...lines],
    waitForLog,
    async stop() {
      if (!ended) signals.emit("SIGTERM");
      return exited;
    },
  };
}
