#!/usr/bin/env node
// A stand-in for a tunnel provider, run by `serve --tunnel-command "node fake-tunnel.mjs {port}"`.
// It forwards a loopback port of its own to the adapter's port and prints its URL, as tunnel
// programs do. Tests steer it with signals: SIGUSR1 makes it go silent (keeps running, stops
// forwarding: requests hang), SIGUSR2 makes it forward again; kill it to make it die.
// FAKE_TUNNEL_STATE names a file where it writes {"pid", "url"}, so a test can find it. While the
// file FAKE_TUNNEL_DEAD names exists, every tunnel answers as cloudflared's edge does for a tunnel
// that is gone (530, error 1033): a tunnel that dies for good, however often it is reopened.
import { existsSync, writeFileSync } from "node:fs";
import { createServer, request } from "node:http";

const target = Number(process.argv[2]);
let silent = false;

const server = createServer((req, res) => {
  if (silent) return; // a dead tunnel that still accepts connections
  if (process.env.FAKE_TUNNEL_DEAD && existsSync(process.env.FAKE_TUNNEL_DEAD)) {
    res.writeHead(530, { "content-type": "text/html" });
    res.end("error code: 1033");
    return;
  }
  const upstream = request(
    { host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", () => {
    res.writeHead(502);
    res.end("fake tunnel: the local port does not answer");
  });
  req.pipe(upstream);
});

server.listen(0, "127.0.0.1", () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  if (process.env.FAKE_TUNNEL_STATE) {
    writeFileSync(process.env.FAKE_TUNNEL_STATE, JSON.stringify({ pid: process.pid, url }));
  }
  console.log(`fake-tunnel: forwarding ${url} -> 127.0.0.1:${target}`);
});

process.on("SIGUSR1", () => {
  silent = true;
});
process.on("SIGUSR2", () => {
  silent = false;
});
process.on("SIGTERM", () => process.exit(0));
