import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { type CliProcess, cleanEnv, spawnCli } from "../support/cli-process.js";
import { FakeChat } from "../support/fake-chat.js";
import { runInProcess } from "../support/run-program.js";

/** serve's loopback listener as a process: where it is, and --admin-port for a fixed scrape. */
const SECRET = "whsec-admin-port-5e4d3c2b1a";
let dir: string;
let chat: FakeChat;
let serve: CliProcess | undefined;
let blocker: Server | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-admin-"));
  chat = await FakeChat.start();
});
afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null)
    serve.child.kill("SIGKILL");
  await serve?.exited;
  serve = undefined;
  if (blocker) {
    blocker.close();
    await once(blocker, "close");
    blocker = undefined;
  }
  await chat.close();
  rmSync(dir, { recursive: true, force: true });
});

function env() {
  return cleanEnv({
    VAST_WEBHOOK_SECRET: SECRET,
    GOOGLE_CHAT_URL: chat.webhookUrl(),
    VAST_GCHAT_CONFIG_DIR: dir,
  });
}

describe("serve --admin-port", () => {
  it("puts the loopback listener on that port and its address in the runtime state", async () => {
    const adminPort = await freeLoopbackPort();
    serve = spawnCli(["serve", "--port", "0", "--admin-port", String(adminPort)], env());
    const ready = await serve.waitForLog((record) => record.msg === "ready");
    const admin = `http://127.0.0.1:${adminPort}`;
    expect(ready.admin_url).toBe(admin);
    const state = JSON.parse(readFileSync(join(dir, "adapter.json"), "utf8")) as {
      adminOrigin?: string;
    };
    expect(state.adminOrigin).toBe(admin);
    const metrics = await fetch(`${admin}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("vast_gchat_events_received_total 0");
  });

  it("a port in use is one line naming --admin-port, exit 2", async () => {
    blocker = createServer().listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const taken = (blocker.address() as { port: number }).port;
    const result = await runInProcess(
      ["serve", "--port", "0", "--admin-port", String(taken)],
      env(),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Port ${taken} is already in use`);
    expect(result.stderr).toContain("--admin-port");
    expect(result.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
  });

  it("the adapter's own port is refused with one line, exit 2", async () => {
    const result = await runInProcess(["serve", "--port", "9123", "--admin-port", "9123"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--admin-port must differ from the adapter's port (9123)");
    expect(result.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
  });
});
