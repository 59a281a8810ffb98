import chalk from "chalk";
import { resolveConfigDir } from "../../config/paths.js";
import { routesOf } from "../../config/routes.js";
import { readRuntimeState } from "../../config/runtime-state.js";
import { openSettings } from "../../config/settings.js";
import type {
  Attempt,
  DeliveryState,
  EventRecord,
  EventState,
  StoredDelivery,
  StoredEvent,
  StoreStats,
} from "../../delivery/event-store.js";
import { eventStoreExists } from "../../delivery/open-store.js";
import { DEFAULT_ROUTE } from "../../route-syntax.js";
import { parseEvent, type VastEvent } from "../../vast/event.js";
import type { GlobalOptions } from "../context.js";
import { CliError, ExitCode, usageError } from "../errors.js";
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
  /** list, replay and retry-dead: one route only; checked where commander parses it. */
  route?: string;
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
 * --state and --limit only for list, --route a route name).
 */
export async function events(
  verb: EventsAction,
  id: string | undefined,
  options: EventsOptions,
  context: EventsContext,
): Promise<number> {
  const out = createOutput(context, options);
  const configDir = resolveConfigDir(options.configDir, context.env);
  const path = resolveStoreLocation(options.store, context.env, configDir, out.warn);
  // Listing must not create a store; the other actions have nothing to act on without one.
  const exists = eventStoreExists(path);
  const { route } = options;

  switch (verb) {
    case "list": {
      const limit = Math.min(options.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
      if (!exists) {
        if (route !== undefined) checkRoute(route, configDir, undefined);
        out.result({ events: [], counts: { pending: 0, delivered: 0, dead: 0 }, routes: {} });
        out.line("No events yet.");
        return ExitCode.Ok;
      }
      const { rows, stats } = await withStore(path, async (store) => {
        const stats = await store.stats();
        if (route !== undefined) checkRoute(route, configDir, stats);
        return { rows: await store.list({ state: options.state, route, limit }), stats };
      });
      listEvents(out, rows, stats, options.state, route);
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
      if (!exists) {
        if (route !== undefined) checkRoute(route, configDir, undefined);
        throw noEventsYet();
      }
      const before = await withStore(path, async (store) => {
        if (route !== undefined) checkRoute(route, configDir, await store.stats());
        const event = await store.get(eventId);
        if (event && !(await store.replay(eventId, Date.now(), { route }))) return undefined;
        return event;
      });
      if (!before) throw unknownEvent(eventId);
      const routes = route === undefined ? before.deliveries.map((d) => d.route) : [route];
      const was =
        route === undefined
          ? before.state
          : (before.deliveries.find((delivery) => delivery.route === route)?.state ?? null);
      out.result({ event_id: eventId, previous_state: was, state: "pending", routes });
      if (route === undefined) {
        out.line(`Queued event ${eventId} again (it was ${before.state}).`);
      } else {
        out.line(
          `Queued event ${eventId} again for the route ${route} (${was === null ? "it had not gone there" : `it was ${was} there`}).`,
        );
      }
      out.line(deliveryNote(configDir, routes));
      return ExitCode.Ok;
    }
    case "retry-dead": {
      if (!exists) {
        if (route !== undefined) checkRoute(route, configDir, undefined);
        throw noEventsYet();
      }
      const requeued = await withStore(path, async (store) => {
        if (route !== undefined) checkRoute(route, configDir, await store.stats());
        return store.retryDead(Date.now(), route);
      });
      out.result(route === undefined ? { requeued } : { requeued, route });
      const of = route === undefined ? "" : ` of the route ${route}`;
      if (requeued === 0) {
        out.line(`No dead letters${of} to retry.`);
      } else {
        out.line(`Queued ${requeued} dead ${requeued === 1 ? "letter" : "letters"}${of} again.`);
        out.line(deliveryNote(configDir, route === undefined ? [] : [route]));
      }
      return ExitCode.Ok;
    }
  }
}

/**
 * A route named on the command line must be one of this set-up (config.json's routes, or the
 * implicit `default`) or one the store has deliveries for: anything else is a typo, exit 2.
 */
function checkRoute(route: string, configDir: string, stats: StoreStats | undefined): void {
  const configured = routesOf(openSettings(configDir).read()).map((known) => known.name);
  const known = [...new Set([...configured, ...Object.keys(stats?.routes ?? {})])];
  if (known.includes(route)) return;
  throw usageError(
    `There is no route ${route}.`,
    `The routes here: ${known.join(", ")} (\`vast-gchat route list\` shows them).`,
  );
}

function unknownEvent(eventId: string, hint = LIST_HINT): CliError {
  return new CliError(`No event with id ${eventId}.`, { hint });
}

function noEventsYet(): CliError {
  return new CliError("No events yet.", {
    hint: "Nothing has been received in this config directory; `vast-gchat trigger TYPE` sends a sample.",
  });
}

/** What happens next to deliveries queued for `routes` (none named: whichever they are). */
function deliveryNote(configDir: string, routes: readonly string[]): string {
  const runtime = readRuntimeState(configDir);
  if (!runtime)
    return "The adapter is not running here: `vast-gchat serve` delivers it when it starts.";
  // A serve that does not name its routes delivers the route default alone.
  const delivered = runtime.routes ?? [DEFAULT_ROUTE];
  const missing = routes.filter((route) => !delivered.includes(route));
  if (missing.length > 0) {
    return `The adapter running here (pid ${runtime.pid}) does not deliver the route${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: restart \`vast-gchat serve\` after \`vast-gchat route add\`.`;
  }
  return "The running adapter delivers it shortly.";
}

// ---------------------------------------------------------------------------------------------

/** The stored body read as the adapter reads a delivery (src/vast/event.ts), fields typed. */
function eventOf(stored: EventRecord): VastEvent {
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
function subjectOf(stored: EventRecord): string {
  const { subject, message } = eventOf(stored);
  return subject?.trim() ? subject : (message ?? "");
}

function typeOf(stored: EventRecord): string | null {
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

/** A delivery's state, for --json. */
function stateJson(delivery: Omit<DeliveryState, "route">) {
  return {
    state: delivery.state,
    attempts: delivery.attempts,
    next_attempt_at: delivery.state === "pending" ? iso(delivery.nextAttemptAt) : null,
    last_error: delivery.lastError,
    delivered_at: iso(delivery.deliveredAt),
  };
}

function headJson(event: EventRecord) {
  return {
    event_id: event.eventId,
    seq: event.seq,
    type: typeOf(event),
    subject: subjectOf(event),
  };
}

/** One line of `events list --json`: an event and one route's delivery of it. */
function deliveryJson(row: StoredDelivery) {
  const { state, attempts, next_attempt_at, last_error, delivered_at } = stateJson(row);
  return {
    ...headJson(row),
    route: row.route,
    state,
    attempts,
    received_at: iso(row.receivedAt),
    next_attempt_at,
    last_error,
    delivered_at,
  };
}

function attemptJson(attempt: Attempt) {
  return {
    route: attempt.route,
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

type Cell = string;

/** Columns padded to their widest cell (the last one not: no trailing blanks). */
function renderTable(
  header: Cell[],
  rows: Cell[][],
  style?: (text: string, row: number, column: number) => string,
): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((cells) => (cells[column] ?? "").length)),
  );
  const render = (cells: Cell[], row: number) =>
    cells
      .map((cell, column) => {
        const padded = column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0);
        return style && row >= 0 ? style(padded, row, column) : padded;
      })
      .join("  ")
      .trimEnd();
  return [chalk.bold(render(header, -1)), ...rows.map((cells, row) => render(cells, row))];
}

function countsOf(counts: { pending: number; delivered: number; dead: number }) {
  return { pending: counts.pending, delivered: counts.delivered, dead: counts.dead };
}

function listEvents(
  out: Output,
  rows: StoredDelivery[],
  stats: StoreStats,
  state: EventState | undefined,
  route: string | undefined,
): void {
  const counts = countsOf(route === undefined ? stats : (stats.routes[route] ?? NO_COUNTS));
  out.result({
    events: rows.map(deliveryJson),
    counts,
    routes: Object.fromEntries(
      Object.entries(stats.routes).map(([name, each]) => [name, countsOf(each)]),
    ),
  });
  if (rows.length === 0) {
    const which = `${state ? `${state} ` : ""}events${route ? ` for the route ${route}` : ""}`;
    out.line(state || route ? `No ${which}.` : "No events yet.");
    return;
  }
  const now = Date.now();
  const header = [
    "ID",
    "RECEIVED",
    "TYPE",
    "SUBJECT",
    "ROUTE",
    "STATE",
    "ATTEMPTS",
    "NEXT",
    "LAST ERROR",
  ];
  const table = rows.map((row) => [
    printableLine(row.eventId),
    localTime(row.receivedAt),
    printableLine(typeOf(row) ?? "-"),
    cut(subjectOf(row), SUBJECT_WIDTH) || "-",
    printableLine(row.route),
    row.state,
    String(row.attempts),
    row.state === "pending" ? relative(row.nextAttemptAt, now) : "-",
    row.lastError ? cut(row.lastError, ERROR_WIDTH) : "-",
  ]);
  const stateColumn = header.indexOf("STATE");
  for (const line of renderTable(header, table, (text, index, column) =>
    column === stateColumn ? STATE_COLOUR[rows[index]?.state ?? "pending"](text) : text,
  )) {
    out.line(line);
  }
  const total = state ? counts[state] : counts.pending + counts.delivered + counts.dead;
  const shown =
    rows.length < total
      ? `Newest ${rows.length} of ${total}${state ? ` ${state}` : ""} (--limit N for more). `
      : "";
  const where = route === undefined ? "In the store" : `For the route ${route}`;
  out.line(
    chalk.dim(
      `\n${shown}${where}: ${counts.pending} pending, ${counts.delivered} delivered, ${counts.dead} dead.`,
    ),
  );
  out.line(chalk.dim("`vast-gchat events show ID` shows one event with its payload and attempts."));
  if (counts.dead > 0 && state !== "pending" && state !== "delivered") {
    out.line(
      chalk.dim(
        `\`vast-gchat events retry-dead${route === undefined ? "" : ` --route ${route}`}\` queues the dead letters again.`,
      ),
    );
  }
}

const NO_COUNTS = { pending: 0, delivered: 0, dead: 0 };

function showEvent(out: Output, event: StoredEvent, attempts: Attempt[]): void {
  const parsed = parsePayload(event.payload);
  out.result({
    event: {
      ...headJson(event),
      ...stateJson(event),
      received_at: iso(event.receivedAt),
      deliveries: event.deliveries.map((delivery) => ({
        route: delivery.route,
        ...stateJson(delivery),
      })),
      payload: parsed === undefined ? event.payload : parsed,
      attempts: attempts.map(attemptJson),
    },
  });
  const now = Date.now();
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
      `${localTime(event.nextAttemptAt)}  (${relative(event.nextAttemptAt, now)})`,
    );
  }
  if (event.deliveredAt !== null) field("Delivered", localTime(event.deliveredAt));
  field("Last error", printableLine(event.lastError ?? "-"));
  field("Store seq", String(event.seq));

  out.line();
  out.line(chalk.bold("Routes"));
  const deliveries = event.deliveries.map((delivery) => [
    printableLine(delivery.route),
    delivery.state,
    String(delivery.attempts),
    delivery.state === "pending" ? relative(delivery.nextAttemptAt, now) : "-",
    delivery.deliveredAt === null ? "-" : localTime(delivery.deliveredAt),
    printableLine(delivery.lastError ?? "-"),
  ]);
  const routeHeader = ["ROUTE", "STATE", "ATTEMPTS", "NEXT", "DELIVERED", "LAST ERROR"];
  for (const line of renderTable(routeHeader, deliveries, (text, index, column) =>
    column === 1 ? STATE_COLOUR[event.deliveries[index]?.state ?? "pending"](text) : text,
  )) {
    out.line(`  ${line}`);
  }

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
    printableLine(attempt.route),
    attempt.outcome,
    attempt.status === null ? "-" : String(attempt.status),
    attempt.carried > 1 ? `digest of ${attempt.carried}` : "1 event",
    printableLine(attempt.error ?? ""),
  ]);
  const header = ["TIME", "ROUTE", "OUTCOME", "CHAT", "MESSAGE", "ERROR"];
  for (const line of renderTable(header, cells)) out.line(`  ${line}`);
}
