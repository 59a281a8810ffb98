import { once } from "node:events";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  cloudflaredTunnel,
  findCloudflaredConfig,
  findExecutable,
  findTryCloudflareUrl,
  parseQuickTunnelBody,
  readQuickTunnelUrl,
} from "../../src/tunnel/cloudflared.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { type OpenTunnel, TunnelError } from "../../src/tunnel/types.js";

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tunnel/${name}`, import.meta.url));
const recorded = (name: string) => readFileSync(fixture(name), "utf8");
/** The URL in the recorded stderr and /quicktunnel body. */
const QUICK_URL = "https://seasonal-pixel-harbor-lemon.trycloudflare.com";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-cloudflared-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("reading cloudflared's output", () => {
  it("finds the quick tunnel's URL in its recorded stderr, and no other https URL", () => {
    const found = recorded("cloudflared-quick-tunnel.stderr.txt")
      .split("\n")
      .map(findTryCloudflareUrl)
      .filter(Boolean);
    expect(found).toEqual([QUICK_URL]);
  });

  it("finds nothing in a failed start (api.trycloudflare.com is not a tunnel)", () => {
    const found = recorded("cloudflared-quick-tunnel-failed.stderr.txt")
      .split("\n")
      .map(findTryCloudflareUrl);
    expect(found.filter(Boolean)).toEqual([]);
  });

  it("reads the /quicktunnel body, and nothing from an empty or broken one", () => {
    expect(parseQuickTunnelBody(recorded("cloudflared-quicktunnel.body.txt"))).toBe(QUICK_URL);
    expect(parseQuickTunnelBody(`{"hostname":"${QUICK_URL}"}`)).toBe(QUICK_URL);
    // What the metrics server says when the tunnel is not a quick tunnel (metrics.go).
    expect(parseQuickTunnelBody('{"hostname":""}')).toBeUndefined();
    expect(parseQuickTunnelBody("404 page not found")).toBeUndefined();
  });
});

describe("readQuickTunnelUrl", () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.close();
    if (server) await once(server, "close");
    server = undefined;
  });

  async function serve(status: number, body: string): Promise<string> {
    const paths: string[] = [];
    server = createServer((req, res) => {
      paths.push(req.url ?? "");
      res.statusCode = req.url === "/quicktunnel" ? status : 404;
      res.end(body);
    }).listen(0, "127.0.0.1");
    await once(server, "listening");
    return `127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it("asks the metrics server for the quick tunnel's hostname", async () => {
    const address = await serve(200, recorded("cloudflared-quicktunnel.body.txt"));
    expect(await readQuickTunnelUrl(address)).toBe(QUICK_URL);
  });

  it("gives nothing for an error status, and rejects while nothing listens", async () => {
    expect(
      await readQuickTunnelUrl(await serve(500, '{"hostname":"x.trycloudflare.com"}')),
    ).toBeUndefined();
    await expect(readQuickTunnelUrl(`127.0.0.1:${await freeLoopbackPort()}`)).rejects.toThrow();
  });
});

describe("findCloudflaredConfig", () => {
  it("finds config.yml or config.yaml where cloudflared looks, in its order", () => {
    expect(findCloudflaredConfig(dir, [])).toBeUndefined();
    const system = join(dir, "etc-cloudflared");
    mkdirSync(system);
    writeFileSync(join(system, "config.yaml"), "tunnel: x\n");
    expect(findCloudflaredConfig(dir, [system])).toBe(join(system, "config.yaml"));
    mkdirSync(join(dir, ".cloudflared"));
    writeFileSync(join(dir, ".cloudflared", "config.yml"), "tunnel: x\n");
    expect(findCloudflaredConfig(dir, [system])).toBe(join(dir, ".cloudflared", "config.yml"));
  });
});

describe("findExecutable", () => {
  it("finds an executable file by path or on PATH, and nothing else", () => {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const program = join(bin, "cloudflared");
    writeFileSync(program, "#!/bin/sh\n");
    expect(findExecutable(program, {})).toBeUndefined();
    expect(findExecutable("cloudflared", { PATH: bin })).toBeUndefined();
    chmodSync(program, 0o755);
    expect(findExecutable(program, {})).toBe(program);
    expect(findExecutable("cloudflared", { PATH: ["relative/bin", dir, bin].join(":") })).toBe(
      program,
    );
    expect(findExecutable("cloudflared", { PATH: dir })).toBeUndefined();
  });
});

describe("cloudflaredTunnel", () => {
  let tunnel: OpenTunnel | undefined;
  afterEach(async () => {
    await tunnel?.close();
    tunnel = undefined;
  });

  /** An executable that runs the fake cloudflared, for CLOUDFLARED_PATH. */
  function fakeBinary(): string {
    const path = join(dir, "cloudflared");
    const fake = fixture("fake-cloudflared.mjs");
    writeFileSync(path, `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  }

  function provider(env: NodeJS.ProcessEnv) {
    // The stand-in's settings must be named to reach it: a tunnel child gets an allow-list.
    return cloudflaredTunnel({
      env: { ...process.env, HOME: dir, VAST_GCHAT_TUNNEL_ENV: "FAKE_CLOUDFLARED_*", ...env },
      systemConfigDirs: [],
    });
  }

  it("runs a quick tunnel to the adapter's port and reads its URL from /quicktunnel", async () => {
    const lines: string[] = [];
    const port = await freeLoopbackPort();
    tunnel = await provider({
      CLOUDFLARED_PATH: fakeBinary(),
      FAKE_CLOUDFLARED_MODE: "metrics",
      FAKE_CLOUDFLARED_BODY: fixture("cloudflared-quicktunnel.body.txt"),
    }).open({ port, onOutput: (line) => lines.push(line), timeoutMs: 15_000 });
    expect(tunnel.url).toBe(QUICK_URL);
    const argv = JSON.parse(lines[0]?.replace("fake-cloudflared argv ", "") ?? "[]") as string[];
    expect(argv.slice(0, 2)).toEqual(["tunnel", "--no-autoupdate"]);
    expect(argv[argv.indexOf("--url") + 1]).toBe(`http://127.0.0.1:${port}`);
    expect(argv[argv.indexOf("--metrics") + 1]).toMatch(/^127\.0\.0\.1:\d+$/);
    await tunnel.close();
    expect((await tunnel.ended).reason).toBe("cloudflared was stopped by SIGTERM");
  });

  it("falls back to the URL cloudflared logs on stderr", async () => {
    tunnel = await provider({
      CLOUDFLARED_PATH: fakeBinary(),
      FAKE_CLOUDFLARED_MODE: "stderr",
      FAKE_CLOUDFLARED_STDERR: fixture("cloudflared-quick-tunnel.stderr.txt"),
    }).open({ port: await freeLoopbackPort(), timeoutMs: 15_000 });
    expect(tunnel.url).toBe(QUICK_URL);
  });

  it("fails, with what cloudflared said, when it exits before a URL", async () => {
    const error = await provider({
      CLOUDFLARED_PATH: fakeBinary(),
      FAKE_CLOUDFLARED_MODE: "fail",
      FAKE_CLOUDFLARED_STDERR: fixture("cloudflared-quick-tunnel-failed.stderr.txt"),
    })
      .open({ port: await freeLoopbackPort(), timeoutMs: 15_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TunnelError);
    expect((error as TunnelError).reason).toBe("failed");
    expect((error as TunnelError).message).toMatch(
      /^cloudflared exited with code 1 before giving a public URL\. It said: .*failed to request quick Tunnel: .*no such host$/,
    );
  });

  it("refuses, before starting anything, while ~/.cloudflared/config.yaml exists", async () => {
    mkdirSync(join(dir, ".cloudflared"));
    const config = join(dir, ".cloudflared", "config.yaml");
    writeFileSync(config, "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n");
    const marker = join(dir, "started");
    const binary = join(dir, "would-start");
    writeFileSync(binary, `#!/bin/sh\ntouch "${marker}"\n`);
    chmodSync(binary, 0o755);
    const error = await provider({ CLOUDFLARED_PATH: binary })
      .open({ port: await freeLoopbackPort() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TunnelError);
    expect((error as TunnelError).reason).toBe("setup");
    expect((error as TunnelError).message).toContain(config);
    expect((error as TunnelError).message).toMatch(/rename/);
    expect(existsSync(marker)).toBe(false);
  });

  it("says how to install cloudflared when it is not there", async () => {
    const missing = await provider({ CLOUDFLARED_PATH: join(dir, "no-such-cloudflared") })
      .open({ port: await freeLoopbackPort() })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TunnelError);
    expect((missing as TunnelError).reason).toBe("setup");
    expect((missing as TunnelError).message).toMatch(
      /not installed at .*no-such-cloudflared \(CLOUDFLARED_PATH/,
    );

    const notOnPath = await provider({ CLOUDFLARED_PATH: "", PATH: dir })
      .open({ port: await freeLoopbackPort() })
      .catch((e: unknown) => e);
    expect((notOnPath as TunnelError).reason).toBe("setup");
    expect((notOnPath as TunnelError).message).toMatch(
      /cloudflared is not installed \(not on the PATH\): install it from https:\/\//,
    );
  });
});
