import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { type CliProcess, cleanEnv, runCli, spawnCli } from "../support/cli-process.js";
import { FakeChat } from "../support/fake-chat.js";
import { postSigned } from "../support/sign.js";

/** `serve` in a container: its secrets as files (VAST_WEBHOOK_SECRET_FILE, GOOGLE_CHAT_URL_FILE). */
const SECRET = "whsec-file-7f6e5d4c3b";
let dir: string;
let chat: FakeChat;
const running: CliProcess[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-serve-files-"));
  chat = await FakeChat.start();
});

afterEach(async () => {
  for (const cli of running.splice(0)) {
    cli.child.kill("SIGKILL");
    await cli.exited;
  }
  await chat.close();
  rmSync(dir, { recursive: true, force: true });
});

it("runs on secrets from files, and never prints them", async () => {
  const secretPath = join(dir, "webhook_secret");
  const chatPath = join(dir, "chat_url");
  writeFileSync(secretPath, `${SECRET}\n`, { mode: 0o444 });
  writeFileSync(chatPath, `${chat.webhookUrl()}\n`, { mode: 0o444 });
  const cli = spawnCli(
    ["serve", "--port", "0"],
    cleanEnv({
      VAST_GCHAT_CONFIG_DIR: join(dir, "config"),
      VAST_WEBHOOK_SECRET_FILE: secretPath,
      GOOGLE_CHAT_URL_FILE: chatPath,
    }),
  );
  running.push(cli);
  const ready = await cli.waitForLog((r) => r.msg === "ready");
  const event = sampleEvent("low_credit");
  expect((await postSigned(String(ready.url), SECRET, event)).status).toBe(200);
  await cli.waitForLog((r) => r.msg === "delivered" && r.event_id === event.event_id);
  expect(chat.messages).toHaveLength(1);
  const output = cli.stdout() + cli.stderr();
  expect(output).not.toContain(SECRET);
  expect(output).not.toContain("fake-token-456");
});

it("exits 2 naming the variable when its file cannot be read", async () => {
  const result = await runCli(
    ["serve", "--port", "0"],
    cleanEnv({
      VAST_GCHAT_CONFIG_DIR: join(dir, "config"),
      VAST_WEBHOOK_SECRET_FILE: join(dir, "no-such-file"),
      GOOGLE_CHAT_URL: chat.webhookUrl(),
    }),
  );
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(
    /^Error: VAST_WEBHOOK_SECRET_FILE names a file that cannot be read: .*no-such-file \(ENOENT\)\./,
  );
});
