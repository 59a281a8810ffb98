import { EventEmitter } from "node:events";
import { deliveryOutcome } from "../vast/delivery-outcome.js";
import { type OpenTunnel, TunnelError, type TunnelProvider } from "./types.js";

/**
 * Keeps a public URL pointing at the adapter. Opens the tunnel, has the webhook pointed at its URL,
 * then probes it end to end (GET /health through the tunnel, answered by this very adapter). A
 * tunnel that exits, or that stays up but stops forwarding (a known failure of every provider), is
 * restarted and the new URL pointed at: the first time at once, then with growing backoff. After
 * too many failures in a row it gives up, so that a process manager can restart the whole adapter.
 *
 * Why at once: until the webhook points at the new URL, Vast.ai's deliveries go to the dead one,
 * and what that answers depends on the provider (docs/tunnels.md). Vast.ai retries a 5xx or a
 * timeout (cloudflared's dead URL answers 530), but gives up on a 4xx: ngrok's and tunnelmole's
 * dead URLs answer 404, so every delivery in that window is lost.
 */
export interface ProbeResult {
  ok: boolean;
  /** Why not, when not ok. */
  error?: string;
  /** The HTTP status of an answer that did not come from this adapter (a provider's error page). */
  status?: number;
}

export interface TunnelStatus {
  provider: string;
  url: string | undefined;
  restarts: number;
  lastProbe: ({ at: number } & ProbeResult) | undefined;
}

export interface SupervisorOptions {
  provider: TunnelProvider;
  port: number;
  /** Points the webhook at the tunnel's URL (throws when it cannot). */
  pointWebhook: (publicUrl: string) => Promise<void>;
  /** Checks that a request through the tunnel reaches this adapter. */
  probe: (publicUrl: string) => Promise<ProbeResult>;
  probeIntervalMs?: number;
  /** Consecutive failed probes that count as a dead tunnel (one failure may be a blip). */
  probeFailuresToRestart?: number;
  /** Failures in a row (open, point, or a lost tunnel) before giving up. */
  maxFailures?: number;
  openTimeoutMs?: number;
  /** The wait before the first reopen after a loss (default 0: at once). */
  firstBackoffMs?: number;
  /** The wait before the second; it doubles from there (default 1 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface SupervisorEvents {
  /** A tunnel is up and the webhook points at it. */
  ready: [url: string];
  /** The tunnel was lost or could not be opened; it will be tried again after `delayMs`. */
  lost: [reason: string, delayMs: number];
  probe: [result: ProbeResult];
  /** Given up: the reason is a sentence for the user. */
  failed: [error: TunnelError];
  output: [line: string];
}

export class TunnelSupervisor extends EventEmitter<SupervisorEvents> {
  private readonly options: SupervisorOptions;
  private current: OpenTunnel | undefined;
  private closing = false;
  /** Aborted by close(): ends every wait at once. */
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  readonly status: TunnelStatus;

  constructor(options: SupervisorOptions) {
    super();
    this.options = options;
    this.status = {
      provider: options.provider.name,
      url: undefined,
      restarts: 0,
      lastProbe: undefined,
    };
  }

  /** Resolves with the first public URL once the webhook points at it; rejects if it never does. */
  start(): Promise<string> {
    const first = new Promise<string>((resolve, reject) => {
      this.once("ready", resolve);
      this.once("failed", reject);
    });
    this.loop = this.run();
    return first;
  }

  /** Stops supervising and ends the tunnel (its whole process group). */
  async close(): Promise<void> {
    this.closing = true;
    this.stopping.abort();
    await this.loop;
    await this.current?.close();
  }

  private async run(): Promise<void> {
    const maxFailures = this.options.maxFailures ?? 6;
    let failures = 0;
    while (!this.closing) {
      const reason = await this.openAndWatch(() => {
        failures = 0;
      });
      if (this.closing) return;
      if (reason instanceof TunnelError && reason.reason === "setup") {
        this.emit("failed", reason);
        return;
      }
      failures++;
      const sentence = reason instanceof Error ? reason.message : (reason ?? "the tunnel ended");
      if (failures >= maxFailures) {
        this.emit(
          "failed",
          new TunnelError(
            "failed",
            `The tunnel failed ${failures} times in a row; last: ${sentence}`,
          ),
        );
        return;
      }
      const delay = this.backoff(failures);
      this.emit("lost", sentence, delay);
      await this.pause(delay);
    }
  }

  /**
   * One tunnel's life: open it, point the webhook at it, probe until it dies. Returns why it ended
   * (a sentence or a TunnelError), or undefined when closing.
   */
  private async openAndWatch(onHealthy: () => void): Promise<string | TunnelError | undefined> {
    let tunnel: OpenTunnel;
    try {
      tunnel = await this.options.provider.open({
        port: this.options.port,
        ...(this.options.openTimeoutMs === undefined
          ? {}
          : { timeoutMs: this.options.openTimeoutMs }),
        onOutput: (line) => this.emit("output", line),
      });
    } catch (error) {
      return error instanceof TunnelError
        ? error
        : new TunnelError("failed", String((error as Error).message));
    }
    this.current = tunnel;
    if (this.closing) return undefined;
    try {
      await this.options.pointWebhook(tunnel.url);
    } catch (error) {
      await tunnel.close();
      return `could not point the webhook at ${tunnel.url}: ${(error as Error).message}`;
    }
    if (this.status.url !== undefined) this.status.restarts++;
    this.status.url = tunnel.url;
    this.emit("ready", tunnel.url);

    // This tunnel's own lifetime: its probe loop must end with it, or loops would pile up, one
    // per restart, probing dead URLs and counting the supervisor healthy.
    const lifetime = new AbortController();
    const onClose = () => lifetime.abort();
    this.stopping.signal.addEventListener("abort", onClose, { once: true });
    const reason = await Promise.race([
      tunnel.ended.then((exit) => exit.reason),
      this.watchProbes(tunnel.url, onHealthy, lifetime.signal),
      new Promise<undefined>((resolve) =>
        lifetime.signal.addEventListener("abort", () => resolve(undefined), { once: true }),
      ),
    ]);
    lifetime.abort();
    this.stopping.signal.removeEventListener("abort", onClose);
    await tunnel.close();
    this.current = undefined;
    return reason;
  }

  /**
   * Resolves with a reason once enough probes in a row have failed, or at once when the tunnel
   * answered with a redirect or a 4xx of its own: that is no blip, and Vast.ai gives up on those.
   */
  private async watchProbes(
    url: string,
    onHealthy: () => void,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const needed = this.options.probeFailuresToRestart ?? 2;
    let failedInARow = 0;
    while (!signal.aborted) {
      await this.pause(this.options.probeIntervalMs ?? 30_000, signal);
      if (signal.aborted) return undefined;
      const result = await this.options
        .probe(url)
        .catch((error: Error): ProbeResult => ({ ok: false, error: error.message }));
      this.status.lastProbe = { at: Date.now(), ...result };
      this.emit("probe", result);
      if (result.ok) {
        failedInARow = 0;
        onHealthy();
        continue;
      }
      failedInARow++;
      // An answer Vast.ai would give up on (a 3xx, a 4xx but 408 and 429) loses every delivery
      // until the webhook moves: restart at once. One it retries may be a blip, like a timeout.
      const refusing =
        result.status !== undefined && deliveryOutcome(result.status) === "permanent";
      if (failedInARow >= needed || refusing)
        return `the tunnel stopped forwarding (${result.error ?? "probe failed"})`;
    }
    return undefined;
  }

  /** 0 (firstBackoffMs), then 1 s, 2 s, 4 s... (initialBackoffMs doubling) up to 1 min. */
  private backoff(failures: number): number {
    if (failures <= 1) return this.options.firstBackoffMs ?? 0;
    const initial = this.options.initialBackoffMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 60_000;
    return Math.min(max, initial * 2 ** (failures - 2));
  }

  /** Waits `ms`, or less when `signal` (by default: closing) is aborted. */
  private pause(ms: number, signal: AbortSignal = this.stopping.signal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
