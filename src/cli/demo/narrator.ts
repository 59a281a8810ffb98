import type { EventEmitter } from "node:events";
import chalk from "chalk";
import type { AdapterEvents } from "../../adapter/events.js";
import { headline, type PreviewMessage } from "../../chat/preview-server.js";
import { printableLine } from "../printable.js";
import type { ServeEvents } from "../serve-events.js";

/**
 * Turns what the demo's `serve` does (its typed events and its adapter's) and what reaches the
 * Chat preview into the demo's running commentary, and keeps the tallies its summary needs. It
 * listens to the real serve, so what the user sees is what serve did, not what the demo expected
 * it to do.
 */
export interface Tally {
  /** Ids of the events the worker has posted to Chat. */
  delivered: Set<string>;
  rejected: number;
  chatMessages: number;
}

export class Narrator {
  readonly tally: Tally = { delivered: new Set(), rejected: 0, chatMessages: 0 };
  private readonly listeners = new Set<() => void>();

  constructor(private readonly print: (line: string) => void) {}

  /** Follows one serve from its start: the tunnel, the webhook and readiness, then every event. */
  follow(serve: EventEmitter<ServeEvents>): void {
    serve.on("adapterStarted", (events) => this.followAdapter(events));
    serve.on("tunnelOpen", (url) => this.say(`tunnel      loopback stand-in open at ${url}`));
    serve.on("webhookPointed", (id, url) => this.say(`webhook     ${id} now delivers to ${url}`));
    serve.on("ready", (ready) => this.say(`serve       ready: ${ready.publicUrl ?? ready.url}`));
  }

  onChatMessage(entry: PreviewMessage): void {
    this.tally.chatMessages++;
    this.say(`  ${chalk.cyan("in Chat")}     ${headline(entry.message)}`);
  }

  /** Resolves when `done()` holds, checked after every line told; rejects after `ms`. */
  until(done: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`${what} did not happen within ${ms / 1000} s`));
      }, ms);
      this.listeners.add(check);
      check();
    });
  }

  private followAdapter(events: EventEmitter<AdapterEvents>): void {
    events.on("accepted", (_eventId, duplicate, type) => {
      this.say(
        duplicate
          ? `${chalk.yellow("duplicate")}   ${column(type)} already kept: answered 200 duplicate, not posted again`
          : `${chalk.bold("received")}    ${column(type)} signature ok, kept on disk, answered 200`,
      );
    });
    events.on("rejected", (reason, status, detail) => {
      this.tally.rejected++;
      this.say(`${chalk.red("rejected")}    ${status} ${reason}${detail ? ` (${detail})` : ""}`);
    });
    events.on("delivered", (event, latencyMs) => {
      this.tally.delivered.add(event.eventId);
      this.say(`  ${chalk.green("delivered")} ${column(event.notifType)} in ${latencyMs} ms`);
    });
    // Chat's refusals are text from outside: printed as printable() shows it, like event types.
    events.on("retrying", (event, reason) => {
      this.say(
        `  ${chalk.yellow("retrying")}  ${column(event.notifType)} ${printableLine(reason)}`,
      );
    });
    events.on("dead", (event, reason) => {
      this.say(`  ${chalk.yellow("dead")}  ${column(event.notifType)} ${printableLine(reason)}`);
    });
  }

  /** Prints one line of the story and wakes whoever waits (tallies are counted before it). */
  private say(line: string): void {
    this.print(line);
    for (const listener of this.listeners) listener();
  }
}

/** An event's type (sent by whoever called the webhook) as the story's fixed-width column. */
function column(type: string | null | undefined): string {
  return printableLine(type ?? "(no type)").padEnd(22);
}
