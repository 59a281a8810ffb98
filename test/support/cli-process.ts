import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

/** The built CLI, run as a user runs it: a real child process. `npm test` builds first. */
export const BIN = fileURLToPath(new URL("../../bin/vast-gchat.js", import.meta.url));

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process of the tests or the bench (the CLI, the tutorial's adapter, a bare server). */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first JSON line of its output for which `predicate` holds. */
  waitForLog(
    predicate: (record: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<ChildExit>;
  /**
   * SIGTERM, then its exit; SIGKILL after `forceAfterMs` (or the spawn's `forceKillAfterMs`) if
   * it has not exited by then.
   */
  stop(forceAfterMs?: number): Promise<ChildExit>;
}

export interface SpawnOptions {
  /** Standard input, then its end; without it, standard input is /dev/null. */
  input?: string | undefined;
  /**
   * Both output streams appended to this file, which the child writes itself, instead of pipes:
   * a pipe this process failed to drain would stall the child (Node writes to pipes
   * synchronously), and reading it costs CPU a load generator shares with the process it loads.
   * stdout() and stderr() then both read the file.
   */
  logFile?: string;
  cwd?: string;
  forceKillAfterMs?: number;
  /** In a process group of its own, so a kill of the group reaches what it started. */
  detached?: boolean;
}

/** Only what the CLI needs: no inherited secrets, no colour. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    NO_COLOR: "1",
    ...extra,
  };
}

/** `command args` with exactly `env`; killed if this process exits first (execa's cleanup). */
export function spawnProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: SpawnOptions = {},
): CliProcess {
  const { logFile } = options;
  const fd = logFile === undefined ? undefined : openSync(logFile, "a");
  const child = execa(command, args, {
    env,
    extendEnv: false,
    cwd: options.cwd ?? process.cwd(),
    stdin: options.input === undefined ? "ignore" : "pipe",
    // A file descriptor goes to the child as it is (execa's types name only 3 to 9).
    stdout: (fd ?? "pipe") as "pipe",
    stderr: (fd ?? "pipe") as "pipe",
    buffer: false,
    reject: false,
    forceKillAfterDelay: options.forceKillAfterMs ?? false,
    detached: options.detached ?? false,
  });
  if (fd !== undefined) closeSync(fd); // the child has its own copy
  child.stdin?.end(options.input);
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
    for (const listener of listeners) listener();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString("utf8");
  });
  const exited = child.then(
    (result): ChildExit => ({
      code: result.exitCode ?? null,
      signal: (result.signal as NodeJS.Signals | undefined) ?? null,
    }),
  );
  // The file was made before the spawn.
  const stdout = () => (logFile === undefined ? out : readFileSync(logFile, "utf8"));
  const stderr = () => (logFile === undefined ? err : readFileSync(logFile, "utf8"));

  function findLog(predicate: (record: Record<string, unknown>) => boolean) {
    for (const line of stdout().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (predicate(record)) return record;
      } catch {
        // A line still being written; the next check sees it whole.
      }
    }
    return undefined;
  }

  return {
    child,
    stdout,
    stderr,
    exited,
    async stop(forceAfterMs) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill("SIGTERM");
      // A backstop for a test's clean-up: a child that ignores SIGTERM must not outlive the test.
      const forced =
        forceAfterMs === undefined
          ? undefined
          : setTimeout(() => child.kill("SIGKILL"), forceAfterMs);
      try {
        return await exited;
      } finally {
        clearTimeout(forced);
      }
    },
    waitForLog(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        let settled = false;
        const settle = (then: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearInterval(poll);
          listeners.delete(check);
          then();
        };
        const check = () => {
          const found = findLog(predicate);
          if (found) settle(() => resolve(found));
        };
        const fail = (why: string) =>
          settle(() => reject(new Error(`${why}; stdout:\n${stdout()}\nstderr:\n${stderr()}`)));
        const timer = setTimeout(() => fail(`no matching log line in ${timeoutMs} ms`), timeoutMs);
        // Output to a file gives no event: look every 50 ms.
        const poll = logFile === undefined ? undefined : setInterval(check, 50);
        listeners.add(check);
        // Once it has exited and all its output is read: a last look.
        void exited.then(() => {
          check();
          fail("the process exited before the log line");
        });
        check();
      });
    },
  };
}

/** `node bin/vast-gchat.js args`, its output in pipes. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, input?: string): CliProcess {
  return spawnProcess(process.execPath, [BIN, ...args], env, { input });
}

/** Runs the CLI to completion. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string) {
  const cli = spawnCli(args, env, input);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}
