import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import { API_KEY, initWaitingArgs, startWorld, type World } from "../support/world.js";
import { startService } from "./tunnelmole-service.js";

/**
 * serve with a tunnel: a fake tunnel program (test/support/fake-tunnel.mjs) forwards a loopback
 * port and prints its URL; the test makes it die or go silent and watches the webhook follow.
 */
const FAKE_TUNNEL = fileURLToPath(new URL("../support/fake-tunnel.mjs", import.meta.url));
let world: World;
let serve: CliProcess | undefined;
let stateFile: string;

beforeEach(async () => {
  world = await startWorld();
  stateFile = join(world.configDir, "fake-tunnel.json");
  const init = await world.run(initWaitingArgs(world), {}, API_KEY);
  expect(init.code).toBe(0);
});
afterEach(async () => {
  // Stop serve as a user would, so that it stops its tunnel; SIGKILL after 10 s and the tunnel kill
  // below are only backstops.
  await serve?.stop(10_000);
  serve = undefined;
  try {
    process.kill(tunnelState().pid, "SIGKILL");
  } catch {
    // No fake tunnel, or already gone.
  }
  await world.close();
});

function tunnelState(): { pid: number; url: string } {
  return JSON.parse(readFileSync(stateFile, "utf8")) as { pid: number; url: string };
}

/** Alive and not a zombie (an orphan reparented to an init that has not reaped it yet). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function startServe(extra: string[] = [], env: Record<string, string> = {}) {
  serve = spawnCli(
    [
      "serve",
      "--port",
      "0",
      "--tunnel-command",
      `${process.execPath} ${FAKE_TUNNEL} {port}`,
      "--probe-interval",
      "0.2",
      ...extra,
    ],
    world.env({
      FAKE_TUNNEL_STATE: stateFile,
      VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNEL_STATE",
      VAST_GCHAT_TUNNEL_BACKOFF_MS: "50",
      ...env,
    }),
  );
  const ready = await serve.waitForLog((r) => r.msg === "ready");
  return { serve, ready };
}

async function deliverThroughTunnel(type: string) {
  const report = await world.vast.deliver(1, { type });
  expect(report.attempts.map((a) => a.status)).toEqual([200]);
  await world.chat.waitFor((chat) =>
    chat.messages.some((m) => JSON.stringify(m.body).includes(report.eventId)),
  );
}

it("opens the tunnel, points the webhook at it, and events flow through it", async () => {
  const { ready } = await startServe();
  const { url } = tunnelState();
  expect(ready.public_url).toBe(`${url}/`);
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${url}/`);
  await deliverThroughTunnel("low_credit");
});

it("restarts a tunnel that dies and points the webhook at the new URL", async () => {
  const { serve } = await startServe();
  const first = tunnelState();
  process.kill(first.pid, "SIGKILL");
  await serve.waitForLog((r) => r.msg === "tunnel lost");
  const reopened = await serve.waitForLog(
    (r) => r.msg === "tunnel open" && r.public_url !== first.url,
  );
  const second = tunnelState();
  expect(reopened.public_url).toBe(second.url);
  await serve.waitForLog((r) => r.msg === "webhook pointed" && r.url === `${second.url}/`);
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${second.url}/`);
  await deliverThroughTunnel("instance_stopped");
});

it("re-points the webhook within a second of the tunnel's death, with the default backoff", async () => {
  // The window in which Vast.ai's deliveries go to a dead URL: behind ngrok or tunnelmole they are
  // answered 404 and lost (docs/tunnels.md). bench/repoint.ts measures it over many deaths.
  const { serve } = await startServe([], { VAST_GCHAT_TUNNEL_BACKOFF_MS: "" });
  const first = tunnelState();
  const before = world.vast.requests.length;
  const diedAt = Date.now();
  process.kill(first.pid, "SIGKILL");
  const pointed = await serve.waitForLog(
    (r) => r.msg === "webhook pointed" && r.url !== `${first.url}/`,
  );
  expect(Date.parse(String(pointed.time)) - diedAt).toBeLessThan(1000);
  // A new URL cannot be the one the webhook has: no lookup first, the PUT is the first call.
  expect(world.vast.requests[before]?.method).toBe("PUT");
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${tunnelState().url}/`);
});

it("notices a tunnel that stays up but stops forwarding, and replaces it", async () => {
  const { serve } = await startServe();
  const first = tunnelState();
  process.kill(first.pid, "SIGUSR1");
  const lost = await serve.waitForLog((r) => r.msg === "tunnel lost");
  expect(String(lost.reason)).toContain("the tunnel stopped forwarding");
  await serve.waitForLog((r) => r.msg === "webhook pointed" && r.url !== `${first.url}/`);
  expect(isRunning(first.pid)).toBe(false);
  await deliverThroughTunnel("outbid");
});

it("stops the tunnel with itself and leaves no process behind", async () => {
  const { serve } = await startServe();
  const { pid } = tunnelState();
  serve.child.kill("SIGTERM");
  expect(await serve.exited).toEqual({ code: 0, signal: null });
  expect(isRunning(pid)).toBe(false);
});

it("on SIGTERM, exits only once all its tunnel command started is gone, each given its grace", async () => {
  // The command's shell starts the tunnel, a helper that takes 300 ms to clean up after SIGTERM
  // and one that ignores SIGTERM, then waits. The shell itself dies at SIGTERM at once.
  const cleanedUp = join(world.configDir, "cleaned-up");
  const listening = join(world.configDir, "listening");
  const slowHelper = join(world.configDir, "slow-to-stop.mjs");
  writeFileSync(
    slowHelper,
    `import { writeFileSync } from "node:fs";
process.on("SIGTERM", () => setTimeout(() => {
  writeFileSync(${JSON.stringify(cleanedUp)}, "done");
  process.exit(0);
}, 300));
setInterval(() => {}, 1000);
writeFileSync(${JSON.stringify(listening)}, "");
`,
  );
  const pids = join(world.configDir, "helpers.pid");
  const command = [
    `${process.execPath} ${slowHelper} & echo $! >> ${pids}`,
    `(trap '' TERM; exec sleep 1000) & echo $! >> ${pids}`,
    `${process.execPath} ${FAKE_TUNNEL} {port} & wait`,
  ].join("; ");
  serve = spawnCli(
    ["serve", "--port", "0", "--tunnel-command", command],
    world.env({ FAKE_TUNNEL_STATE: stateFile, VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNEL_STATE" }),
  );
  await serve.waitForLog((r) => r.msg === "ready");
  // A SIGTERM that came before its handler would not test the grace period.
  await expect.poll(() => existsSync(listening)).toBe(true);
  const helpers = readFileSync(pids, "utf8").trim().split("\n").map(Number);
  const { pid } = tunnelState();
  expect(helpers.map(isRunning)).toEqual([true, true]);
  serve.child.kill("SIGTERM");
  expect(await serve.exited).toEqual({ code: 0, signal: null });
  expect([pid, ...helpers].filter(isRunning)).toEqual([]);
  expect(existsSync(cleanedUp)).toBe(true);
});

it("a serve killed with SIGKILL does not leave its tunnel running", async () => {
  const { serve } = await startServe();
  const { pid } = tunnelState();
  serve.child.kill("SIGKILL");
  expect((await serve.exited).signal).toBe("SIGKILL");
  // No exit hook ran: the watchdog beside the tunnel notices within about a second.
  await expect.poll(() => isRunning(pid), { timeout: 10_000, interval: 100 }).toBe(false);
});

/** serve with a URL of its own and no tunnel; stopped once it is ready. The URL leads nowhere. */
async function serveAt(publicUrl: string) {
  serve = spawnCli(["serve", "--port", "0", "--public-url", publicUrl], world.env());
  await serve.waitForLog((r) => r.msg === "ready");
  serve.child.kill("SIGTERM");
  expect((await serve.exited).code).toBe(0);
  serve = undefined;
}

const puts = () => world.vast.requests.filter((r) => r.method === "PUT").length;

it("does not PUT a URL the webhook already has, unless it could not look", async () => {
  // A closed loopback port: the probe of the public URL fails at once, and nothing leaves loopback.
  const publicUrl = `http://127.0.0.1:${await freeLoopbackPort()}`;
  await serveAt(publicUrl);
  expect(puts()).toBe(1);
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${publicUrl}/`);

  const before = world.vast.requests.length;
  await serveAt(publicUrl);
  // It looked (the API has no GET of one webhook: it lists them) and wrote nothing.
  const calls = world.vast.requests.slice(before).map((r) => `${r.method} ${r.path}`);
  expect(calls.some((call) => /^GET .*\/webhooks\/$/.test(call))).toBe(true);
  expect(puts()).toBe(1);

  // When the list is refused (500: not retried by the client), it writes rather than guess; and
  // Vast.ai refusing the URL as already registered (the emulator counts the webhook's own) is no
  // failure once a second look finds the webhook pointing there.
  world.vast.failNext(/\/webhooks\/$/, 500, 1);
  await serveAt(publicUrl);
  expect(puts()).toBe(2);
  expect(world.vast.webhooks()[0]?.webhook_url).toBe(`${publicUrl}/`);
});

it("fails with Vast.ai's refusal when another webhook holds the URL", async () => {
  const publicUrl = `http://127.0.0.1:${await freeLoopbackPort()}`;
  // A second setup (another config directory) whose webhook takes the URL first.
  const other = join(world.configDir, "other");
  const init = await world.run(
    [
      "init",
      "--api-key-stdin",
      "--chat-url",
      world.chat.webhookUrl(),
      "--tunnel",
      "none",
      "--public-url",
      publicUrl,
      "--name",
      "another machine",
      "--yes",
      "--no-chat-check",
    ],
    { VAST_GCHAT_CONFIG_DIR: other },
    API_KEY,
  );
  expect(init.code).toBe(0);
  expect(world.vast.webhooks().map((w) => w.webhook_url)).toContain(`${publicUrl}/`);
  expect(world.vast.webhooks()).toHaveLength(2);
  serve = spawnCli(["serve", "--port", "0", "--public-url", publicUrl], world.env());
  expect((await serve.exited).code).toBe(1);
  expect(serve.stderr()).toContain("already registered");
});

it("exits 1 with the reason after repeated failures, for a process manager to restart it", async () => {
  serve = spawnCli(
    ["serve", "--port", "0", "--tunnel-command", "echo starting; exit 3"],
    world.env({ VAST_GCHAT_TUNNEL_BACKOFF_MS: "10" }),
  );
  const { code } = await serve.exited;
  expect(code).toBe(1);
  expect(serve.stderr()).toMatch(
    /The tunnel failed 6 times in a row; last: the tunnel command exited with code 3 before giving a public URL\. It said: starting/,
  );
});

it("status shows the tunnel, its URL and the last probe", async () => {
  const { serve } = await startServe(["--verbose"]);
  await serve.waitForLog((r) => r.msg === "tunnel probe ok");
  const result = await world.run(["status", "--json"]);
  const report = JSON.parse(result.stdout) as { adapter: { tunnel?: unknown } };
  expect(report.adapter.tunnel).toMatchObject({
    provider: "command",
    url: tunnelState().url,
    lastProbe: { ok: true },
  });
});

it.each([
  [["--tunnel", "cloudflared"], { CLOUDFLARED_PATH: "/nonexistent/cloudflared" }, /cloudflared/],
  [["--tunnel", "ngrok"], {}, /NGROK_AUTHTOKEN/],
])("a provider that cannot start (%j) gets one sentence and exit 2", async (args, env, message) => {
  serve = spawnCli(["serve", "--port", "0", ...args], world.env(env));
  const { code } = await serve.exited;
  expect(code).toBe(2);
  expect(serve.stderr()).toMatch(message);
  expect(serve.stderr().trim().split("\n").length).toBeLessThanOrEqual(2);
  expect(serve.stderr()).not.toMatch(/\bat .*\.js:\d+/);
});

it("a tunnel command that is not found is a setup problem: exit 2 at once, no retries", async () => {
  serve = spawnCli(
    ["serve", "--port", "0", "--tunnel-command", "no-such-tunnel-program {port}"],
    world.env(),
  );
  const { code } = await serve.exited;
  expect(code).toBe(2);
  expect(serve.stderr()).toMatch(
    /the tunnel command exited with code 127 before giving a public URL\. It said: .*no-such-tunnel-program.*not found/,
  );
  expect(serve.stdout()).not.toContain("tunnel lost");
});

it("gives the tunnel command none of serve's secrets, only the allow-list and what the user names", async () => {
  const dump = join(world.configDir, "tunnel-env.json");
  const DUMP_ENV = fileURLToPath(new URL("../fixtures/tunnel/dump-env.mjs", import.meta.url));
  const chatUrl = world.chat.webhookUrl();
  const secrets = {
    VAST_API_KEY: API_KEY,
    GOOGLE_CHAT_URL: chatUrl,
    VAST_WEBHOOK_SECRET: "whsec-from-the-environment-4f3e2d",
    NGROK_AUTHTOKEN: "ngroktoken-2b1a0f9e8d7c",
  };
  serve = spawnCli(
    [
      "serve",
      "--port",
      "0",
      "--tunnel-command",
      `${process.execPath} ${DUMP_ENV} ${dump} && exec ${process.execPath} ${FAKE_TUNNEL} {port}`,
    ],
    world.env({
      ...secrets,
      UNLISTED_SETTING: "not-for-tunnels",
      FAKE_TUNNEL_STATE: stateFile,
      VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNEL_STATE",
    }),
  );
  await serve.waitForLog((r) => r.msg === "ready");
  const env = JSON.parse(readFileSync(dump, "utf8")) as Record<string, string>;
  const text = JSON.stringify(env);
  const token = new URL(chatUrl).searchParams;
  for (const value of [
    ...Object.values(secrets),
    token.get("key") ?? "no key",
    token.get("token") ?? "no token",
    "not-for-tunnels",
  ]) {
    expect(text).not.toContain(value);
  }
  // Of serve's environment (the test runner's, VAST_API_URL, the config dir, ...), only these.
  const allowed =
    /^(PATH|HOME|USER|LOGNAME|TMPDIR|TZ|LANG|LANGUAGE|LC_\w+|(HTTPS?|ALL|NO)_PROXY|(https?|all|no)_proxy|SSL_CERT_(FILE|DIR)|NODE_EXTRA_CA_CERTS|PWD|OLDPWD|SHLVL|_|FAKE_TUNNEL_STATE)$/;
  expect(Object.keys(env).filter((name) => !allowed.test(name))).toEqual([]);
  expect(env.FAKE_TUNNEL_STATE).toBe(stateFile);
});

it("the default tunnel, tunnelmole: our client opens it, events flow, a dropped one is replaced", async () => {
  const service = await startService(join(world.configDir, "tunnelmole-received.jsonl"));
  try {
    serve = spawnCli(
      ["serve", "--port", "0", "--tunnel", "tunnelmole", "--probe-interval", "0.2"],
      world.env({
        VAST_GCHAT_TUNNELMOLE_SERVICE: service.url,
        VAST_GCHAT_TUNNEL_BACKOFF_MS: "50",
        VAST_API_KEY: API_KEY,
      }),
    );
    const ready = await serve.waitForLog((r) => r.msg === "ready");
    const first = String(ready.public_url);
    expect(first).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(world.vast.webhooks()[0]?.webhook_url).toBe(first);
    await deliverThroughTunnel("low_credit");

    await service.command("drop");
    await serve.waitForLog((r) => r.msg === "webhook pointed" && r.url !== first);
    await deliverThroughTunnel("instance_stopped");

    // What the service was told: one initialise per connection, each with its own id, and the
    // adapter's answers; nothing about the machine, nothing secret.
    const sent = service.received();
    const initialised = sent.filter((m) => m.type === "initialise");
    expect(initialised.length).toBeGreaterThanOrEqual(2);
    for (const message of initialised)
      expect(Object.keys(message).sort()).toEqual(["clientId", "type"]);
    expect(new Set(initialised.map((m) => m.clientId)).size).toBe(initialised.length);
    expect(new Set(sent.map((m) => m.type))).toEqual(new Set(["initialise", "forwardedResponse"]));
    expect(JSON.stringify(sent)).not.toContain(API_KEY);
  } finally {
    await service.close();
  }
});
