import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * One exchange over a plain TCP connection: the bytes are written exactly as given (in pieces,
 * to exercise the parser's partial reads), then the connection is half-closed, so the server
 * answers what it could parse and closes; no client library tidies anything up on the way.
 */
export interface RawExchange {
  /** Status codes of the responses received, in order. */
  statuses: number[];
  /** The connection ended without a single status line. */
  noAnswer: boolean;
  /** No end within the timeout: the server neither answered nor closed. */
  timedOut: boolean;
  /** A socket error on our side (e.g. ECONNRESET after a 413 that stopped reading). */
  error: string | undefined;
  /** The start of what came back, for reports. */
  head: string;
}

const STATUS_LINE = /HTTP\/1\.[01] (\d{3})/g;
/** Enough for every status line; responses are small JSON or the metrics page. */
const KEEP_BYTES = 64 * 1024;

export async function rawExchange(
  port: number,
  pieces: readonly Buffer[],
  options: { timeoutMs: number; pauseMs?: number },
): Promise<RawExchange> {
  const socket = connect({ host: "127.0.0.1", port });
  const received: Buffer[] = [];
  let kept = 0;
  let error: string | undefined;
  let timedOut = false;
  socket.on("data", (chunk: Buffer) => {
    if (kept < KEEP_BYTES) {
      received.push(chunk);
      kept += chunk.length;
    }
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", (err: NodeJS.ErrnoException) => {
    error ??= err.code ?? err.message;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, options.timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    for (const [index, piece] of pieces.entries()) {
      if (socket.destroyed) break;
      if (index > 0 && options.pauseMs) await sleep(options.pauseMs);
      socket.write(piece);
    }
    if (!socket.destroyed) socket.end();
  } catch {
    // The error handler has recorded it; the close follows.
  }
  await closed;
  clearTimeout(timer);
  const text = Buffer.concat(received).toString("latin1");
  const statuses = [...text.matchAll(STATUS_LINE)].map((match) => Number(match[1]));
  return {
    statuses,
    noAnswer: statuses.length === 0,
    timedOut,
    error,
    head: text.slice(0, 120),
  };
}
