import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type HandlerResponse,
  handleRequest,
  notFound,
  type ReceiverDeps,
  tooLarge,
} from "./handler.js";
import { type HttpListener, pathOf, sendJson, startHttpListener } from "./http-listener.js";

/**
 * The public listener, the one a tunnel forwards to: the pure handler behind a body cap. It serves
 * the webhook path and a minimal /health, nothing else (metrics are on the loopback listener).
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
  onError?: (error: unknown) => void;
}

export type ReceiverServer = HttpListener;

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

export async function startReceiverServer(options: ReceiverServerOptions): Promise<ReceiverServer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const respond = (response: HandlerResponse, closeAfter = false) => {
      options.onResponse?.(response, req);
      sendJson(res, response, closeAfter);
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
  };

  return startHttpListener(
    {
      host: options.host,
      port: options.port,
      ...(options.requestTimeoutMs === undefined
        ? {}
        : { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.keepAliveTimeoutMs === undefined
        ? {}
        : { keepAliveTimeoutMs: options.keepAliveTimeoutMs }),
    },
    handle,
  );
}
