import { once } from "node:events";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "./api-error.js";
import { findRoutes, type Route } from "./api-routes.js";

/**
 * The emulator's HTTP side, in the order it checks a call: an injected failure, the per-route rate
 * limit, the body cap, the route and method, the API key, a scoped key's missing access; only then
 * does the route run. Refusals have Vast.ai's JSON error shape, except the rate limit's 429 and
 * injected failures, which are plain text (the published 429, and a proxy's error page). Each call
 * is logged for tests, without its key or body.
 */
export interface ApiAccount {
  userId: number;
  /** A scoped key lacks the routes marked `deniedToScopedKey`. */
  scoped: boolean;
}

export interface ApiCallRecord {
  method: string;
  path: string;
  authorized: boolean;
  userAgent: string | undefined;
  status: number;
}

export interface ApiServerOptions {
  routes: readonly Route[];
  /** By API key. */
  accounts: ReadonlyMap<string, ApiAccount>;
  /**
   * The least time between two calls of one route by one key; a call sooner gets 429 (published:
   * "a minimum interval between requests for a given endpoint and identity"). 0: no limit.
   */
  minIntervalMs: number;
  /** Milliseconds clock, for the rate limit. */
  now: () => number;
  host: string;
  port: number;
}

export interface ApiServer {
  /** Base URL, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** Every call so far, in order. */
  requests: ApiCallRecord[];
  /** Makes the next `count` calls whose path matches answer `status`. */
  failNext(pathPattern: RegExp, status: number, count: number): void;
  close(): Promise<void>;
}

/** More than any real call sends. */
const MAX_REQUEST_BYTES = 256 * 1024;
/** The published rate-limit answer: plain text, no Retry-After (docs/vast-api.md). */
const RATE_LIMIT_TEXT = "API requests too frequent";

interface InjectedFailure {
  pattern: RegExp;
  status: number;
  left: number;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { routes, accounts } = options;
  const failures: InjectedFailure[] = [];
  const lastCallAt = new Map<string, number>();
  const requests: ApiCallRecord[] = [];

  /** Takes one injected failure for this path, if any is left. */
  const takeFailure = (path: string): InjectedFailure | undefined => {
    // String.search ignores a /g pattern's lastIndex, so the same RegExp matches every time.
    const failure = failures.find((f) => f.left > 0 && path.search(f.pattern) !== -1);
    if (failure) failure.left--;
    return failure;
  };

  /** True when this key called this route less than `minIntervalMs` ago; notes the call. */
  const tooSoon = (key: string, method: string, path: string): boolean => {
    if (options.minIntervalMs <= 0) return false;
    const route = `${key} ${method} ${path.replace(/\/\d+\//g, "/{id}/")}`;
    const at = options.now();
    const last = lastCallAt.get(route);
    lastCallAt.set(route, at);
    return last !== undefined && at - last < options.minIntervalMs;
  };

  /** Answers one call; resolves with the status sent, or throws the ApiError to send. */
  const answerCall = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const raw = await readBody(req);
    const method = req.method ?? "GET";
    const path = pathOf(req);
    const found = findRoutes(routes, path);
    const route = found?.routes.find((r) => r.method === method);
    const key = bearerKey(req.headers.authorization) ?? "";
    const account = accounts.get(key);

    const failure = takeFailure(path);
    if (failure) return sendPlain(res, failure.status);
    if (tooSoon(key, method, path)) return sendPlain(res, 429);
    if (raw === undefined) {
      throw new ApiError(413, "payload_too_large", "Request body is too large");
    }
    if (!found) throw new ApiError(404, "not_found", `No API route ${path}`);
    if (!route) {
      res.setHeader("allow", found.routes.map((r) => r.method).join(", "));
      throw new ApiError(405, "method_not_allowed", `Method ${method} not allowed on ${path}`);
    }
    if (!account) throw new ApiError(401, "unauthorized", "Invalid API key");
    if (account.scoped && route.deniedToScopedKey) {
      throw new ApiError(
        401,
        "unauthorized",
        `API key lacks the ${route.deniedToScopedKey} route access`,
      );
    }
    const reply = await route.handle({ userId: account.userId, id: found.id, raw });
    const status = reply.status ?? 200;
    sendJson(res, status, reply.body);
    return status;
  };

  const server: Server = createServer((req, res) => {
    const logged: ApiCallRecord = {
      method: req.method ?? "GET",
      path: pathOf(req),
      authorized: false,
      userAgent: req.headers["user-agent"],
      status: 0,
    };
    requests.push(logged);
    answerCall(req, res)
      .then((status) => {
        logged.status = status;
        logged.authorized = status < 400;
      })
      .catch((error: unknown) => {
        const apiError =
          error instanceof ApiError ? error : new ApiError(500, "internal", String(error));
        logged.status = apiError.status;
        logged.authorized = apiError.status !== 401;
        if (res.headersSent) return;
        sendJson(res, apiError.status, {
          success: false,
          error: apiError.code,
          msg: apiError.message,
        });
      });
  });

  server.listen(options.port, options.host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    requests,
    failNext(pathPattern, status, count) {
      failures.push({ pattern: pathPattern, status, left: count });
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? "/", "http://emulator.invalid").pathname;
}

function bearerKey(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/** The whole body, or undefined when it is larger than any real call sends. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk as Buffer);
  }
  return size <= MAX_REQUEST_BYTES ? Buffer.concat(chunks) : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** The published 429's plain text, or for an injected failure a proxy's plain-text page. */
function sendPlain(res: ServerResponse, status: number): number {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(status === 429 ? RATE_LIMIT_TEXT : (STATUS_CODES[status] ?? "Error"));
  return status;
}
