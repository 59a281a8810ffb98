import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import {
  resolveTunnelmoleModule,
  TUNNELMOLE_URL_PREFIX,
  tunnelmoleChildSpec,
  tunnelmoleLineUrl,
  tunnelmoleTunnel,
} from "../../src/tunnel/tunnelmole.js";
import { type OpenTunnel, TunnelError } from "../../src/tunnel/types.js";

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tunnel/${name}`, import.meta.url));
const recordedLines = (name: string) => readFileSync(fixture(name), "utf8").split("\n");
const FAKE_MODULE = fixture("fake-tunnelmole.mjs");
/** The hostname in the recorded output (what tunnelmole 2.4.0's handler printed for it). */
const RECORDED_URL = "https://k3xq9p-ip-203-0-113-7.tunnelmole.net";

describe("tunnelmoleLineUrl", () => {
  it("finds only the https forwarding line in tunnelmole 2.4.0's piped output", () => {
    const found = recordedLines("tunnelmole-2.4.0.stdout.txt").map(tunnelmoleLineUrl);
    expect(found.filter(Boolean)).toEqual([RECORDED_URL]);
  });

  it("reads the coloured output tunnelmole prints on a terminal", () => {
    const found = recordedLines("tunnelmole-2.4.0-terminal.stdout.txt").map(tunnelmoleLineUrl);
    expect(found.filter(Boolean)).toEqual([RECORDED_URL]);
  });

  it("reads the 'is forwarding to' form of versions before 2.3.5", () => {
    const found = recordedLines("tunnelmole-2.3.4.stdout.txt").map(tunnelmoleLineUrl);
    expect(found.filter(Boolean)).toEqual([RECORDED_URL]);
  });

  it("finds nothing in the output of a start that could not reach the service", () => {
    const found = recordedLines("tunnelmole-offline.stderr.txt").map(tunnelmoleLineUrl);
    expect(found.filter(Boolean)).toEqual([]);
  });

  it("reads the child's own line, https only", () => {
    expect(tunnelmoleLineUrl(`${TUNNELMOLE_URL_PREFIX}${RECORDED_URL}/`)).toBe(RECORDED_URL);
    expect(
      tunnelmoleLineUrl(`${TUNNELMOLE_URL_PREFIX}http://k3xq9p.tunnelmole.net`),
    ).toBeUndefined();
    expect(tunnelmoleLineUrl(`${TUNNELMOLE_URL_PREFIX}undefined`)).toBeUndefined();
  });
});

describe("tunnelmoleTunnel", () => {
  let tunnel: OpenTunnel | undefined;
  let home: string | undefined;
  afterEach(async () => {
    await tunnel?.close();
    tunnel = undefined;
    if (home) rmSync(home, { recursive: true, force: true });
    home = undefined;
  });

  /** Opens with the stand-in module; collects what the child printed. */
  async function openFake(env: NodeJS.ProcessEnv) {
    const lines: string[] = [];
    const opened = await tunnelmoleTunnel({
      modulePath: FAKE_MODULE,
      // The stand-in's settings must be named to reach it: a tunnel child gets an allow-list.
      env: { ...process.env, VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNELMOLE_*", ...env },
    }).open({
      port: await freeLoopbackPort(),
      onOutput: (line) => lines.push(line),
      timeoutMs: 15_000,
    });
    tunnel = opened;
    const pid = Number(/pid=(\d+)/.exec(lines.join("\n"))?.[1]);
    return { opened, lines, pid };
  }

  it("takes the URL the child prints, with telemetry and colour off, and close ends the child", async () => {
    const { opened, lines, pid } = await openFake({
      FAKE_TUNNELMOLE_MODE: "resolve",
      FAKE_TUNNELMOLE_URL: "https://abc123.tunnelmole.net",
      TUNNELMOLE_TELEMETRY: "1",
      FORCE_COLOR: "3",
    });
    expect(opened.url).toBe("https://abc123.tunnelmole.net");
    expect(lines.join("\n")).toMatch(/telemetry=0 force_color=0/);
    await opened.close();
    expect((await opened.ended).reason).toBe("tunnelmole was stopped by SIGTERM");
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it("falls back to tunnelmole's own forwarding line", async () => {
    const { opened } = await openFake({
      FAKE_TUNNELMOLE_MODE: "print-only",
      FAKE_TUNNELMOLE_OUTPUT: fixture("tunnelmole-2.4.0.stdout.txt"),
    });
    expect(opened.url).toBe(RECORDED_URL);
  });

  it("ends by itself when tunnelmole's connection goes (nothing of ours keeps the child up)", async () => {
    const { opened, pid } = await openFake({
      FAKE_TUNNELMOLE_MODE: "resolve",
      FAKE_TUNNELMOLE_URL: "https://abc123.tunnelmole.net",
    });
    process.kill(pid, "SIGUSR1");
    expect((await opened.ended).reason).toBe("tunnelmole exited with code 0");
  });

  it("turns tunnelmole's process.exit into a failed open, not an exit of the adapter", async () => {
    const error = await openFake({ FAKE_TUNNELMOLE_MODE: "exit" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TunnelError);
    expect((error as TunnelError).kind).toBe("failed");
    expect((error as TunnelError).message).toMatch(/exited with code 1 .*anything running on port/);
  });

  it("leaves when the process that started it is killed outright", async () => {
    const spec = tunnelmoleChildSpec(await freeLoopbackPort(), FAKE_MODULE, {
      ...process.env,
      VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNELMOLE_*",
      FAKE_TUNNELMOLE_MODE: "resolve",
      FAKE_TUNNELMOLE_URL: "https://abc123.tunnelmole.net",
    });
    // A shell stands in for the adapter: it starts the child (which watches the shell's pid) and
    // is then killed with SIGKILL, which no exit hook of its own could survive.
    const shell = spawn(
      "/bin/sh",
      ["-c", 'VAST_GCHAT_PARENT_PID=$$ "$@" & wait', "sh", spec.command, ...spec.args],
      { env: spec.env, stdio: ["ignore", "pipe", "inherit"] },
    );
    const shellExit = once(shell, "exit");
    const stdout = shell.stdout;
    const ended = once(stdout, "end");
    const lines = createInterface({ input: stdout });
    for await (const line of lines) {
      if (tunnelmoleLineUrl(line)) break;
    }
    shell.kill("SIGKILL");
    // Only the child still holds the pipe: it ends when the child has gone.
    stdout.resume();
    await ended;
    expect((await shellExit)[1]).toBe("SIGKILL");
  });

  it("runs the installed package in the child (which exits when nothing listens on the port)", async () => {
    const modulePath = resolveTunnelmoleModule();
    expect(existsSync(modulePath)).toBe(true);
    home = mkdtempSync(join(tmpdir(), "vast-gchat-tunnelmole-"));
    const port = await freeLoopbackPort();
    const error = await tunnelmoleTunnel({ env: { ...process.env, HOME: home } })
      .open({ port, timeoutMs: 15_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TunnelError);
    expect((error as TunnelError).message).toMatch(
      new RegExp(`tunnelmole exited with code 1 .*service on port ${port}`),
    );
  });
});
