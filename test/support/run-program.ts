import { EventEmitter } from "node:events";
import { PassThrough, Writable } from "node:stream";
import chalk from "chalk";
import { runProgram } from "../../src/cli/main.js";

/**
 * The CLI run in this process, as main() runs it but against in-memory streams: the command line
 * goes through createProgram, errors become exit codes through reportError, and the answer has
 * the shape of runCli's (cli-process.ts). No build is needed: the source is what runs.
 *
 * What a process would have to itself is set for the run and put back after it: the umask main()
 * sets, and chalk's colour level, which chalk works out once for the whole test process.
 * Signals, a terminal and `kill -9` need a real process (cli-process.ts).
 */
export interface ProgramRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Standard input, then its end; without it, standard input is empty (as `< /dev/null`). */
  input?: string | undefined;
  /** Where the run's SIGINT and SIGTERM come from; nothing is sent unless the caller emits. */
  signals?: EventEmitter;
}

export async function runInProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: RunOptions = {},
): Promise<ProgramRun> {
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  stdin.end(options.input ?? "");
  const stdout = collector();
  const stderr = collector();
  const umask = process.platform === "win32" ? undefined : process.umask(0o077);
  const level = chalk.level;
  chalk.level = colourLevel(env);
  try {
    const code = await runProgram(["node", "vast-gchat", ...args], {
      env,
      stdin,
      stdout: stdout.stream,
      stderr: stderr.stream,
      signals: options.signals ?? new EventEmitter(),
    });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    chalk.level = level;
    if (umask !== undefined) process.umask(umask);
  }
}

/** A stream that is not a terminal and keeps every write the moment it is made. */
function collector() {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      decodeStrings: false,
      write(chunk: Buffer | string, _encoding, callback) {
        chunks.push(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
        callback();
      },
    }),
    { isTTY: false as const },
  );
  return { stream, text: () => chunks.join("") };
}

/**
 * The level chalk would pick for a process whose stdout is not a terminal: none, unless
 * FORCE_COLOR asks (supports-color's rule; NO_COLOR changes nothing once it is off already).
 */
function colourLevel(env: NodeJS.ProcessEnv): 0 | 1 | 2 | 3 {
  const force = env.FORCE_COLOR;
  if (force === undefined || force === "0" || force === "false") return 0;
  if (force === "" || force === "true") return 1;
  const level = Math.min(Number.parseInt(force, 10), 3);
  return Number.isNaN(level) ? 0 : (level as 0 | 1 | 2 | 3);
}
