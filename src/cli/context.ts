/**
 * What every command receives: the global options, and the process's streams, environment and
 * signals passed in (not read from `process`), so a command can run in a test with in-memory ones.
 * Its own module, so commands and the program that lists them do not import each other.
 */
export interface GlobalOptions {
  configDir?: string;
  json?: boolean;
  color?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** Where text goes, and whether it is a terminal (of how many columns). */
export type TextStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgramContext {
  env: NodeJS.ProcessEnv;
  /** Read whole (--api-key-stdin), or asked on when it is a terminal. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** A spinner and the help's width only on a terminal of known width. */
  stdout: TextStream;
  stderr: TextStream;
  signals: NodeJS.EventEmitter;
  /** Receives each command's exit code. */
  setExitCode(code: number): void;
}
