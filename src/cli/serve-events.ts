import type { EventEmitter } from "node:events";
import type { AdapterEvents } from "../adapter/events.js";

/**
 * What `serve` does, as typed events, for a caller in the same process (the demo) that follows it
 * without reading its log. Serve writes its log either way; these are the same happenings.
 */
export interface ServeEvents {
  /** The adapter listens: from here on its own events tell what becomes of each delivery. */
  adapterStarted: [events: EventEmitter<AdapterEvents>];
  /** A tunnel opened (or reopened after a loss) at this public base URL. */
  tunnelOpen: [publicUrl: string];
  /** The Vast.ai webhook now delivers to this URL (not emitted when it already did). */
  webhookPointed: [webhookId: number, url: string];
  /** Serve has finished starting: the URL it answers on, and the public one if it has one. */
  ready: [ready: ServeReady];
}

export interface ServeReady {
  url: string;
  publicUrl: string | null;
}
