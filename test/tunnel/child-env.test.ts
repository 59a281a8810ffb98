import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { namedVariables, tunnelChildEnv } from "../../src/tunnel/child-env.js";
import { cloudflaredTunnel } from "../../src/tunnel/cloudflared.js";
import { commandTunnel } from "../../src/tunnel/command-tunnel.js";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { type OpenTunnel, TunnelError } from "../../src/tunnel/types.js";

/**
 * What a tunnel's child process is given: an allow-list of serve's environment, never the whole of
 * it. Each provider's child here is a real process that writes the environment it got to a file.
 * (tunnelmole has no child: our own client speaks its protocol inside serve, test/tunnel/tunnelmole;
 * ngrok is an in-process session.)
 */

const fixture = (name: string) =>
  fileURLToPath(new URL(`../fixtures/tunnel/${name}`, import.meta.url));

/** serve's secrets, and a credential of the user's that no tunnel needs. */
const SECRETS: Record<string, string> = {
  VAST_API_KEY: "vastkey-0f3c9a1e7b2d4c5e",
  VAST_WEBHOOK_SECRET: "whsec-current-5a6b7c8d9e0f",
  VAST_WEBHOOK_SECRET_PREVIOUS: "whsec-previous-1a2b3c4d",
  GOOGLE_CHAT_URL:
    "https://chat.googleapis.com/v1/spaces/AAAAx/messages?key=chatkey-9f8e7d&token=chattoken-6c5b4a",
  VAST_GCHAT_STORE: "postgres://vast:dbpassword-3e2d1c@127.0.0.1:5432/vast",
  NGROK_AUTHTOKEN: "ngroktoken-2b1a0f9e8d7c",
  AWS_SECRET_ACCESS_KEY: "awssecret-7d6c5b4a3f2e",
};
/** What serve's environment also holds that is neither secret nor any tunnel's business. */
const UNLISTED = { SOME_TOOL_SETTING: "unlisted-value", VAST_GCHAT_CONFIG_DIR: "/tmp/config" };
/** What any child may have: the allow-list, and what a shell adds for the programs it runs. */
const BASE = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "TMPDIR",
  "TZ",
  "LANG",
  "LANGUAGE",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
];
const SHELL_ADDED = ["PWD", "OLDPWD", "SHLVL", "_"];
const isLocale = (name: string) => name.startsWith("LC_");

/** serve's environment as the tests give it: this one's, the secrets, and a few listed ones. */
function serveEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...SECRETS,
    ...UNLISTED,
    HTTPS_PROXY: "http://proxy.example:3128",
    LC_TIME: "C",
    ...extra,
  };
}

/** The dumped environment holds only `allowed` names (and the base), and no secret's value. */
function expectOnly(dumped: Record<string, string>, allowed: string[]): void {
  const permitted = new Set([...BASE, ...SHELL_ADDED, ...allowed]);
  const extra = Object.keys(dumped).filter((name) => !permitted.has(name) && !isLocale(name));
  expect(extra).toEqual([]);
  const text = JSON.stringify(dumped);
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(text, name).not.toContain(value);
  }
  for (const value of Object.values(UNLISTED)) expect(text).not.toContain(value);
  // What is allowed does arrive.
  expect(dumped.HTTPS_PROXY).toBe("http://proxy.example:3128");
  expect(dumped.LC_TIME).toBe("C");
  expect(dumped.PATH).toBe(process.env.PATH);
}

function readDump(path: string): Record<string, string> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, string>;
}

let dir: string;
let tunnel: OpenTunnel | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-child-env-"));
});
afterEach(async () => {
  await tunnel?.close();
  tunnel = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("tunnelChildEnv", () => {
  it("keeps the allow-list, the provider's names and ours, and drops everything else", () => {
    const env = tunnelChildEnv(
      { ...SECRETS, ...UNLISTED, PATH: "/bin", LC_ALL: "C", TUNNEL_REGION: "us", EMPTY: undefined },
      { names: ["TUNNEL_REGION"] },
      { VAST_GCHAT_TUNNEL_PORT: "8787" },
    );
    expect(env).toEqual({
      PATH: "/bin",
      LC_ALL: "C",
      TUNNEL_REGION: "us",
      VAST_GCHAT_TUNNEL_PORT: "8787",
    });
  });

  it("passes the variables the user names in VAST_GCHAT_TUNNEL_ENV, and prefixes with *", () => {
    const env = tunnelChildEnv({
      VAST_GCHAT_TUNNEL_ENV: "MY_TUNNEL_TOKEN, FRP_*  NGROK_AUTHTOKEN",
      MY_TUNNEL_TOKEN: "t",
      FRP_SERVER: "s",
      FRP_PORT: "7000",
      NGROK_AUTHTOKEN: "n",
      OTHER: "o",
    });
    expect(env).toEqual({
      MY_TUNNEL_TOKEN: "t",
      FRP_SERVER: "s",
      FRP_PORT: "7000",
      NGROK_AUTHTOKEN: "n",
    });
  });

  it("never passes vast-gchat's own secrets, not even through a prefix", () => {
    const named = "VAST_*,GOOGLE_*";
    expect(tunnelChildEnv({ ...SECRETS, VAST_GCHAT_TUNNEL_ENV: named })).toEqual({
      VAST_GCHAT_TUNNEL_ENV: named,
    });
    for (const name of ["VAST_API_KEY", "GOOGLE_CHAT_URL", "VAST_WEBHOOK_SECRET_FILE"]) {
      const error = (() => {
        try {
          return namedVariables({ VAST_GCHAT_TUNNEL_ENV: `PATH,${name}` });
        } catch (thrown) {
          return thrown;
        }
      })();
      expect(error).toBeInstanceOf(TunnelError);
      expect((error as TunnelError).reason).toBe("setup");
      expect((error as TunnelError).message).toContain(name);
    }
  });

  it("refuses what is not a variable name", () => {
    expect(() => namedVariables({ VAST_GCHAT_TUNNEL_ENV: "GOOD,$(id)" })).toThrow(
      /VAST_GCHAT_TUNNEL_ENV holds "\$\(id\)", which is not a variable name/,
    );
  });
});

describe("a tunnel's child process", () => {
  it("--tunnel-command: a real shell and program see the allow-list and what the user named", async () => {
    const dump = join(dir, "command-env.json");
    tunnel = await commandTunnel(
      `${process.execPath} ${fixture("dump-env.mjs")} ${dump} http://127.0.0.1:9`,
      serveEnv({ VAST_GCHAT_TUNNEL_ENV: "MY_TUNNEL_TOKEN", MY_TUNNEL_TOKEN: "mine" }),
    ).open({ port: 9, timeoutMs: 15_000 });
    const dumped = readDump(dump);
    expectOnly(dumped, ["MY_TUNNEL_TOKEN"]);
    expect(dumped.MY_TUNNEL_TOKEN).toBe("mine");
  });

  it("--tunnel-command that names one of our secrets does not start", async () => {
    const marker = join(dir, "started");
    const error = await commandTunnel(
      `touch ${marker}; echo http://127.0.0.1:9`,
      serveEnv({ VAST_GCHAT_TUNNEL_ENV: "VAST_WEBHOOK_SECRET" }),
    )
      .open({ port: 9 })
      .catch((e: unknown) => e);
    expect((error as TunnelError).reason).toBe("setup");
    expect(existsSync(marker)).toBe(false);
  });

  it("cloudflared: the stand-in sees the allow-list and cloudflared's own variables", async () => {
    const dump = join(dir, "cloudflared-env.json");
    const binary = join(dir, "cloudflared");
    writeFileSync(
      binary,
      `#!/bin/sh\nexec "${process.execPath}" "${fixture("fake-cloudflared.mjs")}" "$@"\n`,
    );
    chmodSync(binary, 0o755);
    tunnel = await cloudflaredTunnel({
      env: serveEnv({
        HOME: dir,
        CLOUDFLARED_PATH: binary,
        TUNNEL_TRANSPORT_PROTOCOL: "http2",
        TUNNEL_HOSTNAME: "would-make-it-a-named-tunnel.example",
        // The stand-in's own settings reach it the way a user's would.
        VAST_GCHAT_TUNNEL_ENV: "FAKE_CLOUDFLARED_*",
        FAKE_CLOUDFLARED_MODE: "metrics",
        FAKE_CLOUDFLARED_BODY: fixture("cloudflared-quicktunnel.body.txt"),
        FAKE_CLOUDFLARED_ENV_DUMP: dump,
      }),
      systemConfigDirs: [],
    }).open({ port: await freeLoopbackPort(), timeoutMs: 15_000 });
    const dumped = readDump(dump);
    expectOnly(dumped, [
      "TUNNEL_TRANSPORT_PROTOCOL",
      "FAKE_CLOUDFLARED_MODE",
      "FAKE_CLOUDFLARED_BODY",
      "FAKE_CLOUDFLARED_ENV_DUMP",
    ]);
    expect(dumped.TUNNEL_TRANSPORT_PROTOCOL).toBe("http2");
    expect(dumped.TUNNEL_HOSTNAME).toBeUndefined();
    expect(dumped.CLOUDFLARED_PATH).toBeUndefined();
  });

  it.skipIf(!existsSync("/proc/self/environ"))(
    "the watchdog beside a tunnel has PATH and its own two inputs only",
    async () => {
      tunnel = await commandTunnel("echo http://127.0.0.1:9; exec sleep 1000", serveEnv()).open({
        port: 9,
        timeoutMs: 15_000,
      });
      const environments = readdirSync("/proc")
        .filter((entry) => /^\d+$/.test(entry))
        .map((pid) => {
          try {
            return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
          } catch {
            return [];
          }
        })
        .filter((env) => env.some((entry) => entry.startsWith("VAST_GCHAT_TUNNEL_GROUP=")));
      expect(environments.length).toBeGreaterThan(0);
      for (const env of environments) {
        // The watchdog's shell, and the `sleep` it runs (which also gets the PWD the shell adds).
        const names = env.map((entry) => entry.split("=")[0]).filter((name) => name !== "PWD");
        expect(names.sort()).toEqual(["PATH", "VAST_GCHAT_ADAPTER_PID", "VAST_GCHAT_TUNNEL_GROUP"]);
      }
    },
  );
});
