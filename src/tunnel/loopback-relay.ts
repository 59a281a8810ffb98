import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import type { OpenTunnel, TunnelProvider } from "./types.js";

/**
 * The demo's stand-in for a tunnel: a loopback port that relays every connection, byte for byte,
 * to the adapter's port, as a tunnel's local end does. Its address exists before the adapter
 * starts (so `init` can give it to the webhook, like a reserved tunnel domain); `provider` is what
 * `serve` opens and closes, which connects the relay to the adapter's port and cuts it off again.
 */
export interface LoopbackRelay {
  /** The relay's "public" base URL: http://127.0.0.1:PORT */
  url: string;
  provider: TunnelProvider;
  close(): Promise<void>;
}

export async function startLoopbackRelay(): Promise<LoopbackRelay> {
  let targetPort: number | undefined;
  const sockets = new Set<Socket>();
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };

  const server = createServer((incoming) => {
    // Nothing behind the tunnel yet: the caller sees a dropped connection, as with a real one.
    if (targetPort === undefined) {
      incoming.destroy();
      return;
    }
    const outgoing = connect(targetPort, "127.0.0.1");
    for (const socket of [incoming, outgoing]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      // One side failing ends both, as a dropped tunnel connection would.
      socket.on("error", () => {
        incoming.destroy();
        outgoing.destroy();
      });
    }
    incoming.pipe(outgoing).pipe(incoming);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  const provider: TunnelProvider = {
    name: "loopback",
    async open({ port }): Promise<OpenTunnel> {
      targetPort = port;
      let markEnded: () => void = () => {};
      const ended = new Promise<{ reason: string }>((resolve) => {
        markEnded = () => resolve({ reason: "the loopback relay was closed" });
      });
      return {
        url,
        ended,
        async close() {
          targetPort = undefined;
          dropAll();
          markEnded();
        },
      };
    },
  };

  return {
    url,
    provider,
    async close() {
      targetPort = undefined;
      dropAll();
      server.close();
      await once(server, "close");
    },
  };
}
