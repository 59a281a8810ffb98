import { UserError } from "../user-error.js";
/**
 * A tunnel gives the local adapter a public HTTPS URL (the tutorial's third terminal). Every
 * provider runs outside the adapter's own process or behind a small interface, so a provider that
 * hangs, exits or calls process.exit cannot take the adapter down with it.
 */
/** "loopback" is the demo's relay, never a user's choice. */
export type TunnelProviderName = "tunnelmole" | "cloudflared" | "ngrok" | "command" | "loopback";

export interface TunnelExit {
  /** A sentence: "cloudflared exited with code 1", "the tunnel command was killed by SIGKILL". */
  reason: string;
}

export interface OpenTunnel {
  /** The public base URL, e.g. https://abc.trycloudflare.com (no trailing slash). */
  url: string;
  /** Settles when the tunnel ends by itself (child exit, session closed). Never rejects. */
  ended: Promise<TunnelExit>;
  /**
   * Ends it: a child's whole process group gets SIGTERM, and SIGKILL for what is left after a
   * few seconds; resolves once no process of the group runs (and its watchdog is gone). Idempotent.
   */
  close(): Promise<void>;
}

export interface TunnelOpenOptions {
  /** The local port the adapter listens on. */
  port: number;
  /** Give up when no URL came within this long (a provider that never settles when offline). */
  timeoutMs?: number;
  /** Lines the provider printed, for the log at debug level (never contains secrets we know of). */
  onOutput?: (line: string) => void;
}

export interface TunnelProvider {
  readonly name: TunnelProviderName;
  /** Starts the tunnel and resolves with its URL, or rejects with a TunnelError. */
  open(options: TunnelOpenOptions): Promise<OpenTunnel>;
}

/**
 * Why a tunnel could not open. `setup` means the user must act (install, set a token, remove a
 * config file): a usage error, serve exits 2 with the sentence; `failed` may pass and is retried.
 */
export class TunnelError extends UserError {
  override name = "TunnelError";
  readonly reason: "setup" | "failed";

  constructor(reason: "setup" | "failed", message: string, hint?: string) {
    super(message, { kind: reason === "setup" ? "usage" : "failure", hint });
    this.reason = reason;
  }
}
