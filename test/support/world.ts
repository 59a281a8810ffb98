import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type EmulatorOptions,
  startVastEmulator,
  type VastEmulator,
} from "../../src/vast/emulator.js";
import { cleanEnv, runCli } from "./cli-process.js";
import { FakeChat } from "./fake-chat.js";
import { type ProgramRun, runInProcess } from "./run-program.js";

/**
 * A whole outside world on loopback for command tests: the product's Vast.ai emulator (allowing
 * plain-http loopback webhooks), a fake Chat, and an empty config directory.
 */
export const API_KEY = "emulator-key";

export interface World {
  vast: VastEmulator;
  chat: FakeChat;
  configDir: string;
  /** The environment a CLI process gets: emulator URL, config dir, file secrets, no colour. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** A command run in this process (run-program.ts), with that environment. */
  run(args: string[], extra?: Record<string, string>, input?: string): Promise<ProgramRun>;
  /** The same command line run by the built binary, for what only a process shows. */
  runProcess(
    args: string[],
    extra?: Record<string, string>,
    input?: string,
  ): ReturnType<typeof runCli>;
  close(): Promise<void>;
}

export async function startWorld(options: EmulatorOptions = {}): Promise<World> {
  const vast = await startVastEmulator({ allowLoopbackHttp: true, ...options });
  const chat = await FakeChat.start();
  const configDir = mkdtempSync(join(tmpdir(), "vast-gchat-world-"));
  const env = (extra: Record<string, string> = {}) =>
    cleanEnv({
      VAST_API_URL: vast.url,
      VAST_GCHAT_CONFIG_DIR: configDir,
      VAST_GCHAT_SECRET_STORE: "file",
      ...extra,
    });
  const world: World = {
    vast,
    chat,
    configDir,
    env,
    run: (args, extra, input) => runInProcess(args, env(extra), { input }),
    runProcess: (args, extra, input) => runCli(args, env(extra), input),
    async close() {
      await world.vast.close();
      await chat.close();
      rmSync(configDir, { recursive: true, force: true });
    },
  };
  return world;
}

/** The unattended init most tests start from. */
export function initArgs(world: World, ...extra: string[]): string[] {
  return [
    "init",
    "--api-key-stdin",
    "--chat-url",
    world.chat.webhookUrl(),
    "--tunnel",
    "none",
    "--public-url",
    "https://adapter.example.org",
    "--yes",
    ...extra,
  ];
}

/** The unattended init of a webhook that waits for its tunnel: no public URL yet, no Chat check. */
export function initWaitingArgs(world: World, ...extra: string[]): string[] {
  return [
    "init",
    "--api-key-stdin",
    "--chat-url",
    world.chat.webhookUrl(),
    "--tunnel",
    "cloudflared",
    "--yes",
    "--no-chat-check",
    ...extra,
  ];
}
