import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * Runs test/fixtures/tunnel/fake-tunnelmole-service.mjs, a stand-in for tunnelmole's service on
 * loopback, as a real process; `log` is where it writes what clients send it.
 */
const FAKE_SERVICE = fileURLToPath(
  new URL("../fixtures/tunnel/fake-tunnelmole-service.mjs", import.meta.url),
);

export interface FakeService {
  url: string;
  /** Runs one of the stand-in's stdin commands and waits until it is done. */
  command(line: string): Promise<void>;
  /** What clients have sent it, in order. */
  received(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startService(log: string): Promise<FakeService> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [FAKE_SERVICE], {
    env: { PATH: process.env.PATH, FAKE_SERVICE_LOG: log },
  });
  const lines: Interface = createInterface({ input: child.stdout });
  const next = () => once(lines, "line").then(([line]) => String(line));
  const url = await next();
  return {
    url,
    async command(line) {
      const done = new Promise<void>((resolve) => {
        const onLine = (text: string) => {
          if (text === `done ${line.split(" ")[0]}`) {
            lines.off("line", onLine);
            resolve();
          }
        };
        lines.on("line", onLine);
      });
      child.stdin.write(`${line}\n`);
      await done;
    },
    received() {
      if (!existsSync(log)) return [];
      return readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    async close() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, "exit");
    },
  };
}
