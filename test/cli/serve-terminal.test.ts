import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { BIN } from "../support/cli-process.js";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/**
 * serve on a person's terminal (a real pseudo-terminal from util-linux `script`): a spinner while
 * the tunnel opens, readable log lines, and Ctrl+C stops it cleanly.
 */
const FAKE_TUNNEL = fileURLToPath(new URL("../support/fake-tunnel.mjs", import.meta.url));
let world: World;

beforeEach(async () => {
  world = await startWorld();
  const init = await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY);
  expect(init.code).toBe(0);
});
afterEach(async () => {
  await world.close();
});

it("shows a spinner while the tunnel opens, then the log, and stops on Ctrl+C", async () => {
  // A tunnel that takes a moment, as real ones do.
  const tunnel = `sleep 1; exec ${process.execPath} ${FAKE_TUNNEL} {port}`;
  const command = [process.execPath, BIN, "serve", "--port", "0", "--tunnel-command", tunnel]
    .map((part) => `'${part}'`)
    .join(" ");
  // exec: serve itself is the terminal's foreground process, as when a person types the command.
  const child = spawn("script", ["-qfec", `stty cols 120 rows 40; exec ${command}`, "/dev/null"], {
    env: world.env({ TERM: "xterm" }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let raw = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    raw += chunk.toString("utf8");
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = once(child, "close").then(([code]) => code as number);
  const until = async (text: string) => {
    while (!stripVTControlCharacters(raw).includes(text)) {
      if (child.exitCode !== null) throw new Error(`serve exited; screen:\n${raw}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };

  await until("Opening the tunnel and pointing the webhook at it");
  await until("ready");
  const screen = stripVTControlCharacters(raw);
  // The spinner is gone before the ready line: nothing of it is drawn after.
  expect(screen.slice(screen.indexOf("ready"))).not.toContain("Opening the tunnel");
  expect(screen).toMatch(/tunnel open +provider=command public_url=http:\/\/127\.0\.0\.1:\d+/);

  child.stdin.write("\u0003");
  await until("stopped");
  expect(await exited).toBe(0);
});
