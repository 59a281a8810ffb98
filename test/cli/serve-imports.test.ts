import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { sampleEvent } from "../../src/vast/sample-events.js";
import { BIN, type CliProcess, cleanEnv, spawnProcess } from "../support/cli-process.js";
import { FakeChat } from "../support/fake-chat.js";
import { postSigned } from "../support/sign.js";

/**
 * Issue 15: undici costs serve some 20 MB of memory, so serve loads it only when it calls
 * Vast.ai, probes a public URL or opens tunnelmole's websocket. A serve with its secrets in the
 * environment and no tunnel does none of these: it starts, takes an event and posts it to Chat
 * without loading undici at all, neither the package nor the copy bundled in Node (which an ESM
 * import of node:http loads on Node 22+: src/http-modules.ts). Nor prom-client's index, whose
 * Pushgateway brings node:zlib and its default metrics more (some 2 MiB in all:
 * src/adapter/prom-client-classes.ts). The child records every module it resolves through a module
 * hook given to `node --import`: registerHooks (synchronous, in the thread) where Node has it,
 * else register (Node 20; the hooks run in a thread of their own, hence a file for the record).
 */
const RECORDER = `
import { appendFileSync } from "node:fs";
import * as module from "node:module";
const record = (url) => appendFileSync(process.env.RESOLVED_LOG, url + "\\n");
// Node's own copy of undici (behind fetch, and behind node:http's lazy WebSocket getters on 22+)
// is a built-in module, as is zlib: they show in moduleLoadList, not in the hook.
process.on("exit", () => {
  for (const name of process.moduleLoadList) {
    if (/undici|zlib/.test(name)) record("builtin:" + name);
  }
});
if (module.registerHooks) {
  module.registerHooks({
    resolve(specifier, context, next) {
      const result = next(specifier, context);
      record(result.url);
      return result;
    },
  });
} else {
  module.register(new URL("./async-hooks.mjs", import.meta.url));
}
`;
const ASYNC_HOOKS = `
import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.RESOLVED_LOG, result.url + "\\n");
  return result;
}
`;

const SECRET = "whsec-imports-5e4d3c2b1a";
let dir: string;
let chat: FakeChat;
let serve: CliProcess | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-imports-"));
  chat = await FakeChat.start();
});

afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null) {
    serve.child.kill("SIGKILL");
  }
  await serve?.exited;
  await chat.close();
  rmSync(dir, { recursive: true, force: true });
});

it("serve starts, takes an event and posts it to Chat without loading undici or prom-client's index", async () => {
  writeFileSync(join(dir, "recorder.mjs"), RECORDER);
  writeFileSync(join(dir, "async-hooks.mjs"), ASYNC_HOOKS);
  const resolvedLog = join(dir, "resolved.log");
  writeFileSync(resolvedLog, "");
  const env = cleanEnv({
    VAST_WEBHOOK_SECRET: SECRET,
    GOOGLE_CHAT_URL: chat.webhookUrl(),
    VAST_GCHAT_CONFIG_DIR: join(dir, "config"),
    RESOLVED_LOG: resolvedLog,
  });
  const recorder = pathToFileURL(join(dir, "recorder.mjs")).href;
  serve = spawnProcess(process.execPath, ["--import", recorder, BIN, "serve", "--port", "0"], env);
  const ready = await serve.waitForLog((r) => r.msg === "ready");
  await postSigned(String(ready.url), SECRET, sampleEvent("instance_stopped"));
  await chat.waitForMessages(1);
  expect(await serve.stop()).toMatchObject({ code: 0 });

  const resolved = readFileSync(resolvedLog, "utf8").split("\n");
  // The record is real: it holds serve's own modules and the poster's.
  expect(resolved).toContainEqual(expect.stringMatching(/\/dist\/cli\/commands\/serve\.js$/));
  expect(resolved).toContainEqual(expect.stringMatching(/\/dist\/chat\/post-message\.js$/));
  // The young generation is kept small before serve's modules load (src/cli/young-generation.ts).
  const youngGeneration = resolved.findIndex((url) =>
    url.endsWith("/dist/cli/young-generation.js"),
  );
  expect(youngGeneration).toBeGreaterThan(-1);
  expect(youngGeneration).toBeLessThan(
    resolved.findIndex((url) => url.endsWith("/dist/cli/commands/serve.js")),
  );
  expect(resolved.filter((url) => /[/\\]node_modules[/\\]undici[/\\]/.test(url))).toEqual([]);
  expect(resolved.filter((url) => /[/\\]prom-client[/\\]index\.js$/.test(url))).toEqual([]);
  expect(resolved.filter((url) => url.startsWith("builtin:"))).toEqual([]);
});
