import { afterEach, expect, it } from "vitest";
import { type ProbeResult, TunnelSupervisor } from "../../src/tunnel/supervisor.js";
import type { OpenTunnel, TunnelExit, TunnelProvider } from "../../src/tunnel/types.js";

/**
 * The supervisor's timing, with an in-process provider whose tunnels the test ends at will: how
 * soon a lost tunnel is replaced and its URL pointed at. Until then Vast.ai's deliveries go to the
 * dead URL, which for ngrok and tunnelmole answers 404, never retried (docs/tunnels.md).
 */

interface FakeTunnel {
  url: string;
  openedAt: number;
  die: (reason: string) => void;
  closed: boolean;
}

function fakeProvider(options: { failOpensAfter?: number } = {}) {
  const tunnels: FakeTunnel[] = [];
  const provider: TunnelProvider = {
    name: "command",
    async open(): Promise<OpenTunnel> {
      const n = tunnels.length + 1;
      if (options.failOpensAfter !== undefined && n > options.failOpensAfter) {
        tunnels.push({ url: "", openedAt: Date.now(), die: () => {}, closed: true });
        throw new Error(`open ${n} failed`);
      }
      let die: (reason: string) => void = () => {};
      const ended = new Promise<TunnelExit>((resolve) => {
        die = (reason) => resolve({ reason });
      });
      const tunnel: FakeTunnel = {
        url: `https://t${n}.example`,
        openedAt: Date.now(),
        die,
        closed: false,
      };
      tunnels.push(tunnel);
      return {
        url: tunnel.url,
        ended,
        async close() {
          tunnel.closed = true;
        },
      };
    },
  };
  return { provider, tunnels };
}

let supervisor: TunnelSupervisor | undefined;
afterEach(async () => {
  await supervisor?.close();
  supervisor = undefined;
});

/** Resolves with the next "ready" URL and when it came. */
function nextReady(s: TunnelSupervisor): Promise<{ url: string; at: number }> {
  return new Promise((resolve) => s.once("ready", (url) => resolve({ url, at: Date.now() })));
}

it("reopens a lost tunnel at once and points the webhook at the new URL", async () => {
  const { provider, tunnels } = fakeProvider();
  const pointed: Array<{ url: string; at: number }> = [];
  supervisor = new TunnelSupervisor({
    provider,
    port: 1,
    pointWebhook: async (url) => {
      pointed.push({ url, at: Date.now() });
    },
    probe: async () => ({ ok: true }),
    probeIntervalMs: 60_000,
    // Were the first reopen to wait this long, the test would see it.
    initialBackoffMs: 5000,
  });
  expect(await supervisor.start()).toBe("https://t1.example");

  const lostAt = Date.now();
  const ready = nextReady(supervisor);
  tunnels[0]?.die("the tunnel command exited with code 1");
  expect((await ready).url).toBe("https://t2.example");
  expect(tunnels[0]?.closed).toBe(true);
  expect(pointed.map((p) => p.url)).toEqual(["https://t1.example", "https://t2.example"]);
  expect((pointed[1]?.at ?? Number.POSITIVE_INFINITY) - lostAt).toBeLessThan(1000);
});

it("waits before the reopens that follow, growing from initialBackoffMs", async () => {
  // The first tunnel opens, the rest fail: the retries must not hammer the provider.
  const { provider, tunnels } = fakeProvider({ failOpensAfter: 1 });
  const lost: number[] = [];
  supervisor = new TunnelSupervisor({
    provider,
    port: 1,
    pointWebhook: async () => {},
    probe: async () => ({ ok: true }),
    probeIntervalMs: 60_000,
    initialBackoffMs: 150,
    maxFailures: 4,
  });
  supervisor.on("lost", (_reason, delayMs) => lost.push(delayMs));
  await supervisor.start();
  const failed = new Promise((resolve) => supervisor?.once("failed", resolve));
  tunnels[0]?.die("gone");
  await failed;
  expect(lost).toEqual([0, 150, 300]);
  const opens = tunnels.map((t) => t.openedAt);
  // open 2 at once after the loss, open 3 at least 150 ms after open 2, open 4 300 ms after 3.
  expect((opens[2] ?? 0) - (opens[1] ?? 0)).toBeGreaterThanOrEqual(145);
  expect((opens[3] ?? 0) - (opens[2] ?? 0)).toBeGreaterThanOrEqual(295);
});

it("replaces a tunnel after one probe answered 404 by the provider, not two", async () => {
  const { provider, tunnels } = fakeProvider();
  const probes: string[] = [];
  const answers: ProbeResult[] = [
    { ok: false, error: "the tunnel answered 404 without reaching this adapter", status: 404 },
  ];
  supervisor = new TunnelSupervisor({
    provider,
    port: 1,
    pointWebhook: async () => {},
    probe: async (url) => {
      probes.push(url);
      return url === "https://t1.example" ? (answers.shift() ?? { ok: true }) : { ok: true };
    },
    probeIntervalMs: 20,
    probeFailuresToRestart: 3,
  });
  await supervisor.start();
  const lost = new Promise<string>((resolve) => supervisor?.once("lost", resolve));
  const ready = nextReady(supervisor);
  expect(await lost).toContain("404");
  expect((await ready).url).toBe("https://t2.example");
  expect(probes.filter((url) => url === "https://t1.example")).toHaveLength(1);
  expect(tunnels[0]?.closed).toBe(true);
});

it.each([
  ["timed out", { ok: false, error: "no answer through the tunnel" }],
  ["was answered 429", { ok: false, error: "the tunnel answered 429", status: 429 }],
  ["was answered 408", { ok: false, error: "the tunnel answered 408", status: 408 }],
] as Array<[string, ProbeResult]>)(
  "gives a probe that %s a second chance: Vast.ai retries those too",
  async (_label, failure) => {
    const { provider } = fakeProvider();
    const answers: ProbeResult[] = [failure];
    const results: ProbeResult[] = [];
    supervisor = new TunnelSupervisor({
      provider,
      port: 1,
      pointWebhook: async () => {},
      probe: async () => answers.shift() ?? { ok: true },
      probeIntervalMs: 20,
    });
    let lost = false;
    supervisor.on("lost", () => {
      lost = true;
    });
    await supervisor.start();
    await new Promise<void>((resolve) =>
      supervisor?.on("probe", (result) => {
        results.push(result);
        if (results.length === 2) resolve();
      }),
    );
    expect(results.map((r) => r.ok)).toEqual([false, true]);
    expect(lost).toBe(false);
  },
);
