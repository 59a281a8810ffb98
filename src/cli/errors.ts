import { type ErrorKind, UserError } from "../user-error.js";

/** Exit codes of SPEC.md. */
export const ExitCode = {
  Ok: 0,
  /** The work failed: API refused, network, not delivered, timed out. */
  Failed: 1,
  /** Usage or missing configuration: the message says which flag or command fixes it. */
  Usage: 2,
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const EXIT_CODE_OF: Record<ErrorKind, ExitCode> = {
  usage: ExitCode.Usage,
  failure: ExitCode.Failed,
  interrupted: ExitCode.Interrupted,
};

/** The one mapping from a kind of trouble to an exit code; nothing below the CLI knows them. */
export function exitCodeOf(error: UserError): ExitCode {
  return EXIT_CODE_OF[error.kind];
}

/**
 * A user-facing error thrown by a command, which says its exit code directly. main() prints it and
 * exits; nothing else calls process.exit.
 */
export class CliError extends UserError {
  override name = "CliError";

  constructor(
    message: string,
    options: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {},
  ) {
    const exitCode = options.exitCode ?? ExitCode.Failed;
    const kind = (Object.keys(EXIT_CODE_OF) as ErrorKind[]).find(
      (candidate) => EXIT_CODE_OF[candidate] === exitCode,
    );
    super(message, { kind: kind ?? "failure", hint: options.hint, cause: options.cause });
  }
}

export function usageError(message: string, hint?: string): UserError {
  return new UserError(message, { kind: "usage", hint });
}
