import { spawn } from "node:child_process";
import { once } from "node:events";
import { stripVTControlCharacters } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { BIN } from "../support/cli-process.js";
import { API_KEY, startWorld, type World } from "../support/world.js";

/**
 * Where the tunnel is chosen, the wizard says what each choice contacts (docs/supply-chain.md).
 * A real pseudo-terminal (util-linux `script`), as in test/cli/init-interactive.test.ts.
 */
let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

it("the tunnel question says what the highlighted tunnel contacts", async () => {
  const command = [process.execPath, BIN, "init"].map((part) => `'${part}'`).join(" ");
  const child = spawn("script", ["-qfec", `stty cols 200 rows 40; ${command}`, "/dev/null"], {
    env: world.env({ TERM: "xterm", COLUMNS: "200", LINES: "40" }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let screen = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    screen += stripVTControlCharacters(chunk.toString("utf8"));
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = once(child, "close").then(([code]) => code as number);
  /** Waits for `text` after what was already read, then types `keys`. */
  const answer = async (text: string, keys: string) => {
    const from = screen.length;
    while (!screen.slice(Math.max(0, from - 200)).includes(text)) {
      if (child.exitCode !== null) throw new Error(`wizard exited; screen:\n${screen}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    child.stdin.write(keys);
  };

  await answer("Vast.ai API key", `${API_KEY}\r`);
  await answer("Google Chat webhook URL", `${world.chat.webhookUrl()}\r`);
  await answer("to check the URL?", "\r");
  await answer("Which notifications", "\r");
  await answer("Webhook name", "\r");
  // tunnelmole is highlighted first: what it sends, and what it does not.
  await answer("service.tunnelmole.com", "\u001b[B");
  expect(screen).toMatch(/a random id made for each connection/);
  expect(screen).toMatch(/nothing about this machine, nothing kept on disk/);
  await answer("api.trycloudflare.com", "\u001b[B\u001b[B");
  await answer("VAST_GCHAT_TUNNEL_ENV", "\u001b[B");
  await answer(
    "contacts nothing but Vast.ai and Google Chat",
    "\u001b[A\u001b[A\u001b[A\u001b[A\r",
  );
  await answer("Add another Chat space", "\r");
  expect(await exited).toBe(0);
  expect(world.vast.webhooks()).toHaveLength(1);
});
