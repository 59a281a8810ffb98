import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { API_KEY, initArgs, startWorld, type World } from "../support/world.js";

/** `status` against the Vast.ai emulator: what it prints of the webhook and of the adapter. */
let world: World;
let proxy: Server | undefined;
/** The list replies the proxy altered: a test that never went through it would prove nothing. */
let altered = 0;

beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  if (proxy) {
    proxy.closeAllConnections();
    proxy.close();
    await once(proxy, "close");
    proxy = undefined;
  }
  await world.close();
});

const INJECTED_SECRET = "whsec-injected-into-the-list-reply-7f3e";

/**
 * Vast.ai's API in front of the emulator, except that every webhook in a list reply carries a
 * secret and a field nobody knows: what a future Vast.ai reply might hold.
 */
async function startLeakyApi(): Promise<string> {
  altered = 0;
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && name !== "host" && name !== "content-length")
          headers.set(name, value);
      }
      const upstream = await fetch(`${world.vast.url}${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      let text = await upstream.text();
      if (req.method === "GET" && /\/webhooks\/$/.test(req.url ?? "")) {
        const json = JSON.parse(text) as { webhooks: Array<Record<string, unknown>> };
        for (const webhook of json.webhooks) {
          webhook.webhook_secret = INJECTED_SECRET;
          webhook.internal_note = "not for printing";
        }
        altered += 1;
        text = JSON.stringify(json);
      }
      res.writeHead(upstream.status, { "content-type": "application/json" });
      res.end(text);
    });
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

describe("status shows the webhook by the fields it knows", () => {
  it("never prints a secret or an unknown field that Vast.ai's reply carries", async () => {
    expect((await world.run(initArgs(world, "--no-chat-check"), {}, API_KEY)).code).toBe(0);
    const api = await startLeakyApi();
    const json = await world.run(["status", "--json"], { VAST_API_URL: api });
    const human = await world.run(["status"], { VAST_API_URL: api });
    expect(json.code).toBe(0);
    expect(human.code).toBe(0);
    const report = JSON.parse(json.stdout) as { webhook: Record<string, unknown> };
    const [webhook] = world.vast.webhooks();
    expect(report.webhook).toEqual({
      id: webhook?.id,
      name: webhook?.name,
      url: webhook?.webhook_url,
      event_types: webhook?.event_types,
    });
    const everything = json.stdout + json.stderr + human.stdout + human.stderr;
    expect(everything).not.toContain(INJECTED_SECRET);
    expect(everything).not.toContain("not for printing");
    expect(altered).toBe(2);
    expect(human.stdout).toContain(`Webhook           ${webhook?.id} "`);
  });
});
