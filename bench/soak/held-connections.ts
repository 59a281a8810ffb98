import { connect, type Socket } from "node:net";

/**
 * Connections that take a server's resources without completing a request: idle ones that never
 * send a byte, and trickling ones that send a request header a byte at a time, one a second (a
 * slowloris). serve's header and request timeouts close them after a while, which is what it
 * should do; each closed one is opened again, so the pressure holds for the whole phase.
 */
export interface HeldStats {
  opened: number;
  /** Closed by the server (not by us). */
  closedByServer: number;
  /** Of those, closed with an answer of 408 Request Timeout. */
  answered408: number;
  /** Other answers before the close, by status. */
  otherAnswers: number;
  errors: number;
  /** Fewest connections open at any sample while held. */
  minOpen: number;
  /** Median of the samples: how many were open most of the time. */
  medianOpen: number;
  open: number;
}

export class HeldConnections {
  readonly stats: HeldStats = {
    opened: 0,
    closedByServer: 0,
    answered408: 0,
    otherAnswers: 0,
    errors: 0,
    minOpen: Number.POSITIVE_INFINITY,
    medianOpen: 0,
    open: 0,
  };
  private readonly samples: number[] = [];
  private holding = false;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private sampler: NodeJS.Timeout | undefined;

  constructor(
    private readonly port: number,
    private readonly counts: { idle: number; trickle: number },
    private readonly trickleEveryMs = 1000,
  ) {}

  /** Opens them all (spread over about a second), and keeps them open until release(). */
  async hold(): Promise<void> {
    this.holding = true;
    const total = this.counts.idle + this.counts.trickle;
    for (let index = 0; index < total; index++) {
      this.open(index < this.counts.idle ? "idle" : "trickle");
      if (index % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** From now on, notes the fewest open connections every 250 ms. */
  startSampling(): void {
    this.stats.minOpen = this.stats.open;
    this.sampler = setInterval(() => {
      this.stats.minOpen = Math.min(this.stats.minOpen, this.stats.open);
      this.samples.push(this.stats.open);
      const sorted = [...this.samples].sort((a, b) => a - b);
      this.stats.medianOpen = sorted[Math.floor(sorted.length / 2)] ?? 0;
    }, 250);
  }

  release(): void {
    this.holding = false;
    clearInterval(this.sampler);
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private open(kind: "idle" | "trickle"): void {
    if (!this.holding) return;
    const socket = connect({ host: "127.0.0.1", port: this.port });
    this.sockets.add(socket);
    this.stats.opened++;
    let connected = false;
    let answer = "";
    let timer: NodeJS.Timeout | undefined;
    socket.on("connect", () => {
      connected = true;
      this.stats.open++;
      if (kind === "trickle") {
        socket.write("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ");
        // Staggered, so the drips do not all land in the same millisecond.
        const start = setTimeout(() => {
          timer = setInterval(() => socket.write("a"), this.trickleEveryMs);
          this.timers.add(timer);
        }, Math.random() * this.trickleEveryMs);
        this.timers.add(start);
      }
    });
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
    });
    socket.on("error", () => {
      this.stats.errors++;
    });
    socket.on("close", () => {
      if (timer) {
        clearInterval(timer);
        this.timers.delete(timer);
      }
      this.sockets.delete(socket);
      if (connected) this.stats.open--;
      if (!this.holding) return;
      this.stats.closedByServer++;
      if (/^HTTP\/1\.[01] 408/.test(answer)) this.stats.answered408++;
      else if (answer.startsWith("HTTP/")) this.stats.otherAnswers++;
      // Keep the pressure: the same kind of connection again, at once.
      setImmediate(() => this.open(kind));
    });
  }
}
