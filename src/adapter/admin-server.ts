import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type HttpListener,
  hasBody,
  type JsonResponse,
  pathOf,
  sendJson,
  startHttpListener,
} from "./http-listener.js";
import { isLoopbackHostHeader } from "./loopback-host.js";

/**
 * The loopback-only listener: the detailed /health and /metrics, for `status` and a local
 * Prometheus. It binds 127.0.0.1 whatever --host says, so a tunnel to the public port never
 * reaches it, and answers only requests addressed to a loopback name (see loopback-host.ts).
 */
export const ADMIN_HOST = "127.0.0.1";

export interface AdminServerOptions {
  /** 0: any free port (the runtime state says which). */
  port: number;
  /** The detailed health, read from the store. */
  health: () => Promise<JsonResponse>;
  /** Prometheus text, produced asynchronously (prom-client's registry). */
  metrics: () => Promise<{ contentType: string; text: string }>;
  onError?: (error: unknown) => void;
}

const READ_METHODS = "GET, HEAD";

function answer(status: number, error: string, headers?: Record<string, string>): JsonResponse {
  return { status, body: { ok: false, error }, ...(headers ? { headers } : {}) };
}

export async function startAdminServer(options: AdminServerOptions): Promise<HttpListener> {
  let port = options.port;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Every route only reads: a body is never wanted, so it is never read and the connection ends.
    const closeAfter = hasBody(req);
    const send = (response: JsonResponse) => sendJson(res, response, closeAfter);
    if (!isLoopbackHostHeader(req.headers.host, port)) {
      send(answer(421, "misdirected_request"));
      return;
    }
    const path = pathOf(req);
    const reading = req.method === "GET" || req.method === "HEAD";
    if (path === "/health") {
      if (reading) sendHealth(res, options, closeAfter);
      else send(answer(405, "method_not_allowed", { allow: READ_METHODS }));
    } else if (path === "/metrics") {
      if (reading) sendMetrics(res, options, closeAfter);
      else send(answer(405, "method_not_allowed", { allow: READ_METHODS }));
    } else {
      send(answer(404, "not_found"));
    }
  };
  const listener = await startHttpListener({ host: ADMIN_HOST, port: options.port }, handle);
  port = listener.port;
  return listener;
}

function sendHealth(res: ServerResponse, options: AdminServerOptions, closeAfter: boolean): void {
  options.health().then(
    (response) => sendJson(res, response, closeAfter),
    (error: unknown) => {
      options.onError?.(error);
      sendJson(res, answer(500, "internal"), closeAfter);
    },
  );
}

function sendMetrics(res: ServerResponse, options: AdminServerOptions, closeAfter: boolean): void {
  options.metrics().then(
    ({ contentType, text }) => {
      res.writeHead(200, {
        "content-type": contentType,
        "cache-control": "no-store",
        ...(closeAfter ? { connection: "close" } : {}),
      });
      res.end(text);
    },
    (error: unknown) => {
      options.onError?.(error);
      sendJson(res, answer(500, "internal"), closeAfter);
    },
  );
}
