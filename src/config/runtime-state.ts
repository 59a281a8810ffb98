import { rmSync } from "node:fs";
import { join } from "node:path";
import { readPrivateJsonObject, writePrivateJson } from "./private-file.js";
import { UntrustedError } from "./trust.js";

/** How messages name the file. */
const WHAT = "adapter state file";

/**
 * Where a running `serve` can be found: it writes this file when ready and removes it when it
 * stops, so `test` and `status` can talk to it. Nothing secret is in it. A `serve` killed with
 * SIGKILL leaves it behind; readers check that the process is still alive.
 */
export interface AdapterRuntime {
  pid: number;
  /** Where the adapter listens locally, e.g. http://127.0.0.1:8787 */
  origin: string;
  /**
   * The loopback-only listener with the detailed /health and /metrics, e.g. http://127.0.0.1:41234.
   * Absent in the file of a serve older than that listener.
   */
  adminOrigin?: string;
  path: string;
  /** The public URL Vast.ai delivers to, when there is one. */
  publicUrl?: string;
  startedAt: number;
  /**
   * The routes this adapter delivers by name (README, "Routes"). Absent from a serve that
   * delivers everything to one space, its `default` route's: `route test` sends a route's
   * sample through the adapter only when the adapter delivers that route.
   */
  routes?: string[];
  /** The tunnel's provider, restarts and last end-to-end probe, when serve runs one. */
  tunnel?: {
    provider: string;
    url: string | undefined;
    restarts: number;
    lastProbe: { at: number; ok: boolean; error?: string } | undefined;
  };
  /**
   * What is wrong with the chain now, as serve's chain watch sees it (issue 18), each with when it
   * began (ms since epoch); absent when nothing is. `status` lists them.
   */
  problems?: Array<{ kind: string; since: number; title: string; summary: string; action: string }>;
}

export function runtimeStatePath(configDir: string): string {
  return join(configDir, "adapter.json");
}

/** Written like the other files of the config directory: 0600, atomically, never half there. */
export function writeRuntimeState(configDir: string, state: AdapterRuntime): void {
  writePrivateJson(runtimeStatePath(configDir), { ...state }, WHAT);
}

/** Removes the file only if it is still ours: a newer serve may have replaced it. */
export function removeRuntimeState(configDir: string, pid: number): void {
  if (readRuntimeState(configDir)?.pid === pid)
    rmSync(runtimeStatePath(configDir), { force: true });
}

/**
 * The running adapter, or undefined when none is (no file, a damaged one, or its process is
 * gone). A file another user could have written is refused out loud (exit 2), not ignored: it
 * would tell `trigger` where to send a signed event and `status` what to show.
 */
export function readRuntimeState(configDir: string): AdapterRuntime | undefined {
  let state: AdapterRuntime | undefined;
  try {
    state = readPrivateJsonObject(runtimeStatePath(configDir), WHAT) as AdapterRuntime | undefined;
  } catch (error) {
    if (error instanceof UntrustedError) throw error;
    return undefined;
  }
  if (typeof state?.pid !== "number") return undefined;
  return isAlive(state.pid) ? state : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
