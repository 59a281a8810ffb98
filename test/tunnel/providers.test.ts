import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createTunnelProvider } from "../../src/tunnel/providers.js";
import { TunnelError } from "../../src/tunnel/types.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("createTunnelProvider", () => {
  it("gives the provider of each choice", () => {
    for (const tunnel of ["tunnelmole", "cloudflared", "ngrok"] as const) {
      expect(createTunnelProvider({ tunnel, env: {} }).name).toBe(tunnel);
    }
    const command = createTunnelProvider({
      tunnel: "command",
      command: "my-tunnel {port}",
      env: {},
    });
    expect(command.name).toBe("command");
  });

  it("asks for --tunnel-command when the command tunnel has none", () => {
    for (const command of [undefined, "  "]) {
      let thrown: unknown;
      try {
        createTunnelProvider({
          tunnel: "command",
          ...(command === undefined ? {} : { command }),
          env: {},
        });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TunnelError);
      expect((thrown as TunnelError).reason).toBe("setup");
      expect((thrown as TunnelError).message).toMatch(/--tunnel-command "CMD \{port\}"/);
    }
  });

  it("passes --tunnel-domain on to ngrok, and the environment to each provider", async () => {
    // Without a token ngrok stops before loading anything: the env given here is the one read.
    const error = await createTunnelProvider({ tunnel: "ngrok", domain: "x.ngrok.app", env: {} })
      .open({ port: 8080 })
      .catch((e: unknown) => e);
    expect((error as TunnelError).message).toMatch(/NGROK_AUTHTOKEN/);
    const missing = await createTunnelProvider({
      tunnel: "cloudflared",
      env: { HOME: "/nonexistent", PATH: "", CLOUDFLARED_PATH: "/nonexistent/cloudflared" },
    })
      .open({ port: 8080 })
      .catch((e: unknown) => e);
    expect((missing as TunnelError).message).toMatch(/not installed at \/nonexistent\/cloudflared/);
  });

  it("loads no provider package until a tunnel of that kind opens", async () => {
    // A fresh Node process, so nothing else loaded it first. @ngrok/ngrok leaves CommonJS files in
    // require's cache when imported, which the script lists before and after importing it for real.
    const script = `
      import Module from "node:module";
      const loaded = () => Object.keys(Module._cache).filter((path) => /node_modules\\/@ngrok\\//.test(path)).length;
      const { createTunnelProvider } = await import("./src/tunnel/providers.ts");
      for (const tunnel of ["tunnelmole", "cloudflared", "ngrok"]) createTunnelProvider({ tunnel, env: {} });
      createTunnelProvider({ tunnel: "command", command: "true", env: {} });
      await createTunnelProvider({ tunnel: "ngrok", env: {} }).open({ port: 1 }).catch(() => {});
      const before = loaded();
      await import("@ngrok/ngrok");
      console.log(JSON.stringify({ before, after: loaded() }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { cwd: ROOT },
    );
    const counts = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as {
      before: number;
      after: number;
    };
    expect(counts.before).toBe(0);
    expect(counts.after).toBeGreaterThan(0);
  });
});
