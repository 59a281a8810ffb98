import { existsSync, mkdirSync, statSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatPoster } from "../../src/chat/post-message.js";
import { type ChatPreview, headline, startChatPreview } from "../../src/chat/preview-server.js";
import { type ChatMessage, renderMessage } from "../../src/chat/render.js";
import { renderDigest } from "../../src/chat/render-digest.js";
import type { VastEvent } from "../../src/vast/event.js";
import { sampleEvent } from "../../src/vast/sample-events.js";

/**
 * The demo's Chat preview page in a real headless browser (Debian's chromium, driven by
 * playwright-core): the cards the adapter renders are drawn, new ones appear live, and markup an
 * event carried cannot run script in the page. The screenshot is kept for a human to look at.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
// On CI the browser must be there (.ci/run installs it): a missing one fails instead of skipping.
const skip = !existsSync(CHROMIUM) && process.env.CI !== "true";

const card = (type: string, eventId: string): ChatMessage =>
  renderMessage({ ...sampleEvent(type), event_id: eventId } as unknown as VastEvent, {
    eventId,
    format: "card",
  });

const hostile: ChatMessage = {
  cardsV2: [
    {
      cardId: "hostile",
      card: {
        header: { title: "<b>not bold in a header</b>", subtitle: "plain text only" },
        sections: [
          {
            widgets: [
              {
                textParagraph: {
                  text: '<img src=x onerror="window.__ran=1"><script>window.__ran=2</script><b>kept bold</b> <a href="javascript:window.__ran=3">no script link</a>',
                },
              },
            ],
          },
        ],
      },
    },
  ],
};

describe.skipIf(skip)("the Chat preview page in headless Chromium", () => {
  let preview: ChatPreview;
  let browser: Browser;

  beforeAll(async () => {
    preview = await startChatPreview();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Playwright gives it a fresh empty profile. Quiet: this machine's network is closed (no
      // background fetches), and root needs --no-sandbox.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await preview?.close();
  });

  it("draws the cards as they arrive, safely, and saves a screenshot", async () => {
    const poster = createChatPoster(preview.webhookUrl);
    const posted = [
      card("low_credit", "evt-1"),
      card("instance_stopped", "evt-2"),
      renderDigest(
        ["machine_offline", "machine_error", "outbid"].map((type, i) => ({
          eventId: `evt-d${i}`,
          event: sampleEvent(type) as unknown as VastEvent,
        })),
      ).message,
      hostile,
    ];
    for (const message of posted) {
      expect((await poster.post(message)).kind).toBe("delivered");
    }

    const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
    await page.goto(preview.pageUrl.href);
    const posts = page.locator("article.post");
    await expect.poll(() => posts.count()).toBe(posted.length);

    const titles = await page.locator(".card-title").allTextContents();
    expect(titles).toEqual(posted.map(headline));
    // The digest draws one section per event.
    expect(await posts.nth(2).locator(".section").count()).toBe(3);
    // Widgets: the event's time and id, and the console button with its link.
    const first = posts.nth(0);
    expect(await first.locator(".top-label").allTextContents()).toEqual(["Event time", "Event ID"]);
    expect(await first.locator(".decorated-text").nth(1).textContent()).toBe("evt-1");
    expect(await first.locator(".buttons a").getAttribute("href")).toMatch(
      /^https:\/\/cloud\.vast\.ai/,
    );

    // Markup from an event: the allowed subset is drawn, nothing runs, no javascript: link.
    const hostilePost = posts.nth(3);
    expect(await hostilePost.locator(".card-title").textContent()).toBe(
      "<b>not bold in a header</b>",
    );
    expect(await hostilePost.locator(".text-paragraph").textContent()).toBe(
      "kept bold no script link",
    );
    expect(await hostilePost.locator(".text-paragraph b").textContent()).toBe("kept bold");
    expect(await hostilePost.locator("img, script").count()).toBe(0);
    expect(await hostilePost.locator(".text-paragraph a").getAttribute("href")).toBeNull();
    expect(await page.evaluate(() => (globalThis as { __ran?: number }).__ran)).toBeUndefined();

    // Live: a message posted while the page is open appears without a reload.
    const late = card("billing_failed", "evt-late");
    expect((await poster.post(late)).kind).toBe("delivered");
    await expect.poll(() => posts.count()).toBe(posted.length + 1);
    expect(await posts.last().locator(".card-title").textContent()).toBe(headline(late));
    expect(await page.locator("#status").textContent()).toBe("live");

    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, "chat-preview.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
  });

  it("answers pages only to a loopback name", async () => {
    // A web page whose name was rebound to 127.0.0.1 still sends its own name as Host.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(preview.pageUrl, { headers: { host: "attacker.example" } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
  });
});
