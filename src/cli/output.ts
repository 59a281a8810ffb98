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

export function createOutput(
  streams: OutputStreams,
  options: { json?: boolean | undefined },
): Output {
  const json = Boolean(options.json);
  // A terminal of zero columns (a pseudo-terminal nobody sized) would make a spinner redraw forever.
  const interactive = Boolean(streams.stdout.isTTY) && (streams.stdout.columns ?? 0) > 0 && !json;
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
      let spinner: Ora | undefined;
      if (interactive) {
        const { default: ora } = await import("ora");
        spinner = ora({ text, stream: streams.stdout }).start();
      }
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
