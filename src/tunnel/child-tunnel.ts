import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { isLoopbackHost } from "../chat/webhook-url.js";
import { type OpenTunnel, TunnelError, type TunnelExit, type TunnelOpenOptions } from "./types.js";

/**
 * A tunnel that is a child process: started in its own process group (so a shell command's own
 * children go with it), watched until it reveals its public URL, and stopped as a group. Every
 * provider but ngrok is one of these.
 */
export interface ChildTunnelSpec {
  /** For messages: "cloudflared", "the tunnel command". */
  label: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** The URL in one line of the child's output, if that line has it. */
  findUrl?: (line: string) => string | undefined;
  /** Or the URL from somewhere else (cloudflared's metrics server), asked until it answers. */
  pollUrl?: () => Promise<string | undefined>;
  /** What to say when the program is not installed (spawn ENOENT). */
  notInstalled: TunnelError;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const POLL_MS = 250;
const STOP_GRACE_MS = 3000;
const KEPT_LINES = 5;

/** The first public URL in a line: https anywhere, plain http only on loopback (tests). */
export function firstPublicUrl(line: string): string | undefined {
  for (const match of line.matchAll(/\bhttps?:\/\/[^\s"'<>|]+/g)) {
    let url: URL;
    try {
      url = new URL(match[0]);
    } catch {
      continue;
    }
    if (url.protocol === "https:" || isLoopbackHost(url.hostname)) return url.origin;
  }
  return undefined;
}

/** Children still running, ended if this process exits without closing them (no orphans). */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) killGroup(child, "SIGKILL");
  });
}

/**
 * A tunnel must not outlive the adapter, but an adapter killed with SIGKILL runs no exit hook. So
 * beside each tunnel runs a tiny shell loop, outside the tunnel's group, that ends the group once
 * the adapter is gone, and ends itself once the group is: no node process, about a megabyte.
 */
const WATCHDOG = `
while kill -0 "$VAST_GCHAT_ADAPTER_PID" 2>/dev/null && kill -0 -"$VAST_GCHAT_TUNNEL_GROUP" 2>/dev/null; do
  sleep 1
done
kill -KILL -"$VAST_GCHAT_TUNNEL_GROUP" 2>/dev/null
`;

function watchForOrphan(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const watchdog = spawn("/bin/sh", ["-c", WATCHDOG], {
    detached: true,
    stdio: "ignore",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      VAST_GCHAT_ADAPTER_PID: String(process.pid),
      VAST_GCHAT_TUNNEL_GROUP: String(child.pid),
    },
  });
  // Without /bin/sh there is no watchdog; the exit hook still covers every other way to stop.
  watchdog.on("error", () => {});
  watchdog.unref();
}

export async function openChildTunnel(
  spec: ChildTunnelSpec,
  options: TunnelOpenOptions,
): Promise<OpenTunnel> {
  installExitHook();
  const child = spawn(spec.command, spec.args, {
    env: spec.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.add(child);
  watchForOrphan(child);
  const lastLines: string[] = [];
  let exitCode: number | null = null;
  // "exit" never comes for a program that could not start ("error" does): settle on either.
  const exited = new Promise<TunnelExit>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      exitCode = code;
      const how = signal ? `was stopped by ${signal}` : `exited with code ${code}`;
      resolve({ reason: `${spec.label} ${how}` });
    });
    child.once("error", (error: NodeJS.ErrnoException) => {
      running.delete(child);
      resolve({ reason: `${spec.label} could not start (${error.code ?? error.message})` });
    });
  });

  const url = await new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (error: TunnelError | undefined, found?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        killGroup(child, "SIGKILL");
        reject(error);
      } else resolve(found as string);
    };
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(
      () =>
        finish(
          new TunnelError(
            "failed",
            `${spec.label} gave no public URL within ${timeoutMs / 1000} s.`,
          ),
        ),
      timeoutMs,
    );
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return finish(spec.notInstalled);
      // Not executable: retrying will not help, the user must fix it.
      const kind = error.code === "EACCES" ? "setup" : "failed";
      finish(
        new TunnelError(kind, `${spec.label} could not start (${error.code ?? error.message}).`),
      );
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        options.onOutput?.(line);
        lastLines.push(line);
        if (lastLines.length > KEPT_LINES) lastLines.shift();
        const found = spec.findUrl?.(line);
        if (found) finish(undefined, found);
      });
    }
    exited.then(({ reason }) => {
      // The end of what it said is where programs explain why they stopped.
      const said = lastLines.length ? ` It said: ${lastLines.join(" / ").slice(-400)}` : "";
      // 126 and 127 are the shell's "cannot execute" and "not found": retrying will not help.
      const kind = exitCode === 126 || exitCode === 127 ? "setup" : "failed";
      finish(new TunnelError(kind, `${reason} before giving a public URL.${said}`));
    });
    if (spec.pollUrl) {
      const poll = spec.pollUrl;
      const ask = async () => {
        while (!settled) {
          const found = await poll().catch(() => undefined);
          if (found) return finish(undefined, found);
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
      };
      void ask();
    }
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    ended: exited,
    close() {
      closing ??= (async () => {
        // The leader may be gone while what it started lives on in its group: end the group anyway.
        if (child.exitCode !== null || child.signalCode !== null)
          return killGroup(child, "SIGKILL");
        killGroup(child, "SIGTERM");
        const forced = setTimeout(() => killGroup(child, "SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(forced);
        // The leader is gone; make sure nothing it started lingers in its group.
        killGroup(child, "SIGKILL");
      })();
      return closing;
    },
  };
}
