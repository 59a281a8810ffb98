import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { isLoopbackHost } from "../service-url.js";
import { processTable } from "./process-table.js";
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
  /** The child's whole environment (tunnelChildEnv): nothing of serve's is inherited. */
  env: NodeJS.ProcessEnv;
  /** The URL in one line of the child's output, if that line has it. */
  findUrl?: (line: string) => string | undefined;
  /** Or the URL from somewhere else (cloudflared's metrics server), asked until it answers. */
  pollUrl?: () => Promise<string | undefined>;
  /** What to say when the program is not installed (spawn ENOENT). */
  notInstalled: TunnelError;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const POLL_MS = 250;
/** How long the group has to end after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 3000;
/** How long the kernel may take to end the group after SIGKILL before close() stops waiting. */
const KILL_WAIT_MS = 2000;
/** How often to look whether the group is gone: nothing signals the end of a grandchild. */
const GONE_POLL_MS = 20;
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
  // Windows has no process groups (kill(-pid) fails there): stop at least the program itself.
  if (process.platform === "win32") {
    child.kill(signal);
    return;
  }
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Whether any process of group `pgid` is still running. kill(-pgid, 0) alone says yes for a
 * zombie too (a process that has ended but is not reaped yet: an orphaned grandchild waits for
 * init, which may reap late), so on Linux the group's members are looked up in /proc and the
 * zombies among them do not count. Without /proc (macOS), kill's answer stands.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // EPERM: a member exists that we may not signal; it is alive all the same.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  const table = processTable();
  if (!table) return true;
  return table.some((entry) => entry.pgrp === pgid && entry.state !== "Z");
}

/** Resolves true once group `pgid` has no running process, false if it still has after `ms`. */
async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await delay(GONE_POLL_MS);
  }
  return true;
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

/** Starts the watchdog for `child`; returns how to end it once the group is gone. */
function watchForOrphan(child: ChildProcess): () => Promise<void> {
  if (child.pid === undefined) return async () => {};
  const watchdog = spawn("/bin/sh", ["-c", WATCHDOG], {
    detached: true,
    stdio: "ignore",
    // Its two inputs and a PATH for sleep: none of serve's environment.
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      VAST_GCHAT_ADAPTER_PID: String(process.pid),
      VAST_GCHAT_TUNNEL_GROUP: String(child.pid),
    },
  });
  // Without /bin/sh there is no watchdog; the exit hook still covers every other way to stop.
  watchdog.on("error", () => {});
  watchdog.unref();
  // It would end itself within a second of the group; a closed tunnel leaves nothing behind at
  // all. It is detached, so its pid is its group's: the shell and the sleep it waits on.
  return async () => {
    const pgid = watchdog.pid;
    if (pgid === undefined) return;
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      return; // Already gone.
    }
    await groupGone(pgid, KILL_WAIT_MS);
  };
}

export async function openChildTunnel(
  spec: ChildTunnelSpec,
  options: TunnelOpenOptions,
): Promise<OpenTunnel> {
  installExitHook();
  const child = spawn(spec.command, spec.args, {
    env: spec.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.add(child);
  const stopWatchdog = watchForOrphan(child);
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
        // Never handed out, so no close() will come: end it all now.
        killGroup(child, "SIGKILL");
        void stopWatchdog();
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
        const pgid = child.pid;
        if (pgid !== undefined) {
          // The whole group, not just the leader: a shell may exit at SIGTERM while what it
          // started lives on, and serve must not exit before all of it is gone. The group gets
          // the grace period as a whole; whatever is left then (a program that ignores SIGTERM)
          // gets SIGKILL.
          killGroup(child, "SIGTERM");
          let gone = await groupGone(pgid, STOP_GRACE_MS);
          if (!gone) {
            killGroup(child, "SIGKILL");
            gone = await groupGone(pgid, KILL_WAIT_MS);
          }
          // The leader is dead and Node reaps it at once; wait for that, so `ended` has settled.
          // (A process SIGKILL could not end within KILL_WAIT_MS is stuck in the kernel: waiting
          // longer would not help, and close() must return.)
          if (gone) await exited;
        }
        await stopWatchdog();
      })();
      return closing;
    },
  };
}
