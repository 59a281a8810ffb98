import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type HandlerResponse,
  handleRequest,
  notFound,
  type ReceiverDeps,
  refuseByHeaders,
  tooLarge,
} from "./handler.js";
import {
  type HttpListener,
  hasBody,
  pathOf,
  sendJson,
  startHttpListener,
} from "./http-listener.js";

/**
 * The public listener, the one a tunnel forwards to: the pure handler behind a body cap. It serves
 * the webhook path and a minimal /health, nothing else (metrics are on the loopback listener). A
 * body is read only for a POST to the webhook path whose signature headers are present and fresh.
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

const NO_BODY = Buffer.alloc(0);

export async function startReceiverServer(options: ReceiverServerOptions): Promise<ReceiverServer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // A request line naming the webhook path exactly needs no URL parsing (the common case, and the
  // hot one), provided the path is one the parser leaves as it is.
  const { path: webhookPath } = options.deps;
  const plainPath =
    new URL(webhookPath, "http://listener.invalid").pathname === webhookPath
      ? webhookPath
      : undefined;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const respond = (response: HandlerResponse, closeAfter = false) => {
      options.onResponse?.(response, req);
      sendJson(res, response, closeAfter);
    };
    const answer = async (
      compute: () => HandlerResponse | Promise<HandlerResponse>,
      closeAfter = false,
    ) => {
      try {
        respond(await compute(), closeAfter);
      } catch (error) {
        options.onError?.(error);
        respond(
          { status: 500, body: { ok: false, error: "internal" }, outcome: { kind: "other" } },
          closeAfter,
        );
      }
    };

    const path = req.url === plainPath ? plainPath : pathOf(req);
    const method = req.method ?? "GET";
    if (path === undefined || path !== options.deps.path || method !== "POST") {
      // Only a delivery has a body worth reading: the rest is answered from the request line, and
      // a body sent along is left unread (the connection closes after the answer).
      void answer(
        () =>
          path === undefined
            ? notFound()
            : handleRequest({ method, path, headers: req.headers, body: NO_BODY }, options.deps),
        hasBody(req),
      );
      return;
    }
    const refused = refuseByHeaders(req.headers, options.deps);
    if (refused) {
      respond(refused, hasBody(req));
      return;
    }

    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBody) {
      // Answer without reading the body, then drop the connection so it is never read.
      respond(tooLarge(), true);
      res.on("finish", () => req.socket.destroy());
      return;
    }

    const chunks: Buffer[] = [];
    let received = 0;
    let tooBig = false;
    req.on("data", (chunk: Buffer) => {
      if (tooBig) return;
      received += chunk.length;
      if (received > maxBody) {
        tooBig = true;
        req.pause();
        respond(tooLarge(), true);
        res.on("finish", () => req.socket.destroy());
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooBig) return;
      const body = Buffer.concat(chunks);
      void answer(() => handleRequest({ method, path, headers: req.headers, body }, options.deps));
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
