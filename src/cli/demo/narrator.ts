import chalk from "chalk";
import { headline, type PreviewMessage } from "../../chat/preview-server.js";
import { printableLine } from "../printable.js";

/**
 * Turns what the demo's `serve` logs (its JSON lines) and what reaches the Chat preview into the
 * demo's running commentary, and keeps the tallies its summary needs. It reads serve's real log,
 * so what the user sees is what serve did, not what the demo expected it to do.
 */
export interface LogRecord {
  msg?: string;
  type?: string | null;
  event_id?: string;
  status?: number;
  reason?: string;
  detail?: string;
  latency_ms?: number;
  public_url?: string | null;
  url?: string;
  webhook_id?: number;
  [field: string]: unknown;
}

export interface Tally {
  received: Set<string>;
  duplicates: number;
  rejected: Array<{ status: number | undefined; reason: string | undefined }>;
  delivered: Set<string>;
  chatMessages: number;
}

export class Narrator {
  readonly tally: Tally = {
    received: new Set(),
    duplicates: 0,
    rejected: [],
    delivered: new Set(),
    chatMessages: 0,
  };
  /** Serve's last "ready" record, once it has logged one. */
  ready: LogRecord | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly print: (line: string) => void) {}

  /** One line of serve's log. Lines that are not JSON records are passed through as they are. */
  onLogLine(line: string): void {
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      this.print(chalk.dim(`  serve: ${line}`));
      return;
    }
    this.describe(record);
    for (const listener of this.listeners) listener();
  }

  onChatMessage(entry: PreviewMessage): void {
    this.tally.chatMessages++;
    this.print(`  ${chalk.cyan("in Chat")}     ${headline(entry.message)}`);
    for (const listener of this.listeners) listener();
  }

  /** Resolves when `done()` holds, checked after every record and message; rejects after `ms`. */
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

  private describe(record: LogRecord): void {
    const type = printableLine(record.type ?? "(no type)").padEnd(22);
    switch (record.msg) {
      case "received":
        if (record.event_id) this.tally.received.add(record.event_id);
        this.print(`${chalk.bold("received")}    ${type} signature ok, kept on disk, answered 200`);
        break;
      case "duplicate":
        this.tally.duplicates++;
        this.print(
          `${chalk.yellow("duplicate")}   ${type} already kept: answered 200 duplicate, not posted again`,
        );
        break;
      case "rejected":
        this.tally.rejected.push({ status: record.status, reason: record.reason });
        this.print(
          `${chalk.red("rejected")}    ${String(record.status)} ${record.reason ?? ""}${record.detail ? ` (${record.detail})` : ""}`,
        );
        break;
      case "delivered":
        if (record.event_id) this.tally.delivered.add(record.event_id);
        this.print(`  ${chalk.green("delivered")} ${type} in ${record.latency_ms} ms`);
        break;
      case "retrying":
      case "dead":
        this.print(`  ${chalk.yellow(record.msg)}  ${type} ${record.reason ?? ""}`);
        break;
      case "tunnel open":
        this.print(`tunnel      loopback stand-in open at ${record.public_url}`);
        break;
      case "webhook pointed":
        this.print(`webhook     ${record.webhook_id} now delivers to ${record.url}`);
        break;
      case "ready":
        this.ready = record;
        this.print(`serve       ready: ${record.public_url ?? record.url}`);
        break;
      default:
        // Start-up chatter (checkpointer, pruning) is serve's business, not the demo's story.
        break;
    }
  }
}
