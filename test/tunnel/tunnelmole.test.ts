import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import {
  TUNNELMOLE_SERVICE,
  tunnelmoleService,
  tunnelmoleTunnel,
} from "../../src/tunnel/tunnelmole.js";
import { type OpenTunnel, TunnelError } from "../../src/tunnel/types.js";
import { type FakeService, startService } from "./tunnelmole-service.js";

/**
 * Our own tunnelmole client against a stand-in for tunnelmole's service
 * (test/fixtures/tunnel/fake-tunnelmole-service.mjs, a real process on loopback that speaks the
 * published protocol): what it sends, how requests go through, how the tunnel ends.
 */

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The adapter's stand-in: records each request, answers 201 with a header and a JSON body. */
async function startAdapter(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(201, { "content-type": "application/json", "x-adapter": "yes" });
      res.end(JSON.stringify({ ok: true, instance: "abc" }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port, seen };
}

let dir: string;
let service: FakeService;
let tunnel: OpenTunnel | undefined;
let adapter: Awaited<ReturnType<typeof startAdapter>> | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-tunnelmole-"));
  service = await startService(join(dir, "received.jsonl"));
});
afterEach(async () => {
  await tunnel?.close();
  tunnel = undefined;
  adapter?.server.close();
  adapter = undefined;
  await service.close();
  rmSync(dir, { recursive: true, force: true });
});

function provider(env: NodeJS.ProcessEnv = {}) {
  return tunnelmoleTunnel({ env: { VAST_GCHAT_TUNNELMOLE_SERVICE: service.url, ...env } });
}

describe("tunnelmoleService", () => {
  it("is tunnelmole's own service unless VAST_GCHAT_TUNNELMOLE_SERVICE names another", () => {
    expect(tunnelmoleService({}).href).toBe(`${TUNNELMOLE_SERVICE}/`);
    expect(TUNNELMOLE_SERVICE).toBe("wss://service.tunnelmole.com:8083");
    expect(
      tunnelmoleService({ VAST_GCHAT_TUNNELMOLE_SERVICE: "wss://tm.example.org:8083" }).host,
    ).toBe("tm.example.org:8083");
    expect(tunnelmoleService({ VAST_GCHAT_TUNNELMOLE_SERVICE: "ws://127.0.0.1:5000" }).host).toBe(
      "127.0.0.1:5000",
    );
  });

  it("refuses a service that is not wss://, but for loopback", () => {
    for (const url of ["ws://tm.example.org:8083", "https://tm.example.org", "not a url"]) {
      let thrown: unknown;
      try {
        tunnelmoleService({ VAST_GCHAT_TUNNELMOLE_SERVICE: url });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TunnelError);
      expect((thrown as TunnelError).reason).toBe("setup");
    }
  });
});

describe("tunnelmoleTunnel", () => {
  it("sends only an initialise with a fresh client id, and takes the hostname it is given", async () => {
    const output: string[] = [];
    tunnel = await provider().open({ port: 9, onOutput: (line) => output.push(line) });
    expect(tunnel.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(output).toContain(`tunnelmole assigned ${tunnel.url}`);
    await tunnel.close();
    tunnel = await provider().open({ port: 9 });

    const sent = service.received();
    expect(sent).toHaveLength(2);
    for (const message of sent) {
      // Nothing about the machine: no connectionInfo (Node version, platform), no api key.
      expect(Object.keys(message).sort()).toEqual(["clientId", "type"]);
      expect(message.type).toBe("initialise");
      expect(message.clientId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
    // A new id each time: nothing is kept that ties one connection to the next.
    expect(sent[0]?.clientId).not.toBe(sent[1]?.clientId);
  });

  it("passes a request through to the adapter and its answer back", async () => {
    adapter = await startAdapter();
    tunnel = await provider().open({ port: adapter.port });
    const body = JSON.stringify({ event_id: "evt-1", text: "héllo" });
    const answer = await request(`${tunnel.url}/hook?x=1`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-vast-signature": "sig" },
      body,
    });
    expect(answer.statusCode).toBe(201);
    expect(answer.headers["x-adapter"]).toBe("yes");
    expect(await answer.body.json()).toEqual({ ok: true, instance: "abc" });
    expect(adapter.seen).toHaveLength(1);
    expect(adapter.seen[0]).toMatchObject({ method: "POST", url: "/hook?x=1", body });
    expect(adapter.seen[0]?.headers["x-vast-signature"]).toBe("sig");
    expect(adapter.seen[0]?.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
  });

  it("answers 502 through the tunnel when nothing listens on the adapter's port", async () => {
    tunnel = await provider().open({ port: await freeLoopbackPort() });
    const answer = await request(`${tunnel.url}/health`);
    expect(answer.statusCode).toBe(502);
    expect(await answer.body.text()).toMatch(/the adapter did not answer/);
  });

  it("ends when the service drops the connection, and the old URL is then answered 404", async () => {
    tunnel = await provider().open({ port: 9 });
    await service.command("drop");
    expect((await tunnel.ended).reason).toBe(
      "the connection to tunnelmole's service closed (code 1006)",
    );
    const answer = await request(`${tunnel.url}/`);
    expect(answer.statusCode).toBe(404);
    expect(await answer.body.text()).toMatch(/^No matching tunnelmole domain/);
  });

  it("ends when the service asks the client to disconnect, and logs what it says", async () => {
    const output: string[] = [];
    tunnel = await provider().open({ port: 9, onOutput: (line) => output.push(line) });
    await service.command("say Your connection will end \u001b[2Jsoon");
    await service.command("disconnect");
    expect((await tunnel.ended).reason).toBe("tunnelmole's service asked the client to disconnect");
    expect(output).toContain("tunnelmole says: Your connection will end  [2Jsoon");
  });

  it("ends rather than buffer a message larger than any the service sends", async () => {
    adapter = await startAdapter();
    tunnel = await provider().open({ port: adapter.port });
    // 7 MiB is within the limit (a 5 MB request in base64): not JSON, ignored, the tunnel stays.
    await service.command(`huge ${7 * 1024 * 1024}`);
    expect((await request(`${tunnel.url}/health`)).statusCode).toBe(201);
    // 9 MiB is refused from its frame header on, before it is read.
    await service.command(`huge ${9 * 1024 * 1024}`);
    expect((await tunnel.ended).reason).toBe(
      "the connection to tunnelmole's service closed (code 1006)",
    );
  });

  it("close() ends the connection, and `ended` says so", async () => {
    tunnel = await provider().open({ port: 9 });
    await tunnel.close();
    expect((await tunnel.ended).reason).toBe("the tunnelmole tunnel was closed");
    const answer = await request(`${tunnel.url}/`);
    expect(answer.statusCode).toBe(404);
  });

  it("fails to open when the service cannot be reached, or gives no hostname in time", async () => {
    const unreachable = await tunnelmoleTunnel({
      env: { VAST_GCHAT_TUNNELMOLE_SERVICE: `ws://127.0.0.1:${await freeLoopbackPort()}` },
    })
      .open({ port: 9 })
      .catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(TunnelError);
    expect((unreachable as TunnelError).reason).toBe("failed");
    expect((unreachable as TunnelError).message).toMatch(
      /could not reach tunnelmole's service at 127\.0\.0\.1:\d+/,
    );

    await service.command("mute");
    const silent = await provider()
      .open({ port: 9, timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect((silent as TunnelError).reason).toBe("failed");
    expect((silent as TunnelError).message).toBe("tunnelmole gave no public URL within 0.5 s.");
  });

  it("needs no tunnelmole package: nothing of it is installed", async () => {
    // The package's install script reported the platform to its service, and its client kept an
    // id in ~/.tmole.sh (docs/supply-chain.md). None of that is in an install any more.
    await expect(import("tunnelmole" as string)).rejects.toThrow();
  });
});
