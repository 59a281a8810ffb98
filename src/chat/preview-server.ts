import { EventEmitter, once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type ChatMessage, plainTextOf } from "./render.js";

/**
 * A local stand-in for a Chat space, for the demo: a loopback server that takes what the worker
 * posts to an incoming-webhook URL, answers as Chat does, and keeps each message to show it.
 */
export interface PreviewMessage {
  receivedAt: number;
  threadKey: string | undefined;
  message: ChatMessage;
}

export interface ChatPreview {
  /** An incoming-webhook URL of Chat's shape, on loopback. */
  webhookUrl: URL;
  messages: PreviewMessage[];
  events: EventEmitter<{ message: [PreviewMessage] }>;
  close(): Promise<void>;
}

const SPACE = "DEMO-SPACE";
const MAX_BODY_BYTES = 64 * 1024;

/** The line a reader sees first: the card's title, or the text's first line. */
export function headline(message: ChatMessage): string {
  const card = message.cardsV2?.[0]?.card as { header?: { title?: unknown } } | undefined;
  const title = card?.header?.title;
  return typeof title === "string" ? title : (plainTextOf(message).split("\n")[0] ?? "");
}

export async function startChatPreview(host = "127.0.0.1", port = 0): Promise<ChatPreview> {
  const messages: PreviewMessage[] = [];
  const events = new EventEmitter<{ message: [PreviewMessage] }>();

  const server: Server = createServer((req, res) => {
    const answer = (status: number, body: object) => {
      res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://preview.invalid");
    if (req.method !== "POST" || url.pathname !== `/v1/spaces/${SPACE}/messages`) {
      answer(404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
      return;
    }
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
        answer(400, {
          error: { code: 400, message: "Invalid JSON payload", status: "INVALID_ARGUMENT" },
        });
        return;
      }
      const entry = { receivedAt: Date.now(), threadKey: message.thread?.threadKey, message };
      messages.push(entry);
      events.emit("message", entry);
      answer(200, { name: `spaces/${SPACE}/messages/${messages.length}` });
    });
  });
  server.listen(port, host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;

  return {
    webhookUrl: new URL(
      `http://${host}:${address.port}/v1/spaces/${SPACE}/messages?key=demo-key&token=demo-token`,
    ),
    messages,
    events,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
