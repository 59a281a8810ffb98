import { once } from "node:events";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small load balancer on loopback, the user's own URL in front of replicas: each request goes to
 * the next backend in turn; one that cannot be reached (a replica killed, or restarting) is skipped
 * for the next, and only when none answers does the proxy answer 502, which Vast.ai retries.
 * Answers are passed through as they are, 503 included.
 */
export interface RoundRobinProxy {
  url: string;
  /** Requests each backend answered, by index. */
  readonly answered: number[];
  close(): Promise<void>;
}

export async function startRoundRobinProxy(backends: string[]): Promise<RoundRobinProxy> {
  let next = 0;
  const answered = backends.map(() => 0);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const first = next++ % backends.length;
      const tryBackend = (tries: number) => {
        const index = (first + tries) % backends.length;
        const target = new URL(req.url ?? "/", backends[index]);
        const forward = request(
          target,
          { method: req.method, headers: { ...req.headers, host: target.host } },
          (answer) => {
            answered[index] = (answered[index] ?? 0) + 1;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forward.on("error", () => {
          if (tries + 1 < backends.length) tryBackend(tries + 1);
          else if (!res.headersSent) {
            res.writeHead(502, { "content-type": "application/json" });
            res.end('{"ok":false,"error":"bad_gateway"}');
          }
        });
        forward.end(body);
      };
      tryBackend(0);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    answered,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
