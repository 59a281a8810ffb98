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

export interface ProgramContext {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  signals: NodeJS.EventEmitter;
  /** Receives each command's exit code. */
  setExitCode(code: number): void;
}
