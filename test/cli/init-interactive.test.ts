import { spawn } from "node:child_process";
import { once } from "node:events";
import { stripVTControlCharacters } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { BIN } from "../support/cli-process.js";
import { API_KEY, startWorld, type World } from "../support/world.js";

/**
 * The wizard as a person meets it: in a real pseudo-terminal (util-linux `script`), answering
 * each prompt when it appears.
 */
let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

function startWizard(args: string[] = []) {
  const command = [process.execPath, BIN, "init", ...args].map((part) => `'${part}'`).join(" ");
  // `script` gives the wizard a real terminal; stty sizes it as a person's window would be.
  const child = spawn("script", ["-qfec", `stty cols 120 rows 40; ${command}`, "/dev/null"], {
    env: world.env({ TERM: "xterm", COLUMNS: "120", LINES: "40" }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let screen = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (chunk: Buffer) => {
    screen += stripVTControlCharacters(chunk.toString("utf8"));
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = once(child, "close").then(([code]) => code as number);
  return {
    screen: () => screen,
    exited,
    /** Waits for `text` to appear after what was already read, then types `keys`. */
    async answer(text: string, keys: string) {
      const from = screen.length;
      while (!screen.slice(Math.max(0, from - 200)).includes(text)) {
        if (child.exitCode !== null) throw new Error(`wizard exited; screen:\n${screen}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
      child.stdin.write(keys);
    },
  };
}

it("asks each question on a terminal, with sensible defaults, and creates the webhook", async () => {
  const wizard = startWizard();
  await wizard.answer("Vast.ai API key", `${API_KEY}\r`);
  await wizard.answer("Google Chat webhook URL", `${world.chat.webhookUrl()}\r`);
  await wizard.answer("to check the URL?", "\r");
  await wizard.answer("Which notifications", "\r");
  await wizard.answer("Webhook name", "\r");
  await wizard.answer("How will Vast.ai reach this machine?", "\r");
  await wizard.answer("Add another Chat space", "\r");
  expect(await wizard.exited).toBe(0);
  expect(wizard.screen()).toContain("Created webhook 1");
  expect(wizard.screen()).not.toContain(API_KEY);
  // The Chat URL's key and token are secrets too: the prompt shows them masked.
  expect(wizard.screen()).not.toContain("fake-token-456");
  expect(wizard.screen()).not.toContain("fake-key-123");
  const [webhook] = world.vast.webhooks();
  expect(webhook?.event_types).toHaveLength(6);
  expect(webhook?.webhook_url).toMatch(
    /^https:\/\/example\.com\/vast-gchat-placeholder\/[0-9a-f]{16}$/,
  );
  expect(JSON.stringify(world.chat.messages[0]?.body)).toContain("vast-gchat is set up");
});

it("offers more Chat spaces at the end, each a route, and subscribes the webhook to what they need", async () => {
  const wizard = startWizard();
  await wizard.answer("Vast.ai API key", `${API_KEY}\r`);
  await wizard.answer("Google Chat webhook URL", `${world.chat.webhookUrl()}\r`);
  await wizard.answer("to check the URL?", "\r");
  await wizard.answer("Which notifications", "\r");
  await wizard.answer("Webhook name", "\r");
  await wizard.answer("How will Vast.ai reach this machine?", "\r");
  await wizard.answer("Add another Chat space", "y\r");
  await wizard.answer("Route name", "Billing!\r");
  await wizard.answer("is not a route name", "\u0015billing\r");
  await wizard.answer("Notifications for billing", "billing,nope\r");
  await wizard.answer("Unknown: nope", "\u0015billing,host\r");
  await wizard.answer("Google Chat webhook URL for billing", `${world.chat.webhookUrl("BBBB")}\r`);
  await wizard.answer("Mention in billing's messages", "users/123456789, all\r");
  await wizard.answer("Add another Chat space?", "\r");
  expect(await wizard.exited).toBe(0);
  expect(wizard.screen()).toContain("route billing: billing, host -> spaces/BBBB");
  expect(wizard.screen()).not.toContain("fake-token-456");
  const [webhook] = world.vast.webhooks();
  // The tutorial's six, and what the new route needs.
  expect(webhook?.event_types).toHaveLength(6 + 2 + 4);
  expect(world.chat.messages.map((message) => message.space)).toEqual(["AAAAfakeSpace", "BBBB"]);
  const routes = await world.run(["route", "list", "--json"]);
  expect(JSON.parse(routes.stdout).routes).toMatchObject([
    { name: "default", types: ["all"], mentions: [] },
    { name: "billing", types: ["billing", "host"], mentions: ["users/123456789", "all"] },
  ]);
});

it("Ctrl+C at a prompt leaves nothing behind and exits 130", async () => {
  const wizard = startWizard();
  await wizard.answer("Vast.ai API key", `${API_KEY}\r`);
  await wizard.answer("Google Chat webhook URL", "\u0003");
  expect(await wizard.exited).toBe(130);
  expect(wizard.screen()).toContain("Set-up interrupted; nothing was changed.");
  expect(world.vast.webhooks()).toEqual([]);
});
