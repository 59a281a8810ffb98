import { UserError } from "../user-error.js";
import { CommanderError } from "./commander.js";
import type { ProgramContext } from "./context.js";
import { ExitCode, exitCodeOf } from "./errors.js";
import { printable } from "./printable.js";
import { createProgram } from "./program.js";

/** The process's command line, run with the process's streams; bin/ exits with the answer. */
export async function main(argv: string[] = process.argv): Promise<number> {
  // Everything the tool creates is the user's alone, whoever creates it: SQLite makes the event
  // store and its WAL with the umask's mode (0644 under the usual 022), and so would any file a
  // dependency writes. The private files are 0600 regardless (private-file.ts).
  if (process.platform !== "win32") process.umask(0o077);
  return runProgram(argv, {
    env: process.env,
    // Read when a command first uses it: Node builds process.stdin then (a stream over the pipe,
    // file or terminal: some 3 ms of every start), and most commands never read it.
    get stdin() {
      return process.stdin;
    },
    stdout: process.stdout,
    stderr: process.stderr,
    signals: process,
  });
}

/**
 * Runs one command line against the given streams, environment and signals, and answers its exit
 * code: main() passes the process's, the tests in-memory ones. Together with reportError, the one
 * place that turns errors into exit codes: a UserError prints its sentence and hint, a usage error
 * from commander exits 2, anything unexpected prints one line (the stack only with
 * DEBUG=vast-gchat).
 */
export async function runProgram(
  argv: string[],
  context: Omit<ProgramContext, "setExitCode">,
): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  // Not a spread, which would read main()'s stdin getter now.
  const program = createProgram({
    env: context.env,
    get stdin() {
      return context.stdin;
    },
    stdout: context.stdout,
    stderr: context.stderr,
    signals: context.signals,
    setExitCode: (code) => {
      exitCode = code;
    },
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    return reportError(error, context.stderr, context.env);
  }
}

export function reportError(
  error: unknown,
  stderr: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv,
): number {
  if (error instanceof CommanderError) {
    // commander has already printed its message; help and version are not errors.
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
    if (error.code === "commander.help") return 0;
    return ExitCode.Usage;
  }
  if (error instanceof UserError) {
    // Put into words where it happened (a command, the Vast.ai client, a tunnel, a config file).
    // It may quote outside text (Vast.ai's answer, a webhook's name, Chat's error): printable.
    stderr.write(`Error: ${printable(error.message)}\n`);
    if (error.hint) stderr.write(`${printable(error.hint)}\n`);
    if (env.DEBUG?.includes("vast-gchat") && error.cause)
      stderr.write(`${String((error.cause as Error).stack)}\n`);
    return exitCodeOf(error);
  }
  const message = printable(error instanceof Error ? error.message : String(error));
  stderr.write(`Error: ${message}\n`);
  stderr.write(
    env.DEBUG?.includes("vast-gchat")
      ? `${(error as Error).stack ?? ""}\n`
      : "This is a bug in vast-gchat; run again with DEBUG=vast-gchat for details.\n",
  );
  return ExitCode.Failed;
}
