import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { eventStorePath } from "../../src/config/paths.js";
import { hasUnflaggedNodeSqlite } from "../../src/delivery/sqlite/sqlite-driver.js";
import { openSqliteStore } from "../../src/delivery/sqlite/sqlite-store.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { SQLITE_DRIVERS_HERE } from "../delivery/sqlite/drivers.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import { postSigned } from "../support/sign.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/** `status` against the Vast.ai emulator: what it prints of the webhook and of the adapter. */
let world: World;
let proxy: Server | undefined;
let serve: CliProcess | undefined;
/** The list replies the proxy altered: a test that never went through it would prove nothing. */
let altered = 0;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null)
    serve.child.kill("SIGKILL");
  await serve?.exited;
  serve = undefined;
  if (proxy) {
    proxy.closeAllConnections();
    proxy.close();
    await once(proxy, "close");
    proxy = undefined;
  }
  await world.close();
});

const INJECTED_SECRET = "whsec-injected-into-the-list-reply-7f3e";

/**
 * Vast.ai's API in front of the emulator, except that every webhook in a list reply carries a
 * secret and a field nobody knows: what a future Vast.ai reply might hold.
 */
async function startLeakyApi(): Promise<string> {
  altered = 0;
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && name !== "host" && name !== "content-length")
          headers.set(name, value);
      }
      const upstream = await fetch(`${world.vast.url}${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      let text = await upstream.text();
      if (req.method === "GET" && /\/webhooks\/$/.test(req.url ?? "")) {
        const json = JSON.parse(text) as { webhooks: Array<Record<string, unknown>> };
        for (const webhook of json.webhooks) {
          webhook.webhook_secret = INJECTED_SECRET;
          webhook.internal_note = "not for printing";
        }
        altered += 1;
        text = JSON.stringify(json);
      }
      res.writeHead(upstream.status, { "content-type": "application/json" });
      res.end(text);
    });
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

describe("status shows the webhook by the fields it knows", () => {
  it("never prints a secret or an unknown field that Vast.ai's reply carries", async () => {
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const api = await startLeakyApi();
    const json = await world.run(["status", "--json"], { VAST_API_URL: api });
    const human = await world.run(["status"], { VAST_API_URL: api });
    expect(json.code).toBe(0);
    expect(human.code).toBe(0);
    const report = JSON.parse(json.stdout) as { webhook: Record<string, unknown> };
    const [webhook] = world.vast.webhooks();
    expect(report.webhook).toEqual({
      id: webhook?.id,
      name: webhook?.name,
      url: webhook?.webhook_url,
      event_types: webhook?.event_types,
    });
    const everything = json.stdout + json.stderr + human.stdout + human.stderr;
    expect(everything).not.toContain(INJECTED_SECRET);
    expect(everything).not.toContain("not for printing");
    expect(altered).toBe(2);
    expect(human.stdout).toContain(`Webhook           ${webhook?.id} "`);
  });
});

interface StatusReport {
  adapter: {
    origin: string;
    adminOrigin: string;
    health: Record<string, unknown> | null;
    counters: Record<string, unknown> | null;
  } | null;
}

describe("status and a running serve", () => {
  it("reads the detailed health and the counters from the loopback listener", async () => {
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    const init = await world.run(
      initArgs(world, "--public-url", url, "--port", String(port), "--no-chat-check"),
      {},
      API_KEY,
    );
    expect(init.code).toBe(0);
    serve = spawnCli(["serve"], world.env());
    const ready = await serve.waitForLog((record) => record.msg === "ready");
    const secret = world.vast.secretOf(1) ?? "";
    const event = sampleEvent("low_credit");
    expect((await postSigned(`${url}/`, secret, event)).status).toBe(200);
    await serve.waitForLog((r) => r.msg === "delivered" && r.event_id === event.event_id);
    expect((await postSigned(`${url}/`, "not-the-secret", sampleEvent("outbid"))).status).toBe(401);

    const json = await world.run(["status", "--json"]);
    expect(json.code).toBe(0);
    const { adapter } = JSON.parse(json.stdout) as StatusReport;
    expect(adapter?.origin).toBe(url);
    expect(adapter?.adminOrigin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(adapter?.adminOrigin).not.toBe(url);
    expect(ready.admin_url).toBe(adapter?.adminOrigin);
    expect(adapter?.health).toMatchObject({
      ok: true,
      status: "ok",
      store: "ok",
      queue: { pending: 0 },
      dead: 0,
    });
    expect(adapter?.counters).toEqual({
      received: 1,
      duplicates: 0,
      rejected: { invalid_signature: 1 },
      delivered: 1,
      retries: 0,
      dead: 0,
    });
    const human = await world.run(["status"]);
    expect(human.stdout).toContain(
      "since start     1 received, 0 duplicates, 1 rejected, 1 delivered, 0 retries, 0 dead",
    );
    expect(human.stdout).toMatch(/health {10}\{"ok":true,"status":"ok"/);
    // What the tunnel forwards to says only that it is alive, and which adapter it is.
    const publicHealth = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    expect(Object.keys(publicHealth).sort()).toEqual(["instance", "ok"]);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);

    // Neither listener nor status shows a secret: not the signing secret, the key, Chat's token.
    const adminText = await Promise.all(
      ["/health", "/metrics"].map(async (path) =>
        (await fetch(`${adapter?.adminOrigin}${path}`)).text(),
      ),
    );
    const everything = [json.stdout, json.stderr, human.stdout, human.stderr, ...adminText].join(
      "",
    );
    for (const value of [secret, API_KEY, "fake-token-456", "fake-key-123"]) {
      expect(everything).not.toContain(value);
    }
  });
});

interface StoreReport {
  store: { kind: string; driver: string | null; path: string; exists: boolean };
  warnings: string[];
}

/** The driver this Node chooses by itself: node:sqlite from 22.13 on, else better-sqlite3. */
const AUTOMATIC = hasUnflaggedNodeSqlite() ? "node:sqlite" : "better-sqlite3";

describe("status names the event store and the driver it runs on here", () => {
  it("by itself, the automatic choice", async () => {
    const path = eventStorePath(world.configDir);
    const json = await world.run(["status", "--json"]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as StoreReport;
    expect(report.store).toEqual({ kind: "sqlite", driver: AUTOMATIC, path, exists: false });
    const human = await world.run(["status"]);
    expect(human.stdout).toContain(
      `Store             sqlite (${AUTOMATIC}) ${path} (not created yet)`,
    );
  });

  it.each(SQLITE_DRIVERS_HERE)("%s, when VAST_GCHAT_SQLITE_DRIVER names it", async (driver) => {
    const path = eventStorePath(world.configDir);
    await (await openSqliteStore(path, { driver })).close();
    const extra = { VAST_GCHAT_SQLITE_DRIVER: driver };
    const json = await world.run(["status", "--json"], extra);
    expect((JSON.parse(json.stdout) as StoreReport).store).toEqual({
      kind: "sqlite",
      driver,
      path,
      exists: true,
    });
    const human = await world.run(["status"], extra);
    expect(human.stdout).toContain(`Store             sqlite (${driver}) ${path}\n`);
  });

  it("a driver that cannot be had is a warning that says what to do", async () => {
    const json = await world.run(["status", "--json"], { VAST_GCHAT_SQLITE_DRIVER: "postgres" });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as StoreReport;
    expect(report.store.driver).toBeNull();
    expect(report.warnings).toContain(
      'Event store: VAST_GCHAT_SQLITE_DRIVER must be node or better-sqlite3, not "postgres".',
    );
    const human = await world.run(["status"], { VAST_GCHAT_SQLITE_DRIVER: "postgres" });
    expect(human.stdout).toContain("Store             sqlite (no driver) ");
  });

  it("without better-sqlite3 (an install without its build): node:sqlite, or one sentence on older Node", async () => {
    // A loader hook that makes better-sqlite3 not found, as when it was never built or installed.
    const hooks = mkdtempSync(join(tmpdir(), "vast-gchat-hook-"));
    onTestFinished(() => rmSync(hooks, { recursive: true, force: true }));
    const hook = join(hooks, "hide-better-sqlite3.mjs");
    const resolver = `export async function resolve(specifier, context, next) {
      if (specifier === "better-sqlite3") {
        throw Object.assign(new Error("Cannot find package 'better-sqlite3'"), { code: "ERR_MODULE_NOT_FOUND" });
      }
      return next(specifier, context);
    }`;
    writeFileSync(
      hook,
      `import { register } from "node:module";\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(resolver)}`)});\n`,
    );
    const extra = { NODE_OPTIONS: `--import=${pathToFileURL(hook).href}` };
    const result = await world.runProcess(["status", "--json"], extra);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as StoreReport;
    if (hasUnflaggedNodeSqlite()) {
      expect(report.store.driver).toBe("node:sqlite");
      expect(report.warnings).toEqual([]);
      expect(result.stderr).toBe("");
    } else {
      expect(report.store.driver).toBeNull();
      expect(report.warnings).toEqual([
        expect.stringMatching(
          /^Event store: no SQLite driver: Node\.js v[\d.]+ has no built-in SQLite and better-sqlite3 is not installed; run vast-gchat on Node\.js 22\.13 or later \(SQLite built in\), or run `npm install better-sqlite3` where vast-gchat is installed\.$/,
        ),
      ]);
    }
  });
});
