import { EventEmitter, once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isLoopbackHost } from "../service-url.js";
import { PREVIEW_PAGE_HTML } from "./preview-page.js";
import { type ChatMessage, plainTextOf } from "./render.js";

/**
 * A local stand-in for a Chat space, for the demo: a loopback server that takes what the worker
 * posts to an incoming-webhook URL, answers as Chat does, and keeps each message. A browser on the
 * same machine can watch them arrive at `pageUrl`.
 */
export interface PreviewMessage {
  /** 1, 2, 3, ... in arrival order. */
  n: number;
  receivedAt: number;
  threadKey: string | undefined;
  message: ChatMessage;
}

export interface ChatPreview {
  /** An incoming-webhook URL of Chat's shape, on loopback. */
  webhookUrl: URL;
  /** The web page that shows the messages as a space would. */
  pageUrl: URL;
  messages: PreviewMessage[];
  events: EventEmitter<{ message: [PreviewMessage] }>;
  close(): Promise<void>;
}

const SPACE = "DEMO-SPACE";
const MAX_BODY_BYTES = 64 * 1024;
/** An SSE comment this often keeps idle proxies and browsers from dropping the stream. */
const KEEPALIVE_MS = 15_000;

/** The line a reader sees first: the card's title, or the text's first line. */
export function headline(message: ChatMessage): string {
  const card = message.cardsV2?.[0]?.card as { header?: { title?: unknown } } | undefined;
  const title = card?.header?.title;
  return typeof title === "string" ? title : (plainTextOf(message).split("\n")[0] ?? "");
}

function answerJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify(body));
}

function chatError(res: ServerResponse, code: number, message: string, status: string): void {
  answerJson(res, code, { error: { code, message, status } });
}

/** Only a page asked for by a loopback name: a web site cannot rebind its name onto the preview. */
function fromLoopback(req: IncomingMessage): boolean {
  const host = req.headers.host ?? "";
  try {
    return isLoopbackHost(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

function isJson(req: IncomingMessage): boolean {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  return type === "application/json";
}

export async function startChatPreview(host = "127.0.0.1", port = 0): Promise<ChatPreview> {
  const messages: PreviewMessage[] = [];
  const events = new EventEmitter<{ message: [PreviewMessage] }>();
  const sseData = (entry: PreviewMessage) => `data: ${JSON.stringify(entry)}\n\n`;

  const receive = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      let message: ChatMessage;
      try {
        message = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ChatMessage;
      } catch {
        chatError(res, 400, "Invalid JSON payload", "INVALID_ARGUMENT");
        return;
      }
      const entry: PreviewMessage = {
        n: messages.length + 1,
        receivedAt: Date.now(),
        threadKey: message.thread?.threadKey,
        message,
      };
      messages.push(entry);
      events.emit("message", entry);
      answerJson(res, 200, { name: `spaces/${SPACE}/messages/${entry.n}` });
    });
  };

  // Every message so far, then each new one as it comes; the page drops numbers it has shown.
  const stream = (res: ServerResponse) => {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=UTF-8",
      "cache-control": "no-store",
    });
    for (const entry of messages) res.write(sseData(entry));
    const send = (entry: PreviewMessage) => res.write(sseData(entry));
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
    events.on("message", send);
    res.on("close", () => {
      clearInterval(keepalive);
      events.off("message", send);
    });
  };

  const server: Server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? "/", "http://preview.invalid");
    if (!fromLoopback(req)) {
      chatError(res, 403, "The preview answers only to a loopback address", "PERMISSION_DENIED");
    } else if (req.method === "POST" && pathname === `/v1/spaces/${SPACE}/messages`) {
      // A web page can POST a form or text/plain to any address without asking; JSON it cannot
      // send cross-site without a CORS preflight, which this server never grants.
      if (isJson(req)) receive(req, res);
      else chatError(res, 415, "Send application/json", "INVALID_ARGUMENT");
    } else if (req.method === "GET" && pathname === "/") {
      res.writeHead(200, {
        "content-type": "text/html; charset=UTF-8",
        "cache-control": "no-store",
        // The page needs its own inline script and style, and nothing from anywhere else.
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      });
      res.end(PREVIEW_PAGE_HTML);
    } else if (req.method === "GET" && pathname === "/stream") {
      stream(res);
    } else if (req.method === "GET" && pathname === "/messages") {
      answerJson(res, 200, { messages });
    } else {
      chatError(res, 404, "Not found", "NOT_FOUND");
    }
  });
  server.listen(port, host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const origin = `http://${host}:${address.port}`;

  return {
    webhookUrl: new URL(`${origin}/v1/spaces/${SPACE}/messages?key=demo-key&token=demo-token`),
    pageUrl: new URL(`${origin}/`),
    messages,
    events,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
