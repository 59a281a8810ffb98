import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The ceiling: node:http on loopback that reads each body and answers 200 {"ok":true}, nothing
 * else. Driven by the same generator, its accept rate is the most any Node adapter could reach on
 * this machine, and shows whether the generator itself is the bottleneck.
 */
const ANSWER = JSON.stringify({ ok: true });

const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  // Read the body as a real adapter must before it can verify the signature.
  req.resume();
  req.on("end", () => {
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(ANSWER),
    });
    res.end(ANSWER);
  });
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  // The same ready line as `vast-gchat serve`, so the bench waits for both the same way.
  console.log(JSON.stringify({ msg: "ready", url: `http://127.0.0.1:${port}/` }));
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
