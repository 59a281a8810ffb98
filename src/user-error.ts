/**
 * The one error type whose message is a sentence for the user, thrown by any layer: the Vast.ai
 * client, the tunnels, the config files, the Chat URL parser, the commands. It says what went wrong
 * (`message`), what to do (`hint`) and what kind of trouble it is; only the CLI turns the kind into
 * an exit code (src/cli/errors.ts), so no layer below it knows about exit codes.
 */
export type ErrorKind =
  /** The user must change something: a flag, a setting, a file, a missing program or token. */
  | "usage"
  /** The work itself failed: a service refused or did not answer, nothing was delivered. */
  | "failure"
  /** The user interrupted it (Ctrl+C). */
  | "interrupted";

export interface UserErrorOptions {
  kind?: ErrorKind;
  hint?: string | undefined;
  cause?: unknown;
}

export class UserError extends Error {
  override name = "UserError";
  readonly kind: ErrorKind;
  readonly hint: string | undefined;

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.kind = options.kind ?? "failure";
    this.hint = options.hint;
  }
}
