import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type CliProcess, spawnCli } from "../test/support/cli-process.js";
import { API_KEY, initWaitingArgs, startWorld } from "../test/support/world.js";

/** The Vast.ai client's least spacing of two calls of one route (src/vast/api-client.ts). */
const ROUTE_SPACING_MS = 500;

/**
 * `npx tsx bench/repoint.ts [deaths]`: how long Vast.ai's webhook points at a dead tunnel. serve
 * runs with its default backoff and a stand-in tunnel (test/support/fake-tunnel.mjs, a real child
 * process forwarding a loopback port), against the Vast.ai emulator; the tunnel is killed with
 * SIGKILL, again and again, and each time the window is timed from the kill to serve's "webhook
 * pointed" line for the new URL (the PUT has been answered then). Behind ngrok or tunnelmole,
 * whose dead URLs answer 404, every delivery in that window is lost (docs/tunnels.md).
 *
 * What it leaves out: a real provider's start-up (getting a new URL over the internet) and the
 * real API's latency. Those add to the window; this measures what serve itself adds.
 */

const FAKE_TUNNEL = fileURLToPath(new URL("../test/support/fake-tunnel.mjs", import.meta.url));
const BUILT = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

const logTime = (record: Record<string, unknown>) => Date.parse(String(record.time));
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

async function main(): Promise<void> {
  const deaths = Number(process.argv[2] ?? 20);
  if (!Number.isInteger(deaths) || deaths < 1) throw new Error("usage: bench/repoint.ts [deaths]");
  if (!existsSync(BUILT)) throw new Error("dist/ is missing: run `npm run build` first.");

  const world = await startWorld();
  let serve: CliProcess | undefined;
  try {
    // The webhook waits for its tunnel, as in test/tunnel/serve-tunnel.test.ts; serve's
    // --tunnel-command below stands in for the provider.
    const init = await world.run(initWaitingArgs(world), {}, API_KEY);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    const stateFile = join(world.configDir, "fake-tunnel.json");
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as { pid: number; url: string };
    // Probes every 0.2 s so that a healthy probe comes between two deaths, as it would between two
    // real ones: the supervisor counts failures in a row, and only the first one is reopened at once.
    const tunnel = `${process.execPath} ${FAKE_TUNNEL} {port}`;
    const args = ["serve", "--port", "0", "--tunnel-command", tunnel, "--probe-interval", "0.2"];
    const env = { FAKE_TUNNEL_STATE: stateFile, VAST_GCHAT_TUNNEL_ENV: "FAKE_TUNNEL_STATE" };
    serve = spawnCli([...args, "--verbose"], world.env(env));
    const running = serve;
    await running.waitForLog((r) => r.msg === "ready");

    /** From the kill, ms: to "tunnel lost" (noticed), to the new tunnel printing its URL (serve's
     * "tunnel output" line, at debug level), to "webhook pointed" (the window). */
    const results: { noticedMs: number; reopenedMs: number; pointedMs: number }[] = [];
    // waitForLog finds the first line that matches in all serve printed: a line counts only when
    // it was logged after `since` (pino's clock is the ms clock this process reads).
    const after = (msg: string, since: number) => (r: Record<string, unknown>) =>
      r.msg === msg && logTime(r) >= since;
    let lastPointed = 0;
    for (let i = 1; i <= deaths; i++) {
      // A healthy probe since the last re-point.
      await running.waitForLog(after("tunnel probe ok", lastPointed + 1));
      // The client spaces two calls of one Vast.ai route by 0.5 s (its per-route rate limit); a
      // real tunnel lives far longer than that, so each death comes at least that long after the
      // last re-point, and the figure is the window a user meets, not the pacing.
      await sleep(Math.max(0, lastPointed + ROUTE_SPACING_MS + 100 - Date.now()));
      const { pid } = state();
      const killedAt = Date.now();
      process.kill(pid, "SIGKILL");
      const lost = await running.waitForLog(after("tunnel lost", killedAt));
      const open = await running.waitForLog(
        (r) => after("tunnel output", killedAt)(r) && String(r.line).includes("forwarding"),
      );
      const pointed = await running.waitForLog(after("webhook pointed", killedAt));
      lastPointed = logTime(pointed);
      results.push({
        noticedMs: logTime(lost) - killedAt,
        reopenedMs: logTime(open) - killedAt,
        pointedMs: lastPointed - killedAt,
      });
      console.error(`[repoint] death ${i}/${deaths}: pointed after ${lastPointed - killedAt} ms`);
    }

    const row = (label: string, pick: (d: (typeof results)[number]) => number) => {
      const sorted = results.map(pick).sort((a, b) => a - b);
      return `| ${label} | ${quantile(sorted, 0.5)} | ${quantile(sorted, 0.9)} | ${sorted.at(-1)} |`;
    };
    console.log(`Tunnel death to webhook re-pointed, ${deaths} deaths (ms; pino's ms clock):\n`);
    console.log("| from the kill to | median | p90 | max |\n| --- | --- | --- | --- |");
    console.log(row('"tunnel lost": noticed', (d) => d.noticedMs));
    console.log(row("the new tunnel's URL", (d) => d.reopenedMs));
    console.log(row('"webhook pointed": the window', (d) => d.pointedMs));
  } finally {
    await serve?.stop();
    await world.close();
  }
}

await main();
