import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, beforeEach, expect, it } from "vitest";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { sendSignedEvent } from "../../src/vast/send-event.js";
import { type CliProcess, spawnCli } from "../support/cli-process.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * Rotation revokes (issue 13, item 1): a real `serve` process, a real `rotate-secret` process,
 * and no delivery in between but ones signed with the old secret, which a serve that only re-read
 * its secrets after a mismatch would go on accepting for ever.
 */
let world: World;
let serve: CliProcess | undefined;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null)
    serve.child.kill("SIGKILL");
  await serve?.exited;
  serve = undefined;
  await world.close();
});

async function setUp(): Promise<string> {
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const init = await world.run(
    initArgs(world, "--public-url", url, "--port", String(port), "--no-chat-check"),
    {},
    API_KEY,
  );
  expect(init.code).toBe(0);
  serve = spawnCli(["serve"], world.env());
  await serve.waitForLog((record) => record.msg === "ready");
  return `${url}/`;
}

/** Sends deliveries signed with `secret` until one gets `status`, or the deadline passes. */
async function firstAnswered(
  url: string,
  secret: string,
  status: number,
  deadline: number,
): Promise<{ status: number; at: number }> {
  for (;;) {
    const answer = await sendSignedEvent(url, secret, sampleEvent("outbid"));
    if (answer.status === status || Date.now() > deadline) {
      return { status: answer.status, at: Date.now() };
    }
    await delay(50);
  }
}

function storedFiles(): string {
  return ["secrets.json", "config.json"]
    .map((name) => readFileSync(join(world.configDir, name), "utf8"))
    .join("\n");
}

it("rotate-secret --grace 0: a quiet serve refuses the old secret within a second", async () => {
  const url = await setUp();
  const old = world.vast.secretOf(1) ?? "";
  expect((await sendSignedEvent(url, old, sampleEvent("outbid"))).status).toBe(200);

  const rotate = await world.run(["rotate-secret", "--grace", "0"]);
  expect(rotate.code).toBe(0);
  const rotated = Date.now();
  const refused = await firstAnswered(url, old, 401, rotated + 1000);
  expect(refused.status).toBe(401);
  expect(refused.at - rotated).toBeLessThanOrEqual(1000);

  // The new secret works, and nothing secret was printed on the way.
  expect((await world.vast.deliver(1, { type: "instance_stopped", maxRetries: 3 })).delivered).toBe(
    true,
  );
  expect(storedFiles()).not.toContain(old);
  const everything = rotate.stdout + rotate.stderr + (serve?.stdout() ?? "") + serve?.stderr();
  for (const secret of [old, world.vast.secretOf(1) ?? "-"])
    expect(everything).not.toContain(secret);
});

it("with a grace, the old secret is accepted until it ends, then refused and removed from storage", async () => {
  const url = await setUp();
  const old = world.vast.secretOf(1) ?? "";

  const rotate = await world.run(["rotate-secret", "--grace", "3s", "--json"]);
  expect(rotate.code).toBe(0);
  const report = JSON.parse(rotate.stdout) as { previous_accepted_until: string };
  const until = Date.parse(report.previous_accepted_until);
  expect(storedFiles()).toContain(old);

  // During the grace: both secrets.
  expect((await sendSignedEvent(url, old, sampleEvent("outbid"))).status).toBe(200);
  expect((await world.vast.deliver(1, { type: "instance_stopped", maxRetries: 3 })).delivered).toBe(
    true,
  );

  // Then the old one is refused, not before its grace ends and within a second of it.
  const refused = await firstAnswered(url, old, 401, until + 1000);
  expect(refused.status).toBe(401);
  expect(refused.at).toBeGreaterThanOrEqual(until);
  // And gone from the store, with its expiry.
  await serve?.waitForLog(
    (record) => record.msg === "previous signing secret expired: removed from storage",
    Math.max(0, until + 1500 - Date.now()),
  );
  expect(storedFiles()).not.toContain(old);
  expect(storedFiles()).not.toContain("previousSecretExpiresAt");
  expect(storedFiles()).toContain(world.vast.secretOf(1));
});
