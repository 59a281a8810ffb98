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

/**
 * The one error type commands throw for the user to read: a plain sentence, what to do next, and
 * the exit code. main() prints it and exits; nothing else calls process.exit.
 */
export class CliError extends Error {
  override name = "CliError";
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.Failed;
  }
}

export function usageError(message: string, hint?: string): CliError {
  return new CliError(
    message,
    hint === undefined ? { exitCode: ExitCode.Usage } : { hint, exitCode: ExitCode.Usage },
  );
}
