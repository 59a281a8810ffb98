import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type HandlerResponse,
  handleRequest,
  notFound,
  type ReceiverDeps,
  tooLarge,
} from "./handler.js";

/**
 * node:http around the pure handler: reads the body under a cap, applies timeouts so slow or idle
 * clients cannot tie the server up, and writes JSON answers (never a redirect).
 */
export interface ReceiverServerOptions {
  host: string;
  port: number;
  deps: ReceiverDeps;
  /** Bodies larger than this get 413 and are not read. Vast.ai's are well under 1 KiB. */
  maxBodyBytes?: number;
  /** Whole request, headers and body, must arrive within this (Vast.ai itself gives up at 10 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs?: number;
  onResponse?: (response: HandlerResponse, request: IncomingMessage) => void;
  /** GET /metrics: Prometheus text, produced asynchronously (prom-client's registry). */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  onError?: (error: unknown) => void;
}

export interface ReceiverServer {
  server: Server;
  /** e.g. http://127.0.0.1:8787 */
  origin: string;
  port: number;
  /** Stops accepting, closes idle connections, waits for requests in progress. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

function send(res: ServerResponse, response: HandlerResponse, closeAfter = false): void {
  const payload = JSON.stringify(response.body);
  res.writeHead(response.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
    ...(closeAfter ? { connection: "close" } : {}),
    ...response.headers,
  });
  res.end(payload);
}

const METRICS_PATH = "/metrics";

function sendMetrics(
  res: ServerResponse,
  metrics: NonNullable<ReceiverServerOptions["metrics"]>,
  onError: ((error: unknown) => void) | undefined,
): void {
  metrics().then(
    ({ contentType, text }) => {
      res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
      res.end(text);
    },
    (error: unknown) => {
      onError?.(error);
      send(res, {
        status: 500,
        body: { ok: false, error: "internal" },
        outcome: { kind: "other" },
      });
    },
  );
}

function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? "/", "http://receiver.invalid").pathname;
  } catch {
    return undefined;
  }
}

export async function startReceiverServer(options: ReceiverServerOptions): Promise<ReceiverServer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const requestTimeout = options.requestTimeoutMs ?? 10_000;

  const server = createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      // How often Node checks the two timeouts above; its default (30 s) is too lax for them.
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    (req, res) => {
      const respond = (response: HandlerResponse, closeAfter = false) => {
        options.onResponse?.(response, req);
        send(res, response, closeAfter);
      };

      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > maxBody) {
        // Answer without reading the body, then drop the connection so it is never read.
        respond(tooLarge(), true);
        res.on("finish", () => req.socket.destroy());
        return;
      }

      const chunks: Buffer[] = [];
      let received = 0;
      let refused = false;
      req.on("data", (chunk: Buffer) => {
        if (refused) return;
        received += chunk.length;
        if (received > maxBody) {
          refused = true;
          req.pause();
          respond(tooLarge(), true);
          res.on("finish", () => req.socket.destroy());
          return;
        }
        chunks.push(chunk);
      });
      req.on("end", () => {
        if (refused) return;
        const path = pathOf(req);
        if (
          path === METRICS_PATH &&
          options.metrics &&
          (req.method === "GET" || req.method === "HEAD")
        ) {
          sendMetrics(res, options.metrics, options.onError);
          return;
        }
        try {
          const method = req.method ?? "GET";
          const body = Buffer.concat(chunks);
          respond(
            path === undefined
              ? notFound()
              : handleRequest({ method, path, headers: req.headers, body }, options.deps),
          );
        } catch (error) {
          options.onError?.(error);
          respond({
            status: 500,
            body: { ok: false, error: "internal" },
            outcome: { kind: "other" },
          });
        }
      });
      req.on("error", () => req.socket.destroy());
    },
  );
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP, or a client too slow to send its request: a bare status line, then close.
    const status =
      error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? "408 Request Timeout"
        : error.code === "HPE_HEADER_OVERFLOW"
          ? "431 Request Header Fields Too Large"
          : "400 Bad Request";
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;

  return {
    server,
    port,
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
