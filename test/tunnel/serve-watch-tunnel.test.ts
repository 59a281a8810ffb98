import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import type { FakeChat } from "../support/fake-chat.js";
import { API_KEY, initWaitingArgs, startWorld, type World } from "../support/world.js";

/**
 * A tunnel that dies for good (issue 18), with serve as a real process: every tunnel the fake
 * provider opens answers 530, as cloudflared's edge does for a tunnel that is gone, so the probe
 * keeps failing however often serve reopens it. Past the threshold (shortened here from 2 min) it
 * is a problem: one alert in Chat, `status` lists it; once tunnels forward again, one resolution.
 */
const FAKE_TUNNEL = fileURLToPath(new URL("../support/fake-tunnel.mjs", import.meta.url));
let world: World;
let serve: CliProcess | undefined;

beforeEach(async () => {
  world = await startWorld();
  const init = await world.run(initWaitingArgs(world), {}, API_KEY);
  expect(init.code).toBe(0);
});
afterEach(async () => {
  await serve?.stop(10_000);
  serve = undefined;
  await world.close();
});

function messagesWith(chat: FakeChat, text: string) {
  return chat.messages.filter((message) => JSON.stringify(message.body).includes(text));
}

it("a tunnel whose probe keeps failing: one alert past the threshold, listed by status, one resolution", async () => {
  const dead = join(world.configDir, "tunnel-dead");
  serve = spawnCli(
    [
      "serve",
      "--port",
      "0",
      "--tunnel-command",
      `${process.execPath} ${FAKE_TUNNEL} {port}`,
      "--probe-interval",
      "0.5",
      "--check-every",
      "0",
      "--self-test-every",
      "0",
    ],
    world.env({
      FAKE_TUNNEL_DEAD: dead,
      VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNEL_DEAD",
      // Six failures in a row end serve: with probes every 0.5 s and these waits between reopens,
      // that is several seconds past the (shortened) threshold.
      VAST_GCHAT_TUNNEL_BACKOFF_MS: "300",
      VAST_GCHAT_TUNNEL_ALERT_MS: "1000",
    }),
  );
  await serve.waitForLog((r) => r.msg === "ready");
  await serve.waitForLog((r) => r.msg === "watching the chain");
  writeFileSync(dead, "");

  const opened = await serve.waitForLog(
    (r) => r.msg === "problem" && r.kind === "tunnel_unreachable",
  );
  expect(String(opened.summary)).toContain("answered 530");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "The tunnel does not reach the adapter").length > 0,
  );
  const status = await world.run(["status", "--json"]);
  const report = JSON.parse(status.stdout) as {
    adapter: { problems?: Array<{ kind: string; since: number }> };
  };
  expect(report.adapter.problems).toEqual([
    expect.objectContaining({
      kind: "tunnel_unreachable",
      since: Date.parse(String(opened.since)),
    }),
  ]);

  rmSync(dead);
  await serve.waitForLog((r) => r.msg === "problem resolved" && r.kind === "tunnel_unreachable");
  await world.chat.waitFor(
    (chat) => messagesWith(chat, "Resolved: The tunnel does not reach the adapter").length > 0,
  );
  expect(messagesWith(world.chat, "The tunnel does not reach the adapter")).toHaveLength(2);
  const problems = serve
    .stdout()
    .split("\n")
    .filter((line) => line.includes('"msg":"problem"'));
  expect(problems).toHaveLength(1);
  serve.child.kill("SIGTERM");
  expect(await serve.exited).toEqual({ code: 0, signal: null });
});
