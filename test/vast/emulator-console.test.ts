import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { VastClient } from "../../src/vast/api-client.js";
import { startVastEmulator, type VastEmulator } from "../../src/vast/emulator.js";

/**
 * The emulator's test controls for what happens outside its API (issue 18): a webhook changed or
 * deleted in Vast.ai's web console, by the API's own rules, and deliveries acknowledged by
 * something other than the receiver. None adds an API route.
 */
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setUp(): Promise<{ emu: VastEmulator; client: VastClient; hits: () => number }> {
  const emu = await startVastEmulator({ allowLoopbackHttp: true });
  closers.push(() => emu.close());
  let hits = 0;
  const receiver: Server = createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
  receiver.listen(0, "127.0.0.1");
  await once(receiver, "listening");
  closers.push(async () => {
    receiver.close();
    await once(receiver, "close");
  });
  const client = new VastClient({ apiKey: "emulator-key", baseUrl: emu.url, routeSpacingMs: 0 });
  const port = (receiver.address() as AddressInfo).port;
  await client.createWebhook({
    webhook_url: `http://127.0.0.1:${port}/`,
    event_types: ["client:low_credit", "client:outbid"],
  });
  return { emu, client, hits: () => hits };
}

describe("emulator console controls", () => {
  it("consoleUpdate changes a webhook as the API would, and refuses what the API refuses", async () => {
    const { emu, client } = await setUp();
    emu.consoleUpdate(1, { webhook_url: "https://elsewhere.example/" });
    expect((await client.findWebhook(1))?.webhook_url).toBe("https://elsewhere.example/");
    expect(() => emu.consoleUpdate(1, { event_types: ["client:no_such_type"] })).toThrow(
      /Unknown event type/,
    );
  });

  it("consoleDelete removes it: the API answers 404 for it from then on", async () => {
    const { emu, client } = await setUp();
    emu.consoleDelete(1);
    expect(await client.findWebhook(1)).toBeUndefined();
    await expect(client.testWebhook(1)).rejects.toMatchObject({ reason: "not_found" });
  });

  it("dropNextDeliveries: /test/ answers 200 for an event the receiver never sees", async () => {
    const { emu, client, hits } = await setUp();
    emu.dropNextDeliveries(1);
    const dropped = await client.testWebhook(1);
    expect(dropped.eventId).toMatch(/^[0-9a-f]{32}$/);
    expect(hits()).toBe(0);
    await client.testWebhook(1);
    expect(hits()).toBe(1);
  });
});
