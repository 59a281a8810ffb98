import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AdapterConfig,
  type RunningAdapter,
  startAdapter,
} from "../../src/adapter/adapter.js";
import type { StoredDelivery } from "../../src/delivery/event-store.js";
import { FakeChat } from "./fake-chat.js";

export const SECRET = "whsec-test-4f9c2a7e1b";

/**
 * An in-process adapter on loopback port 0 with a real SQLite file, posting to a fake Chat: by
 * default one route, `default` (types all), to the space AAAAfakeSpace; `routes` gives others.
 */
export interface AdapterFixture {
  adapter: RunningAdapter;
  chat: FakeChat;
  dir: string;
  storePath: string;
  url: string;
  close(): Promise<void>;
}

/** A route of the fixture: its Chat URL is the fake Chat's, for `space`. */
export interface FixtureRoute {
  name: string;
  types: string[];
  mentions?: string[];
  space: string;
}

export const DEFAULT_SPACE = "AAAAfakeSpace";

export async function startAdapterFixture(
  overrides: Partial<AdapterConfig> = {},
  routes: FixtureRoute[] = [{ name: "default", types: ["all"], space: DEFAULT_SPACE }],
): Promise<AdapterFixture> {
  const dir = mkdtempSync(join(tmpdir(), "vast-gchat-test-"));
  const chat = await FakeChat.start();
  const storePath = join(dir, "events.db");
  const adapter = await startAdapter({
    host: "127.0.0.1",
    port: 0,
    path: "/",
    secrets: () => [SECRET],
    routes: routes.map((route) => ({
      name: route.name,
      types: route.types,
      mentions: route.mentions ?? [],
      chatUrl: new URL(chat.webhookUrl(route.space)),
    })),
    format: "card",
    storePath,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    // Chat's one-message-a-second pacing is tested on its own; elsewhere it would only slow tests.
    rate: 1000,
    ...overrides,
  });
  // A test may wait for many deliveries at once, each with a listener of its own.
  adapter.events.setMaxListeners(100);
  return {
    adapter,
    chat,
    dir,
    storePath,
    url: `${adapter.origin}${overrides.path ?? "/"}`,
    async close() {
      await adapter.close(500);
      await chat.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the adapter reports `name` for the event with this id (to `route`, if given). */
export function waitForAdapterEvent(
  adapter: RunningAdapter,
  name: "delivered" | "dead" | "retrying",
  eventId: string,
  timeoutMs = 15_000,
  route?: string,
): Promise<StoredDelivery> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      adapter.events.off(name, listener);
      reject(new Error(`no "${name}" for ${eventId} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (event: StoredDelivery) => {
      if (event.eventId !== eventId || (route !== undefined && event.route !== route)) return;
      clearTimeout(timer);
      adapter.events.off(name, listener);
      resolve(event);
    };
    adapter.events.on(name, listener);
  });
}
