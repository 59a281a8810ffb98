import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../src/tunnel/free-port.js";
import { sampleEvent } from "../src/vast/sample-events.js";
import { type AdapterFixture, SECRET, startAdapterFixture } from "./support/adapter-fixture.js";
import { FakeChat } from "./support/fake-chat.js";
import { vastHeaders } from "./support/sign.js";

/**
 * Interoperability with the tutorial's adapter (shared/reference, run with python3 + requests):
 * both must accept and refuse the same signed requests. Where ours is deliberately stricter, the
 * difference is listed below so that any change to it is noticed.
 */
const REFERENCE = fileURLToPath(
  new URL("../../shared/reference/vast_google_chat_adapter.py", import.meta.url),
);
const PYTHON = process.env.PYTHON ?? "python3";

function pythonProblem(): string | undefined {
  if (!existsSync(REFERENCE)) return `the tutorial's adapter is not at ${REFERENCE}`;
  const check = spawnSync(PYTHON, ["-c", "import requests"], { encoding: "utf8" });
  if (check.status !== 0) return `${PYTHON} with the requests module is needed (set PYTHON)`;
  return undefined;
}

type Case = { name: string; body: Buffer; headers: Record<string, string> };

function cases(): Case[] {
  const now = Math.floor(Date.now() / 1000);
  const valid = Buffer.from(JSON.stringify(sampleEvent("low_credit")));
  const signed = (body: Buffer, options: { timestamp?: number; secret?: string } = {}) => ({
    body,
    headers: vastHeaders(options.secret ?? SECRET, body, options),
  });
  const withoutHeader = (name: string) => {
    const c = signed(valid);
    delete c.headers[name];
    return c;
  };
  return [
    { name: "valid", ...signed(valid) },
    {
      name: "valid, 250 s old",
      ...signed(Buffer.from(JSON.stringify(sampleEvent("outbid"))), { timestamp: now - 250 }),
    },
    { name: "wrong secret", ...signed(valid, { secret: "not-it" }) },
    { name: "stale", ...signed(valid, { timestamp: now - 400 }) },
    { name: "future", ...signed(valid, { timestamp: now + 400 }) },
    { name: "no signature", ...withoutHeader("x-vast-signature-256") },
    { name: "no timestamp", ...withoutHeader("x-vast-timestamp") },
    {
      name: "tampered body",
      body: Buffer.from(valid.toString().replace("Low", "low")),
      headers: signed(valid).headers,
    },
    { name: "not JSON", ...signed(Buffer.from("{nope")) },
    { name: "array", ...signed(Buffer.from("[1]")) },
    { name: "number", ...signed(Buffer.from("42")) },
  ];
}

const problem = pythonProblem();
// On CI the comparison must run: a missing python3 or reference file fails there instead of skipping.
const skip = problem !== undefined && process.env.CI !== "true";

describe.skipIf(skip)("interoperability with the tutorial's adapter", () => {
  let ours: AdapterFixture;
  let chat: FakeChat;
  let python: ChildProcess;
  let pythonUrl: string;

  beforeAll(async () => {
    if (problem) throw new Error(problem);
    ours = await startAdapterFixture();
    chat = await FakeChat.start();
    const port = await freeLoopbackPort();
    python = spawn(PYTHON, ["-u", REFERENCE], {
      env: {
        ...process.env,
        GOOGLE_CHAT_URL: chat.webhookUrl(),
        VAST_WEBHOOK_SECRET: SECRET,
        PORT: String(port),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      python.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("listening on")) resolve();
      });
      python.once("exit", (code) => reject(new Error(`the tutorial's adapter exited (${code})`)));
    });
    pythonUrl = `http://127.0.0.1:${port}/`;
  });

  afterAll(async () => {
    python?.kill("SIGTERM");
    if (python) await once(python, "exit");
    await chat?.close();
    await ours?.close();
  });

  it("accepts and refuses the same signed requests", async () => {
    const statuses: Record<string, [number, number]> = {};
    for (const c of cases()) {
      const send = (url: string) =>
        fetch(url, { method: "POST", headers: c.headers, body: c.body }).then((r) => r.status);
      statuses[c.name] = [await send(pythonUrl), await send(ours.url)];
    }
    for (const [name, [theirs, mine]] of Object.entries(statuses)) {
      expect({ name, status: mine }).toEqual({ name, status: theirs });
    }
    expect(statuses.valid).toEqual([200, 200]);
    expect(statuses["wrong secret"]).toEqual([401, 401]);
    expect(statuses.array).toEqual([400, 400]);
  });

  // The one deliberate difference: an empty signed body. The tutorial's adapter reads it as {} and
  // posts an empty notification; ours answers 400 invalid_json, since Vast.ai never sends one.
  it("differs on an empty body, on purpose", async () => {
    const body = Buffer.alloc(0);
    const headers = vastHeaders(SECRET, body);
    const theirs = (await fetch(pythonUrl, { method: "POST", headers, body })).status;
    const mine = (await fetch(ours.url, { method: "POST", headers, body })).status;
    expect([theirs, mine]).toEqual([200, 400]);
  });
});

if (skip) {
  // Make the reason visible in the test output rather than skipping silently.
  console.warn(`interop tests skipped: ${problem}`);
}
