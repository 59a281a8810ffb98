import { once } from "node:events";
import { createServer } from "node:net";

/**
 * A loopback port free right now, for a program that must be told its port before it starts
 * (cloudflared's metrics server; in tests, a serve started with --port). Another process could
 * take it in between; on one machine that race is remote.
 */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
