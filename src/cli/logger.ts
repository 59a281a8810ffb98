import type { Writable } from "node:stream";
import chalk from "chalk";
import pino, { type Logger } from "pino";
import { lineWriter } from "./line-writer.js";
import { printableLine } from "./printable.js";

/**
 * The adapter's log: JSON lines (pino) when stdout is not a terminal, for log collectors; one
 * readable line per event on a terminal. Secrets never reach it: callers log event ids, types and
 * the Chat space label, and pino's redaction is a second guard for fields that must never appear.
 */
export type { Logger };

const REDACT = ["secret", "secrets", "chatUrl", "url.search", "apiKey", "authorization", "token"];

const LEVEL_LOOK: Record<string, (text: string) => string> = {
  warn: chalk.yellow,
  error: chalk.red,
};

const MESSAGE_LOOK: Record<string, (text: string) => string> = {
  received: chalk.cyan,
  duplicate: chalk.dim,
  delivered: chalk.green,
  rejected: chalk.yellow,
  retrying: chalk.yellow,
  dead: chalk.red,
  ready: chalk.bold.green,
};

/**
 * Renders one pino record as `12:00:01 delivered  type=low_credit event_id=7e9a… latency_ms=120`.
 * Values can come from a signed event (its type, its id): printed one line each, with no control
 * character, so none can forge a log line or steer the terminal.
 */
export function formatRecord(record: Record<string, unknown>): string {
  const { time, level, msg, ...fields } = record;
  const clock = new Date(typeof time === "number" ? time : Date.now()).toTimeString().slice(0, 8);
  const message = printableLine(String(msg ?? ""));
  const look = MESSAGE_LOOK[message] ?? LEVEL_LOOK[String(level)] ?? ((text: string) => text);
  const details = Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      return `${printableLine(key)}=${printableLine(text)}`;
    })
    .join(" ");
  return `${chalk.dim(clock)} ${look(message.padEnd(10))} ${details}`.trimEnd();
}

function prettyDestination(out: NodeJS.WritableStream): Writable {
  return lineWriter((line) =>
    out.write(`${formatRecord(JSON.parse(line) as Record<string, unknown>)}\n`),
  );
}

export interface LoggerOptions {
  pretty: boolean;
  level?: "debug" | "info" | "warn" | "error";
  out?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const out = options.out ?? process.stdout;
  return pino(
    {
      level: options.level ?? "info",
      base: null,
      redact: { paths: REDACT, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: options.pretty ? pino.stdTimeFunctions.epochTime : pino.stdTimeFunctions.isoTime,
    },
    options.pretty ? prettyDestination(out) : (out as pino.DestinationStream),
  );
}
