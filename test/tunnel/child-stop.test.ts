import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commandTunnel } from "../../src/tunnel/command-tunnel.js";
import type { OpenTunnel } from "../../src/tunnel/types.js";

/**
 * Stopping a tunnel that is a child process, as serve does on SIGTERM: a --tunnel-command run
 * through a shell whose own children outlive the shell. close() must return only once nothing of
 * the tunnel's process group runs any more (nor its watchdog). The processes are real; what runs
 * is read from /proc, so these tests need Linux.
 */

interface Proc {
  pid: number;
  state: string;
  pgrp: number;
}

function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      found.push({ pid: Number(entry), state: state ?? "?", pgrp: Number(pgrp) });
    } catch {
      // Ended while we looked.
    }
  }
  return found;
}

/** The running (not zombie: ended, awaiting its reaper) processes of a group. */
function liveMembers(pgid: number): number[] {
  return processes()
    .filter((p) => p.pgrp === pgid && p.state !== "Z")
    .map((p) => p.pid);
}

function groupOf(pid: number): number {
  const found = processes().find((p) => p.pid === pid);
  if (!found) throw new Error(`process ${pid} is not running`);
  return found.pgrp;
}

/** The watchdog shells that guard group `pgid` (they carry it in their environment). */
function watchdogsOf(pgid: number): number[] {
  return processes()
    .filter((p) => p.state !== "Z")
    .filter((p) => {
      try {
        const env = readFileSync(`/proc/${p.pid}/environ`, "utf8").split("\0");
        return env.includes(`VAST_GCHAT_TUNNEL_GROUP=${pgid}`);
      } catch {
        return false;
      }
    })
    .map((p) => p.pid);
}

/** What the grandchildren print as the tunnel's URL: loopback, nothing listens there. */
const TUNNEL_URL = "http://127.0.0.1:9";
/** A grandchild that ignores SIGTERM (ignored signals stay ignored across exec). */
const IGNORES_TERM = `(trap '' TERM; echo ${TUNNEL_URL}; exec sleep 1000)`;

let dir: string;
let tunnel: OpenTunnel | undefined;
let group: number | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vast-gchat-child-stop-"));
});
afterEach(async () => {
  await tunnel?.close();
  // A backstop for a failed test: nothing of it may outlive the run.
  if (group !== undefined) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  tunnel = undefined;
  group = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens a command tunnel whose shell starts `grandchild` in the background, says its pid and waits:
 * the shape of `--tunnel-command "sh wrapper.sh {port}"`. The grandchild prints the tunnel's (an
 * unused loopback) URL once its signal handling is set up, so the tunnel is open only then.
 */
async function openWithGrandchild(grandchild: string) {
  let grandchildPid = 0;
  const opened = await commandTunnel(
    `${grandchild} & echo "grandchild $!"; wait`,
    process.env,
  ).open({
    port: 9,
    onOutput: (line) => {
      const match = /^grandchild (\d+)$/.exec(line);
      if (match) grandchildPid = Number(match[1]);
    },
  });
  tunnel = opened;
  expect(grandchildPid).toBeGreaterThan(0);
  group = groupOf(grandchildPid);
  return { tunnel: opened, grandchildPid, group };
}

describe.skipIf(!existsSync("/proc/self/stat"))("closing a child tunnel", () => {
  it("ends a grandchild that ignores SIGTERM, and returns only once none of the group runs", async () => {
    const opened = await openWithGrandchild(IGNORES_TERM);
    expect(liveMembers(opened.group)).toContain(opened.grandchildPid);
    expect(watchdogsOf(opened.group)).not.toEqual([]);

    const started = Date.now();
    await opened.tunnel.close();
    const took = Date.now() - started;

    expect(liveMembers(opened.group)).toEqual([]);
    expect(watchdogsOf(opened.group)).toEqual([]);
    // It was asked first (SIGTERM) and given its grace, then killed.
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(8000);
    // The shell (the group's leader) has exited, and `ended` says so.
    expect((await opened.tunnel.ended).reason).toMatch(/^the tunnel command /);
  });

  it("gives a grandchild that handles SIGTERM the time to finish, and no more", async () => {
    // It takes 300 ms to clean up after SIGTERM, long after its shell is gone.
    const cleanedUp = join(dir, "cleaned-up");
    const script = join(dir, "slow-to-stop.mjs");
    writeFileSync(
      script,
      `import { writeFileSync } from "node:fs";
process.on("SIGTERM", () => setTimeout(() => {
  writeFileSync(${JSON.stringify(cleanedUp)}, "done");
  process.exit(0);
}, 300));
setInterval(() => {}, 1000);
console.log(${JSON.stringify(TUNNEL_URL)});
`,
    );
    const opened = await openWithGrandchild(`${process.execPath} ${script}`);

    const started = Date.now();
    await opened.tunnel.close();
    const took = Date.now() - started;

    expect(existsSync(cleanedUp)).toBe(true);
    expect(liveMembers(opened.group)).toEqual([]);
    expect(watchdogsOf(opened.group)).toEqual([]);
    // Not SIGKILLed at the end of the grace period: it ended by itself.
    expect(took).toBeLessThan(2500);
  });

  it("a second close() waits for the same end", async () => {
    const opened = await openWithGrandchild(IGNORES_TERM);
    const first = opened.tunnel.close();
    const second = opened.tunnel.close();
    await second;
    expect(liveMembers(opened.group)).toEqual([]);
    await first;
  });
});
