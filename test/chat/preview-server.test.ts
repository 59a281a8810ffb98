import { request } from "node:http";
import { afterEach, expect, it } from "vitest";
import { type ChatPreview, startChatPreview } from "../../src/chat/preview-server.js";

/**
 * The demo's Chat preview listens on loopback, where any web page the user opens can reach it: it
 * takes a post only when it could not have come from a page on another site.
 */
let preview: ChatPreview | undefined;
afterEach(async () => {
  await preview?.close();
  preview = undefined;
});

/** A raw request, so the Host header can be what a rebinding page would send. */
function post(url: URL, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(JSON.stringify({ text: "hello" }));
  });
}

it("takes a JSON post from a loopback name, and nothing a web page could send cross-site", async () => {
  preview = await startChatPreview();
  const url = preview.webhookUrl;
  const host = url.host;
  expect(await post(url, { host, "content-type": "text/plain" })).toBe(415);
  expect(await post(url, { host, "content-type": "application/x-www-form-urlencoded" })).toBe(415);
  expect(await post(url, { host: "evil.example", "content-type": "application/json" })).toBe(403);
  expect(preview.messages).toHaveLength(0);
  expect(await post(url, { host, "content-type": "application/json; charset=UTF-8" })).toBe(200);
  expect(preview.messages).toHaveLength(1);
});
