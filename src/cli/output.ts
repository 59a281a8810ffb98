import { Writable } from "node:stream";
import chalk from "chalk";
import type { Ora } from "ora";

/**
 * How commands talk to people: results on stdout, warnings and errors on stderr, one JSON document
 * with --json (and then nothing else on stdout), spinners only on a terminal.
 */
export interface Output {
  readonly json: boolean;
  /** A line of the human report (dropped with --json). */
  line(text?: string): void;
  /** A warning or notice, on stderr, shown with --json too. */
  warn(text: string): void;
  /** The --json document. */
  result(value: unknown): void;
  /**
   * Runs `work` under a spinner on a terminal; prints `done` (or the failure) when it ends. `done`
   * may also say that what came back is a failure ({ failed }), for a wait that ran out.
   */
  step<T>(
    text: string,
    work: () => Promise<T>,
    done?: (value: T) => string | { failed: string },
  ): Promise<T>;
}

export interface OutputStreams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
}

/** A terminal a spinner can draw on: a TTY with a known width (an unsized one would redraw forever). */
export function canSpin(stream: OutputStreams["stdout"]): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) > 0;
}

/** A spinner on `stream` when it can draw there, else undefined. ora loads only then. */
export async function startSpinner(
  stream: OutputStreams["stdout"],
  text: string,
): Promise<Ora | undefined> {
  if (!canSpin(stream)) return undefined;
  const { default: ora } = await import("ora");
  // hideCursor off: hiding it installs ora's exit handler, which long-running serve must not have.
  return ora({ text, stream, hideCursor: false }).start();
}

/**
 * `out`, wrapped so that each write first clears the spinner of the moment and draws it again
 * after: log lines written while a spinner runs land on lines of their own.
 */
export function besideSpinner(
  out: NodeJS.WritableStream,
  current: () => Ora | undefined,
): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const spinner = current();
      spinner?.clear();
      out.write(chunk);
      spinner?.render();
      callback();
    },
  });
}

export function createOutput(
  streams: OutputStreams,
  options: { json?: boolean | undefined },
): Output {
  const json = Boolean(options.json);
  const interactive = canSpin(streams.stdout) && !json;
  const write = (text: string) => {
    if (!json) streams.stdout.write(`${text}\n`);
  };
  return {
    json,
    line: (text = "") => write(text),
    warn: (text) => streams.stderr.write(`${chalk.yellow(text)}\n`),
    result: (value) => {
      if (json) streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    async step(text, work, done) {
      const spinner = interactive ? await startSpinner(streams.stdout, text) : undefined;
      try {
        const value = await work();
        const outcome = done?.(value) ?? text;
        if (typeof outcome === "string") {
          if (spinner) spinner.succeed(outcome);
          else write(`${chalk.green("✓")} ${outcome}`);
        } else if (spinner) spinner.fail(outcome.failed);
        else write(`${chalk.red("✗")} ${outcome.failed}`);
        return value;
      } catch (error) {
        spinner?.fail(text);
        throw error;
      }
    },
  };
}
