import { randomBytes } from "node:crypto";
import { type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from "node:http";
import { Agent, WebSocket } from "undici";
import { isLoopbackHost } from "../service-url.js";
import type { OpenTunnel, TunnelExit, TunnelProvider } from "./types.js";
import { TunnelError } from "./types.js";

/**
 * tunnelmole (free, no account; the tutorial's tunnel, and the default), spoken directly rather
 * than through the npm package `tunnelmole`. That package brought 176 packages into an install
 * of ours, a postinstall script that posts the machine's Node version and platform to
 * service.tunnelmole.com unless TUNNELMOLE_TELEMETRY=0, a client id kept in ~/.tmole.sh and sent
 * on every connection, and process.exit calls in library code (docs/supply-chain.md).
 *
 * The protocol, read in tunnelmole-client 2.4.0 (src/websocket/connect.ts, src/message-handlers/)
 * and robbie-cahill/tunnelmole-service (websocket.ts, src/message-handlers/initialise.ts,
 * src/handlers/handle-request.ts, src/proxy.ts): JSON text messages over one websocket to
 * wss://service.tunnelmole.com:8083.
 * - We send `{"type":"initialise","clientId":ID}`. The service needs a client id: it keys the
 *   connection by it and, when a connection closes, forgets every connection with that id
 *   (proxy.deleteConnection). tunnelmole keeps one id for good; we make a new random one for each
 *   connection and store it nowhere, so nothing ties two runs together and an old connection's
 *   close cannot remove a newer one. The package also sends `connectionInfo` (Node and package
 *   versions); the service does not read it and clients before 2.2 did not send it, so we do not.
 * - It answers `hostnameAssigned` with the public hostname (HTTPS at https://HOSTNAME).
 * - Each request to that hostname comes as `forwardedRequest` (requestId, url: the path, method,
 *   headers as name -> value, body: base64), and is answered with `forwardedResponse` (requestId,
 *   url, statusCode, headers, body: base64). The service reads request bodies up to 5 MB
 *   (app.ts, maxRequestSize), so no message of its exceeds MAX_MESSAGE_BYTES.
 * - `clientMessage` is text for the user; `clientDisconnect` asks the client to go (tunnelmole
 *   exits); the others answer requests for reserved domains, which we never make.
 * - The service pings every 45 s (websocket pongs are automatic) and ends a connection after
 *   12 hours. Without a paid domain a new connection gets a new hostname, so a closed connection
 *   ends the tunnel: the supervisor opens a new one and points the webhook at it.
 */

export const TUNNELMOLE_SERVICE = "wss://service.tunnelmole.com:8083";
/** Another tunnelmole service (self-hosted, or a test's on loopback). */
export const TUNNELMOLE_SERVICE_VARIABLE = "VAST_GCHAT_TUNNELMOLE_SERVICE";

/** A forwarded request of 5 MB is about 6.7 MB in base64, plus its headers. */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** What the adapter's answer may hold (it answers small JSON; this only bounds a surprise). */
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Vast.ai gives up on a delivery after 10 s; the adapter answers in milliseconds. */
const LOCAL_TIMEOUT_MS = 30_000;
const CLOSE_WAIT_MS = 2000;
/**
 * Connection-level headers: they describe one hop (theirs or ours), not the request. And
 * `expect`: the service has already read the whole body, there is nothing to wait for.
 */
const HOP_BY_HOP = new Set([
  "expect",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "content-length",
]);

/** The service's URL: wss://, or ws:// on loopback only (a test's service, never the internet). */
export function tunnelmoleService(env: NodeJS.ProcessEnv): URL {
  const text = env[TUNNELMOLE_SERVICE_VARIABLE]?.trim() || TUNNELMOLE_SERVICE;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TunnelError("setup", `${TUNNELMOLE_SERVICE_VARIABLE} is not a URL: "${text}".`);
  }
  const plainOnLoopback = url.protocol === "ws:" && isLoopbackHost(url.hostname);
  if (url.protocol !== "wss:" && !plainOnLoopback) {
    throw new TunnelError(
      "setup",
      `${TUNNELMOLE_SERVICE_VARIABLE} must be a wss:// URL (ws:// only on loopback): "${url.origin}".`,
    );
  }
  return url;
}

export interface TunnelmoleOptions {
  /** serve's environment: VAST_GCHAT_TUNNELMOLE_SERVICE is read from it. */
  env?: NodeJS.ProcessEnv;
}

interface ForwardedRequest {
  requestId: string;
  url: string;
  method: string;
  headers: Record<string, unknown>;
  body: string;
}

function isForwardedRequest(message: Record<string, unknown>): boolean {
  return (
    typeof message.requestId === "string" &&
    typeof message.url === "string" &&
    message.url.startsWith("/") &&
    typeof message.method === "string" &&
    /^[A-Z]{1,16}$/.test(message.method)
  );
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;

/** Text from the service, fit for one log line: no control characters, bounded. */
function printable(text: unknown): string {
  return String(text).replace(CONTROL, " ").slice(0, 300);
}

function requestHeaders(headers: Record<string, unknown>, length: number): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === "string" && !HOP_BY_HOP.has(name.toLowerCase())) kept[name] = value;
  }
  kept["content-length"] = length;
  return kept;
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

export function tunnelmoleTunnel(options: TunnelmoleOptions = {}): TunnelProvider {
  const env = options.env ?? process.env;
  return {
    name: "tunnelmole",
    async open(openOptions): Promise<OpenTunnel> {
      const service = tunnelmoleService(env);
      // Public URLs are https, as tunnelmole prints them; only a loopback test service is plain.
      const scheme = service.protocol === "wss:" ? "https" : "http";
      const agent = new Agent({ webSocket: { maxPayloadSize: MAX_MESSAGE_BYTES } });
      const socket = new WebSocket(service.href, { dispatcher: agent });
      const inFlight = new Set<ReturnType<typeof request>>();
      let publicUrl: string | undefined;
      let endReason: string | undefined;
      let settle: (exit: TunnelExit) => void = () => {};
      const ended = new Promise<TunnelExit>((resolve) => {
        settle = resolve;
      });
      const closed = new Promise<void>((resolve) => {
        socket.addEventListener("close", () => resolve(), { once: true });
      });

      const reply = (
        forwarded: ForwardedRequest,
        statusCode: number,
        headers: object,
        body: Buffer,
      ) => {
        if (socket.readyState !== WebSocket.OPEN) return;
        socket.send(
          JSON.stringify({
            type: "forwardedResponse",
            requestId: forwarded.requestId,
            url: forwarded.url,
            statusCode,
            headers,
            body: body.toString("base64"),
          }),
        );
      };
      /** Hands one request to the adapter on loopback and its answer back to the service. */
      const forward = (forwarded: ForwardedRequest) => {
        const body = Buffer.from(
          typeof forwarded.body === "string" ? forwarded.body : "",
          "base64",
        );
        // One answer per request, whichever comes first: the adapter's, or an error after it.
        let answered = false;
        const answer = (statusCode: number, headers: object, text: Buffer) => {
          if (answered) return;
          answered = true;
          reply(forwarded, statusCode, headers, text);
        };
        const fail = (statusCode: number, text: string) =>
          answer(statusCode, { "content-type": "text/plain; charset=utf-8" }, Buffer.from(text));
        let local: ReturnType<typeof request>;
        try {
          local = request({
            host: "127.0.0.1",
            port: openOptions.port,
            method: forwarded.method,
            path: forwarded.url,
            headers: requestHeaders(forwarded.headers, body.length),
            timeout: LOCAL_TIMEOUT_MS,
          });
        } catch {
          // Node refuses a header it cannot send (a control character in a value).
          return fail(400, "vast-gchat tunnel: the request could not be passed on");
        }
        inFlight.add(local);
        local.on("close", () => inFlight.delete(local));
        local.on("timeout", () => local.destroy(new Error("timeout")));
        local.on("error", () => fail(502, "vast-gchat tunnel: the adapter did not answer"));
        local.on("response", (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) local.destroy(new Error("response too large"));
            else chunks.push(chunk);
          });
          response.on("end", () => {
            answer(
              response.statusCode ?? 502,
              responseHeaders(response.headers),
              Buffer.concat(chunks),
            );
          });
        });
        local.end(body);
      };

      const url = await new Promise<string>((resolve, reject) => {
        let settled = false;
        const finish = (error: TunnelError | undefined, found?: string) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (error) {
            socket.close();
            void agent.destroy().catch(() => {});
            reject(error);
          } else resolve(found as string);
        };
        const timeoutMs = openOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        const timer = setTimeout(
          () =>
            finish(
              new TunnelError(
                "failed",
                `tunnelmole gave no public URL within ${timeoutMs / 1000} s.`,
              ),
            ),
          timeoutMs,
        );

        socket.addEventListener("open", () => {
          // A new id for each connection, kept nowhere (see above).
          const clientId = randomBytes(16).toString("base64url");
          socket.send(JSON.stringify({ type: "initialise", clientId }));
        });
        socket.addEventListener("message", (event) => {
          if (typeof event.data !== "string") return;
          let message: Record<string, unknown>;
          try {
            message = JSON.parse(event.data) as Record<string, unknown>;
          } catch {
            return;
          }
          if (typeof message !== "object" || message === null) return;
          switch (message.type) {
            case "hostnameAssigned": {
              const hostname = message.hostname;
              if (publicUrl || typeof hostname !== "string") return;
              if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(hostname)) {
                return finish(
                  new TunnelError(
                    "failed",
                    `tunnelmole assigned an unusable hostname: "${printable(hostname)}".`,
                  ),
                );
              }
              publicUrl = new URL(`${scheme}://${hostname}`).origin;
              openOptions.onOutput?.(`tunnelmole assigned ${publicUrl}`);
              return finish(undefined, publicUrl);
            }
            case "forwardedRequest":
              if (publicUrl && isForwardedRequest(message))
                forward(message as unknown as ForwardedRequest);
              return;
            case "clientMessage":
              openOptions.onOutput?.(`tunnelmole says: ${printable(message.message)}`);
              return;
            case "clientDisconnect":
              endReason = "tunnelmole's service asked the client to disconnect";
              openOptions.onOutput?.(endReason);
              socket.close(1000);
              return;
            default:
              openOptions.onOutput?.(`tunnelmole sent "${printable(message.type)}"`);
          }
        });
        socket.addEventListener("close", (event) => {
          const how =
            endReason ?? `the connection to tunnelmole's service closed (code ${event.code})`;
          if (publicUrl) settle({ reason: how });
          finish(
            new TunnelError(
              "failed",
              event.code === 1006 && !endReason
                ? `could not reach tunnelmole's service at ${service.host}, or it dropped the connection, before giving a public URL.`
                : `${how} before giving a public URL.`,
            ),
          );
        });
      });

      let closing: Promise<void> | undefined;
      return {
        url,
        ended,
        close() {
          closing ??= (async () => {
            endReason ??= "the tunnelmole tunnel was closed";
            if (
              socket.readyState === WebSocket.CONNECTING ||
              socket.readyState === WebSocket.OPEN
            ) {
              socket.close(1000);
            }
            let wait: NodeJS.Timeout | undefined;
            await Promise.race([closed, new Promise((r) => (wait = setTimeout(r, CLOSE_WAIT_MS)))]);
            clearTimeout(wait);
            for (const local of inFlight) local.destroy();
            await agent.destroy().catch(() => {});
            settle({ reason: endReason });
          })();
          return closing;
        },
      };
    },
  };
}
