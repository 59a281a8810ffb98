import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { http } from "../http-modules.js";

/**
 * node:http as both of the adapter's listeners use it: timeouts so slow or idle clients cannot tie
 * a server up, a bare status line for malformed HTTP, JSON answers (never a redirect).
 */
export interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface ListenerOptions {
  host: string;
  port: number;
  /** Whole request, headers and body, must arrive within this (Vast.ai itself gives up at 10 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs?: number;
}

export interface HttpListener {
  server: Server;
  /** e.g. http://127.0.0.1:8787 */
  origin: string;
  port: number;
  /** Stops accepting, closes idle connections, waits for requests in progress. */
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, response: JsonResponse, closeAfter = false): void {
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

export function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? "/", "http://listener.invalid").pathname;
  } catch {
    return undefined;
  }
}

/** Whether the request says it carries a body (which a handler may choose never to read). */
export function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0
  );
}

export async function startHttpListener(
  options: ListenerOptions,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpListener> {
  const requestTimeout = options.requestTimeoutMs ?? 10_000;
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      // How often Node checks the two timeouts above; its default (30 s) is too lax for them.
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    handle,
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
