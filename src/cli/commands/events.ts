import chalk from "chalk";
import { resolveConfigDir } from "../../config/paths.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import type { Attempt, EventState, StoredEvent } from "../../delivery/event-store.js";
import { eventStoreExists } from "../../delivery/open-store.js";
import { parseEvent, type VastEvent } from "../../vast/event.js";
import type { GlobalOptions } from "../context.js";
import { CliError, ExitCode } from "../errors.js";
import { createOutput, type Output, type OutputStreams } from "../output.js";
import { printable, printableLine } from "../printable.js";
import { resolveStoreLocation, type StoreFlag, withStore } from "../store-access.js";

/**
 * `events`: what the store holds and how delivery went, straight from the store, so it works
 * whether `serve` runs or not. Each action is one short statement (the store's busy timeout covers
 * a moment of contention with a running adapter); a running adapter's worker picks requeued events
 * up from the store by itself.
 */
export interface EventsContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

export interface EventsOptions extends GlobalOptions, StoreFlag {
  state?: EventState;
  /** Checked where commander parses it. */
  limit?: number;
}

export const EVENTS_ACTIONS = ["list", "show", "replay", "retry-dead"] as const;
export type EventsAction = (typeof EVENTS_ACTIONS)[number];

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 10_000;
const SUBJECT_WIDTH = 60;
const ERROR_WIDTH = 60;
const LIST_HINT = "Run `vast-gchat events` to see the recent ones.";

/**
 * One of the `events` subcommands; commander has checked the arguments (an id for show and replay,
 * --state and --limit only for list).
 */
export async function events(
  verb: EventsAction,
  id: string | undefined,
  options: EventsOptions,
  context: EventsContext,
): Promise<number> {
  const out = createOutput(context, options);
  const configDir = resolveConfigDir(options.configDir, context.env);
  const path = resolveStoreLocation(options.store, context.env, configDir);
  // Listing must not create a store; the other actions have nothing to act on without one.
  const exists = eventStoreExists(path);

  switch (verb) {
    case "list": {
      const limit = Math.min(options.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
      if (!exists) {
        out.result({ events: [], counts: { pending: 0, delivered: 0, dead: 0 } });
        out.line("No events yet.");
        return ExitCode.Ok;
      }
      const { rows, counts } = await withStore(path, async (store) => ({
        rows: await store.list({ state: options.state, limit }),
        counts: await store.stats(),
      }));
      listEvents(out, rows, counts, options.state);
      return ExitCode.Ok;
    }
    case "show": {
      const eventId = id as string;
      if (!exists) throw unknownEvent(eventId, "No events have been received yet.");
      const found = await withStore(path, async (store) => {
        const event = await store.get(eventId);
        return event && { event, attempts: await store.attemptsOf(event.seq) };
      });
      if (!found) throw unknownEvent(eventId);
      showEvent(out, found.event, found.attempts);
      return ExitCode.Ok;
    }
    case "replay": {
      const eventId = id as string;
      if (!exists) throw noEventsYet();
      const before = await withStore(path, async (store) => {
        const event = await store.get(eventId);
        if (event && !(await store.replay(eventId, Date.now()))) return undefined;
        return event;
      });
      if (!before) throw unknownEvent(eventId);
      out.result({ event_id: eventId, previous_state: before.state, state: "pending" });
      out.line(`Queued event ${eventId} again (it was ${before.state}).`);
      out.line(deliveryNote(configDir));
      return ExitCode.Ok;
    }
    case "retry-dead": {
      if (!exists) throw noEventsYet();
      const requeued = await withStore(path, (store) => store.retryDead(Date.now()));
      out.result({ requeued });
      if (requeued === 0) {
        out.line("No dead letters to retry.");
      } else {
        out.line(`Queued ${requeued} dead ${requeued === 1 ? "letter" : "letters"} again.`);
        out.line(deliveryNote(configDir));
      }
      return ExitCode.Ok;
    }
  }
}

function unknownEvent(eventId: string, hint = LIST_HINT): CliError {
  return new CliError(`No event with id ${eventId}.`, { hint });
}

function noEventsYet(): CliError {
  return new CliError("No events yet.", {
    hint: "Nothing has been received in this config directory; `vast-gchat trigger TYPE` sends a sample.",
  });
}

function deliveryNote(configDir: string): string {
  return readRuntimeState(configDir)
    ? "The running adapter delivers it shortly."
    : "The adapter is not running here: `vast-gchat serve` delivers it when it starts.";
}

// ---------------------------------------------------------------------------------------------

/** The stored body read as the adapter reads a delivery (src/vast/event.ts), fields typed. */
function eventOf(stored: StoredEvent): VastEvent {
  const parsed = parseEvent(Buffer.from(stored.payload, "utf8"));
  return parsed.ok ? parsed.event : {};
}

function parsePayload(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** One line of printable text (nothing from an event may steer the terminal), at most `width`. */
function cut(text: string, width: number): string {
  const flat = printableLine(text.replace(/\s+/g, " ").trim());
  const points = Array.from(flat);
  return points.length <= width ? flat : `${points.slice(0, width - 1).join("")}…`;
}

/** The notification's subject, else the start of its message. */
function subjectOf(stored: StoredEvent): string {
  const { subject, message } = eventOf(stored);
  return subject?.trim() ? subject : (message ?? "");
}

function typeOf(stored: StoredEvent): string | null {
  return stored.notifType ?? eventOf(stored).notif_type ?? null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Local time, to the second: what a person compares with their clock. */
function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function relative(ms: number, now: number): string {
  const seconds = Math.round((ms - now) / 1000);
  if (seconds <= 0) return "now";
  if (seconds < 60) return `in ${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `in ${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  return `in ${hours}h ${minutes % 60}m`;
}

function eventJson(event: StoredEvent) {
  return {
    event_id: event.eventId,
    seq: event.seq,
    type: typeOf(event),
    subject: subjectOf(event),
    state: event.state,
    attempts: event.attempts,
    received_at: iso(event.receivedAt),
    next_attempt_at: event.state === "pending" ? iso(event.nextAttemptAt) : null,
    last_error: event.lastError,
    delivered_at: iso(event.deliveredAt),
  };
}

function attemptJson(attempt: Attempt) {
  return {
    at: iso(attempt.at),
    outcome: attempt.outcome,
    status: attempt.status,
    error: attempt.error,
    carried: attempt.carried,
  };
}

const STATE_COLOUR: Record<EventState, (text: string) => string> = {
  pending: chalk.yellow,
  delivered: chalk.green,
  dead: chalk.red,
};

function listEvents(
  out: Output,
  rows: StoredEvent[],
  counts: { pending: number; delivered: number; dead: number },
  state: EventState | undefined,
): void {
  const summary = { pending: counts.pending, delivered: counts.delivered, dead: counts.dead };
  out.result({ events: rows.map(eventJson), counts: summary });
  if (rows.length === 0) {
    out.line(state ? `No ${state} events.` : "No events yet.");
    return;
  }
  const now = Date.now();
  const header = ["ID", "RECEIVED", "TYPE", "SUBJECT", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR"];
  const table = rows.map((event) => [
    printableLine(event.eventId),
    localTime(event.receivedAt),
    printableLine(typeOf(event) ?? "-"),
    cut(subjectOf(event), SUBJECT_WIDTH) || "-",
    event.state,
    String(event.attempts),
    event.state === "pending" ? relative(event.nextAttemptAt, now) : "-",
    event.lastError ? cut(event.lastError, ERROR_WIDTH) : "-",
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...table.map((cells) => (cells[column] ?? "").length)),
  );
  const render = (cells: string[], style?: (text: string, column: number) => string) =>
    cells
      .map((cell, column) => {
        // The last column is not padded: no trailing blanks.
        const padded = column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0);
        return style ? style(padded, column) : padded;
      })
      .join("  ");
  out.line(chalk.bold(render(header)));
  for (const [index, cells] of table.entries()) {
    const rowState = rows[index]?.state ?? "pending";
    out.line(render(cells, (text, column) => (column === 4 ? STATE_COLOUR[rowState](text) : text)));
  }
  const total = state ? counts[state] : counts.pending + counts.delivered + counts.dead;
  const shown =
    rows.length < total
      ? `Newest ${rows.length} of ${total}${state ? ` ${state}` : ""} (--limit N for more). `
      : "";
  out.line(
    chalk.dim(
      `\n${shown}In the store: ${counts.pending} pending, ${counts.delivered} delivered, ${counts.dead} dead.`,
    ),
  );
  out.line(chalk.dim("`vast-gchat events show ID` shows one event with its payload and attempts."));
  if (counts.dead > 0 && state !== "pending" && state !== "delivered") {
    out.line(chalk.dim("`vast-gchat events retry-dead` queues the dead letters again."));
  }
}

function showEvent(out: Output, event: StoredEvent, attempts: Attempt[]): void {
  const parsed = parsePayload(event.payload);
  out.result({
    event: {
      ...eventJson(event),
      payload: parsed === undefined ? event.payload : parsed,
      attempts: attempts.map(attemptJson),
    },
  });
  const field = (name: string, value: string) => out.line(`${name.padEnd(14)}${value}`);
  field("Event", printableLine(event.eventId));
  field("Type", printableLine(typeOf(event) ?? "-"));
  field("Subject", subjectOf(event) ? cut(subjectOf(event), 200) : "-");
  field("State", STATE_COLOUR[event.state](event.state));
  field("Received", `${localTime(event.receivedAt)}  (${iso(event.receivedAt)})`);
  field("Attempts", String(event.attempts));
  if (event.state === "pending") {
    field(
      "Next attempt",
      `${localTime(event.nextAttemptAt)}  (${relative(event.nextAttemptAt, Date.now())})`,
    );
  }
  if (event.deliveredAt !== null) field("Delivered", localTime(event.deliveredAt));
  field("Last error", printableLine(event.lastError ?? "-"));
  field("Store seq", String(event.seq));

  out.line();
  out.line(chalk.bold("Payload"));
  const pretty = parsed === undefined ? event.payload : JSON.stringify(parsed, null, 2);
  for (const line of printable(pretty).split("\n")) out.line(`  ${line}`);

  out.line();
  if (attempts.length === 0) {
    out.line(chalk.bold("Attempts: none yet"));
    return;
  }
  out.line(chalk.bold("Attempts"));
  const cells = attempts.map((attempt) => [
    localTime(attempt.at),
    attempt.outcome,
    attempt.status === null ? "-" : String(attempt.status),
    attempt.carried > 1 ? `digest of ${attempt.carried}` : "1 event",
    printableLine(attempt.error ?? ""),
  ]);
  const header = ["TIME", "OUTCOME", "CHAT", "MESSAGE", "ERROR"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => (row[column] ?? "").length)),
  );
  const render = (row: string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  out.line(`  ${chalk.bold(render(header))}`);
  for (const row of cells) out.line(`  ${render(row)}`);
}
