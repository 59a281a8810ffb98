import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readAdmin } from "../../src/adapter/admin-client.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";

/**
 * What `status` reads from the address in adapter.json: a file, so the address is checked before
 * anything is asked of it.
 */
let server: Server;
let port: number;
let requests: string[];

beforeEach(async () => {
  requests = [];
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, status: "ok" }));
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(
      [
        "# HELP vast_gchat_events_received_total Events accepted and kept.",
        "vast_gchat_events_received_total 7",
        "vast_gchat_events_duplicate_total 2",
        'vast_gchat_events_rejected_total{reason="invalid_signature"} 5',
        'vast_gchat_events_rejected_total{reason="invalid_json"} 0',
        "vast_gchat_events_delivered_total 6",
        "vast_gchat_delivery_retries_total 3",
        "vast_gchat_events_dead_total 1",
        'vast_gchat_queue_depth{space="AAAA"} 1',
      ].join("\n"),
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});
afterEach(async () => {
  server.close();
  await once(server, "close");
});

describe("readAdmin", () => {
  it("reads the health and the counters of a loopback listener", async () => {
    expect(await readAdmin(`http://127.0.0.1:${port}`)).toEqual({
      health: { ok: true, status: "ok" },
      counters: {
        received: 7,
        duplicates: 2,
        rejected: { invalid_signature: 5 },
        delivered: 6,
        retries: 3,
        dead: 1,
      },
    });
    expect(requests.sort()).toEqual(["GET /health", "GET /metrics"]);
  });

  it.each([
    ["every address", "http://0.0.0.0:{port}"],
    ["user info", "http://someone:pw@127.0.0.1:{port}"],
    ["another scheme", "ftp://127.0.0.1:{port}"],
    ["not a URL", "127.0.0.1:{port}"],
  ])("asks nothing of an address with %s", async (_name, origin) => {
    const answer = await readAdmin(origin.replace("{port}", String(port)));
    expect(answer).toEqual({ health: undefined, counters: undefined });
    expect(requests).toEqual([]);
  });

  it("says nothing when no one listens", async () => {
    const nobody = await freeLoopbackPort();
    expect(await readAdmin(`http://127.0.0.1:${nobody}`)).toEqual({
      health: undefined,
      counters: undefined,
    });
  });
});
