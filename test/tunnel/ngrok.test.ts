import { afterEach, describe, expect, it, vi } from "vitest";
import {
  loadNgrok,
  type NgrokForwardConfig,
  type NgrokModule,
  ngrokTunnel,
} from "../../src/tunnel/ngrok.js";
import { TunnelError, type TunnelExit } from "../../src/tunnel/types.js";

/**
 * A stand-in for @ngrok/ngrok: records what it was asked, and lets a test play the session's
 * status changes through the onStatusChange it was given. No test here reaches ngrok's service.
 */
function fakeNgrok(forward: (config: NgrokForwardConfig) => Promise<{ url(): string | null }>) {
  const calls: string[] = [];
  let config: NgrokForwardConfig | undefined;
  const module: NgrokModule = {
    async forward(given) {
      calls.push("forward");
      config = given;
      return forward(given);
    },
    async kill() {
      calls.push("kill");
    },
  };
  return {
    module,
    calls,
    config: () => {
      if (!config) throw new Error("forward was not called");
      return config;
    },
  };
}

const listener = (url: string | null) => ({ url: () => url });
const TOKEN_ENV = { NGROK_AUTHTOKEN: "2abcDEFtoken_0123456789" };

function settledYet(promise: Promise<TunnelExit>) {
  let value: TunnelExit | undefined;
  void promise.then((exit) => {
    value = exit;
  });
  return () => value;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("ngrokTunnel", () => {
  it("asks for NGROK_AUTHTOKEN, without loading the package, when it is not set", async () => {
    const load = vi.fn(async () => fakeNgrok(async () => listener(null)).module);
    for (const env of [{}, { NGROK_AUTHTOKEN: "  " }]) {
      const error = await ngrokTunnel({ env, load })
        .open({ port: 8080 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TunnelError);
      expect((error as TunnelError).reason).toBe("setup");
      expect((error as TunnelError).message).toMatch(
        /^ngrok needs an authtoken: copy yours from https:\/\/dashboard\.ngrok\.com\/.* NGROK_AUTHTOKEN\.$/,
      );
    }
    expect(load).not.toHaveBeenCalled();
  });

  it("says what to install when @ngrok/ngrok cannot be loaded", async () => {
    const load = async (): Promise<NgrokModule> => {
      throw Object.assign(new Error("Cannot find package '@ngrok/ngrok' imported from x.js"), {
        code: "ERR_MODULE_NOT_FOUND",
      });
    };
    const error = await ngrokTunnel({ env: TOKEN_ENV, load })
      .open({ port: 8080 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TunnelError);
    expect((error as TunnelError).reason).toBe("setup");
    expect((error as TunnelError).message).toMatch(
      /^ngrok support needs the @ngrok\/ngrok package, which could not be loaded \(Cannot find package/,
    );
  });

  it("forwards to the adapter's port with the token and reserved domain, on a fresh session", async () => {
    const fake = fakeNgrok(async () => listener("https://vast-hooks.ngrok.app"));
    const tunnel = await ngrokTunnel({
      env: TOKEN_ENV,
      domain: "vast-hooks.ngrok.app",
      load: async () => fake.module,
    }).open({ port: 8123 });
    expect(tunnel.url).toBe("https://vast-hooks.ngrok.app");
    expect(fake.config()).toMatchObject({
      addr: "127.0.0.1:8123",
      authtoken: TOKEN_ENV.NGROK_AUTHTOKEN,
      domain: "vast-hooks.ngrok.app",
    });
    expect(fake.calls).toEqual(["kill", "forward"]);
    await tunnel.close();
    await tunnel.close();
    expect(fake.calls).toEqual(["kill", "forward", "kill"]);
    expect((await tunnel.ended).reason).toBe("the ngrok tunnel was closed");
  });

  it("asks for no domain when none was given", async () => {
    const fake = fakeNgrok(async () => listener("https://1a2b-203-0-113-7.ngrok-free.app"));
    const tunnel = await ngrokTunnel({ env: TOKEN_ENV, load: async () => fake.module }).open({
      port: 8123,
    });
    expect("domain" in fake.config()).toBe(false);
    await tunnel.close();
  });

  it("ends only when a lost session does not reconnect within the grace period", async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const fake = fakeNgrok(async () => listener("https://vast-hooks.ngrok.app"));
    const tunnel = await ngrokTunnel({
      env: TOKEN_ENV,
      load: async () => fake.module,
      // The default grace: 5 s, room for ngrok's own two quick reconnects and no more, since the
      // URL answers 404 meanwhile (docs/tunnels.md).
    }).open({ port: 8123, onOutput: (line) => lines.push(line) });
    const ended = settledYet(tunnel.ended);
    const { onStatusChange } = fake.config();

    onStatusChange("connected");
    onStatusChange("closed");
    await vi.advanceTimersByTimeAsync(4000);
    onStatusChange("connected");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ended()).toBeUndefined();

    onStatusChange("closed");
    await vi.advanceTimersByTimeAsync(4999);
    expect(ended()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(ended()?.reason).toBe(
      "the ngrok session lost its connection and did not reconnect within 5 s",
    );
    expect(lines).toContain("ngrok session closed");
    await tunnel.close();
  });

  it("tells a refused token (the user must act) from a failure that may pass", async () => {
    const refusal = (code: string) =>
      Object.assign(
        new Error(`failed to connect session: authentication failed\n\nerror_code: ${code}`),
        {
          errorCode: code,
        },
      );
    for (const [code, kind] of [
      ["ERR_NGROK_105", "setup"],
      ["ERR_NGROK_108", "failed"],
    ] as const) {
      const fake = fakeNgrok(async () => {
        throw refusal(code);
      });
      const error = await ngrokTunnel({ env: TOKEN_ENV, load: async () => fake.module })
        .open({ port: 8123 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TunnelError);
      expect((error as TunnelError).reason).toBe(kind);
      expect((error as TunnelError).message).toContain("authentication failed");
      // The session a failed open may have made is closed again.
      expect(fake.calls).toEqual(["kill", "forward", "kill"]);
    }
  });

  it("keeps the token out of what it says", async () => {
    const lines: string[] = [];
    const fake = fakeNgrok(async () => {
      throw Object.assign(
        new Error(
          `authentication failed: Your authtoken: ${TOKEN_ENV.NGROK_AUTHTOKEN}\n\nerror_code: ERR_NGROK_107`,
        ),
        { errorCode: "ERR_NGROK_107" },
      );
    });
    const error = await ngrokTunnel({ env: TOKEN_ENV, load: async () => fake.module })
      .open({ port: 8123 })
      .catch((e: unknown) => e);
    expect((error as TunnelError).reason).toBe("setup");
    expect((error as TunnelError).message).toBe(
      "ngrok refused NGROK_AUTHTOKEN (ERR_NGROK_107): authentication failed: Your authtoken: [NGROK_AUTHTOKEN]",
    );

    const open = fakeNgrok(async () => listener("https://vast-hooks.ngrok.app"));
    const tunnel = await ngrokTunnel({ env: TOKEN_ENV, load: async () => open.module }).open({
      port: 8123,
      onOutput: (line) => lines.push(line),
    });
    open.config().onLogEvent(`INFO ngrok::session - token ${TOKEN_ENV.NGROK_AUTHTOKEN}`);
    expect(lines).toEqual(["INFO ngrok::session - token [NGROK_AUTHTOKEN]"]);
    await tunnel.close();
    open.config().onLogEvent("INFO after close");
    expect(lines).toHaveLength(1);
  });

  it("gives up on a forward that never settles (offline), and closes what it opens later", async () => {
    let succeed: (value: { url(): string | null }) => void = () => {};
    const fake = fakeNgrok(
      () =>
        new Promise((resolve) => {
          succeed = resolve;
        }),
    );
    const error = await ngrokTunnel({ env: TOKEN_ENV, load: async () => fake.module })
      .open({ port: 8123, timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect((error as TunnelError).reason).toBe("failed");
    expect((error as TunnelError).message).toBe("ngrok gave no public URL within 0.05 s.");
    expect(fake.calls).toEqual(["kill", "forward", "kill"]);
    succeed(listener("https://late.ngrok.app"));
    await vi.waitFor(() => expect(fake.calls).toEqual(["kill", "forward", "kill", "kill"]));
  });
});

describe("a late forward after a newer open", () => {
  it("does not kill the newer session", async () => {
    let succeedLate: (value: { url(): string | null }) => void = () => {};
    let forwards = 0;
    const fake = fakeNgrok(() =>
      ++forwards === 1
        ? new Promise((resolve) => {
            succeedLate = resolve;
          })
        : Promise.resolve(listener("https://second.ngrok.app")),
    );
    const provider = ngrokTunnel({ env: TOKEN_ENV, load: async () => fake.module });
    await expect(provider.open({ port: 8123, timeoutMs: 50 })).rejects.toThrow(/no public URL/);
    const second = await provider.open({ port: 8123 });
    expect(second.url).toBe("https://second.ngrok.app");
    const callsBefore = [...fake.calls];

    succeedLate(listener("https://late.ngrok.app"));
    // Let the late forward's continuation run; nothing may follow the second session's start.
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.calls).toEqual(callsBefore);
    await second.close();
    expect(fake.calls.at(-1)).toBe("kill");
  });
});

describe("loadNgrok", () => {
  it("loads the installed native package (without connecting)", async () => {
    const ngrok = await loadNgrok();
    expect(typeof ngrok.forward).toBe("function");
    expect(typeof ngrok.kill).toBe("function");
  });
});
