import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { processTable } from "../../src/tunnel/process-table.js";
import { startVastEmulator } from "../../src/vast/emulator.js";
import { cleanEnv } from "../../test/support/cli-process.js";
import { REPO_ROOT } from "../targets.js";
import * as h from "./harness.js";
import { sendLikeVast, startChaosChat } from "./peers.js";

/**
 * Secrets: every line the suite's children printed is searched for every secret, after a scenario
 * that reaches the paths most likely to leak (debug logging, Chat failing, forged deliveries, the
 * commands that report configuration or call the local Vast.ai API with a good and a refused key,
 * start-up errors about a bad Chat URL or secret); so are both listeners' answers, and the
 * environment and command line of every process a serve with a tunnel command starts.
 */
async function leakScenario(context: h.PartContext) {
  const { secrets, dir } = context;
  const apiKeys = { [secrets.apiKey]: { userId: 4242 } };
  const emulator = await startVastEmulator({ allowLoopbackHttp: true, apiKeys });
  context.later(() => emulator.close());
  const chat = await startChaosChat(context, 7);
  const debugEnv = { DEBUG: "vast-gchat", VAST_API_URL: emulator.url };
  const args = ["--tunnel", "none", "-v"];
  const serve = await h.startServe(context, "secrets", chat.url, { args, env: debugEnv });
  const fullEnv = {
    VAST_WEBHOOK_SECRET: secrets.webhookSecret,
    GOOGLE_CHAT_URL: chat.url,
    VAST_API_KEY: secrets.apiKey,
    VAST_GCHAT_CONFIG_DIR: serve.spec.configDir,
    ...debugEnv,
  };
  let commands = 0;
  const command = (stem: string, args: string[], env: Record<string, string> = {}) => {
    commands++;
    return h.exitWithin(
      h.spawnCli(args, cleanEnv({ ...fullEnv, ...env }), join(dir, stem)),
      20_000,
    );
  };
  context.progress(
    "secrets: serve -v with DEBUG, Chat failing for a while, forged deliveries, commands",
  );
  chat.setChaos(true);
  const events = h.makeSoakEvents("S", 20);
  const sending = { concurrency: 4, ratePerS: 4, seedOffset: 8, deadlineS: 30 };
  await sendLikeVast(context, serve, events, sending);
  // Forged, stale and unsigned deliveries: the rejections are logged. The second carries the
  // secret itself as its signature, as a confused sender might: not a word of it may be logged.
  const now = String(Math.floor(Date.now() / 1000));
  const signed = (timestamp: string, signature: string) => ({
    "Content-Type": "application/json",
    "X-Vast-Timestamp": timestamp,
    "X-Vast-Signature-256": signature,
  });
  const forged = Buffer.from('{"event_id":"forged"}');
  for (const headers of [signed("1", "sha256=00"), signed(now, secrets.webhookSecret), {}]) {
    await h.ask(`${serve.origin}/`, { method: "POST", headers, body: forged });
  }
  // What both listeners answer, one file each for the scan, and whether as README.md says; while
  // Chat fails (the detailed /health has Chat's last error, /metrics the rejections) and after.
  const answers = { problems: [] as string[], files: [] as string[] };
  mkdirSync(join(dir, "answers"));
  const collectAnswers = async (phase: string) => {
    for (const [name, url, method, expect] of [
      ["public-health", `${serve.origin}/health`, "GET", 200],
      ["public-health-head", `${serve.origin}/health`, "HEAD", 200],
      ["public-metrics", `${serve.origin}/metrics`, "GET", 404],
      ["loopback-health", `${serve.adminOrigin}/health`, "GET", 200],
      ["loopback-metrics", `${serve.adminOrigin}/metrics`, "GET", 200],
    ] as const) {
      const { status, text, error } = await h.ask(url, { method });
      const label = `${method} ${name} (${phase})`;
      const problem = error ?? (status === expect ? undefined : `${status}, not ${expect}`);
      if (problem) answers.problems.push(`${label}: ${problem}`);
      if (error !== undefined) continue;
      const file = join(dir, "answers", `${phase}-${name}.txt`);
      writeFileSync(file, `${status}\n${text}`);
      answers.files.push(file);
    }
  };
  await collectAnswers("chat-failing");
  chat.setChaos(false);
  const tokens = events.map((event) => event.token);
  await chat.waitForTokens(tokens, 30_000);
  await collectAnswers("chat-calm");

  await command("trigger", ["trigger", "low_credit", "--url", `${serve.origin}/`]);
  await command("status", ["status", "--json"]);
  await command("status-text", ["status"]);
  await command("types", ["types", "--json"]);
  await command("types-refused", ["types"], { VAST_API_KEY: secrets.refusedApiKey });
  await command("events", ["events", "list", "--json"]);
  await h.stop(serve.child);

  // Start-up refusals: a Chat URL without its token, one over plain http to another host,
  // a secret with a trailing space. Each must name the problem without echoing the value.
  const serveArgs = ["serve", "--port", String(await freeLoopbackPort()), "--tunnel", "none"];
  const chatPath = "/v1/spaces/AAAAsoakSpace/messages";
  const { chatKey, chatToken } = secrets;
  await command("serve-no-token", serveArgs, {
    GOOGLE_CHAT_URL: `https://chat.googleapis.com${chatPath}?key=${chatKey}`,
  });
  await command("serve-http-chat", serveArgs, {
    GOOGLE_CHAT_URL: `http://chat.invalid${chatPath}?key=${chatKey}&token=${chatToken}`,
  });
  await command("serve-bad-secret", serveArgs, {
    VAST_WEBHOOK_SECRET: `${secrets.webhookSecret} `,
  });
  return { commands, answers };
}

/** The NUL-separated entries of a /proc file. */
const procEntries = (path: string) => readFileSync(path, "latin1").split("\0").filter(Boolean);

/**
 * Everything below `root` (children, grandchildren, ...) from /proc, several looks a moment apart,
 * merged: short-lived children (the watchdog's sleep) come and go. Processes that end meanwhile
 * are skipped; one whose environment cannot be read for another reason is unreadable (refused).
 * Leaks are `VARIABLE (which secret)` or `command line (which secret)`: never a value.
 */
async function scanBelow(root: number, needles: readonly h.Needle[]) {
  const found = new Map<string, { pid: number; comm: string; cmdline: string; leaks: string[] }>();
  const unreadable = new Map<number, string>();
  for (let look = 0; look < 4; look++) {
    if (look > 0) await sleep(500);
    const table = processTable() ?? [];
    const below = [root];
    for (let index = 0; index < below.length; index++) {
      for (const entry of table) if (entry.ppid === below[index]) below.push(entry.pid);
    }
    for (const pid of below.slice(1)) {
      let comm: string;
      let cmdline: string;
      let environ: string[];
      try {
        comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
        cmdline = procEntries(`/proc/${pid}/cmdline`).join(" ");
        environ = procEntries(`/proc/${pid}/environ`);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "error";
        if (code !== "ENOENT" && code !== "ESRCH") unreadable.set(pid, code);
        continue;
      }
      // The same pid with another command line is another program (an exec): keep both.
      const key = `${pid}\0${cmdline}`;
      if (found.has(key)) continue;
      const leaks = new Set<string>();
      for (const [where, text] of [
        ...environ.map((variable) => [variable.split("=")[0] || variable, variable]),
        ["command line", cmdline],
      ]) {
        for (const needle of needles.filter((needle) => text?.includes(needle.value))) {
          // One line per variable and secret: the halves of a value are the same leak.
          leaks.add(`${where} (${needle.name.replace(/ \((first|second) half\)$/, "")})`);
        }
      }
      found.set(key, { pid, comm, cmdline, leaks: [...leaks] });
    }
  }
  return { processes: [...found.values()], unreadable };
}

/**
 * serve with a tunnel command and every secret in its environment (NGROK_AUTHTOKEN too); while it
 * runs, what it started is read from /proc: none of it may hold a secret. Two rounds: serve's
 * defaults, and a user who lets the tunnel have everything that begins with VAST_ or GOOGLE_
 * (VAST_GCHAT_TUNNEL_ENV), which must still not hand over vast-gchat's own secrets.
 */
async function tunnelChildren(context: h.PartContext, needles: readonly h.Needle[]) {
  const chat = await startChaosChat(context, 9);
  // The tunnel command starts a grandchild (a sleep), then a loopback forwarder that prints its
  // URL as a tunnel program prints its public one: serve's probe goes through it to serve's own
  // /health, and nothing leaves the machine.
  const script = join(context.dir, "tunnel-stand-in.sh");
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  const forwarder = quote(join(REPO_ROOT, "test/support/fake-tunnel.mjs"));
  const exec = `exec ${quote(process.execPath)} ${forwarder} "$1"`;
  writeFileSync(script, `#!/bin/sh\nsleep 120 &\n${exec}\n`, { mode: 0o700 });
  const [described, leaks, notes]: [string[], string[], string[]] = [[], [], []];
  let ran = true;
  for (const round of ["defaults", "VAST_GCHAT_TUNNEL_ENV=VAST_*,GOOGLE_*"]) {
    const stem = round === "defaults" ? "serve-tunnel" : "serve-tunnel-named";
    const env = round === "defaults" ? {} : { VAST_GCHAT_TUNNEL_ENV: "VAST_*,GOOGLE_*" };
    const serve = await h.startServe(context, "secrets, tunnel", chat.url, {
      stem,
      configDir: join(context.dir, `${stem}-config`),
      args: ["--tunnel", "command", "--tunnel-command", `/bin/sh '${script}' {port}`, "-v"],
      env: { DEBUG: "vast-gchat", ...env },
    });
    const { processes, unreadable } = await scanBelow(serve.child.pid, needles);
    const forwarderSeen = processes.some((found) => found.cmdline.includes("fake-tunnel.mjs"));
    const tunnelOpen = readFileSync(serve.child.log, "utf8").includes('"msg":"tunnel open"');
    await h.stop(serve.child);

    const byName = new Map<string, number>();
    for (const { comm } of processes) h.countInto(byName, comm);
    const names = [...byName].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
    described.push(
      `${round}: ${processes.length} processes (${names.join(", ") || "none"})${tunnelOpen ? "" : ", tunnel NOT open"}${forwarderSeen ? "" : ", the tunnel program NOT found"}${unreadable.size ? `, ${unreadable.size} unreadable` : ""}`,
    );
    // Which variable took which secret into which children: names and pids, never a value.
    const holders = new Map<string, string[]>();
    for (const { pid, comm, cmdline, leaks: found } of processes) {
      for (const leak of found) {
        holders.set(leak, [...(holders.get(leak) ?? []), `${comm} ${pid}`]);
        const where = `pid ${pid} ${comm} (${cmdline.slice(0, 80)})`;
        notes.push(`secrets: tunnel child environment [${round}]: ${leak} in ${where}`);
      }
    }
    for (const [leak, list] of holders) leaks.push(`${leak} → ${list.join(", ")} [${round}]`);
    for (const [pid, code] of unreadable) {
      notes.push(`secrets: could not read /proc/${pid}/environ (${code})`);
    }
    ran &&= processes.length > 0 && forwarderSeen && unreadable.size === 0;
  }
  const more = leaks.length > 8 ? `; and ${leaks.length - 8} more (notes)` : "";
  const row = h.row(
    "secrets: none in the environment of the processes serve starts (tunnel command)",
    `below serve: ${described.join("; ")}: ${leaks.length ? `leaked: ${leaks.slice(0, 8).join("; ")}${more}` : "no secret"}`,
    "0 leaks (webhook secret, API key, Chat key/token, NGROK_AUTHTOKEN)",
    ran && leaks.length === 0,
  );
  return { row, notes };
}

/** Every line of the files searched for every needle: where, never what (the line holds it). */
function scan(files: Iterable<string>, needles: readonly h.Needle[]) {
  const result = { files: 0, lines: 0, hits: [] as string[], kinds: new Set<string>() };
  for (const file of [...files].filter(existsSync)) {
    result.files++;
    const lines = readFileSync(file, "utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    for (const [index, line] of lines.entries()) {
      result.lines++;
      for (const { name } of needles.filter((needle) => line.includes(needle.value))) {
        result.kinds.add(name);
        result.hits.push(`secrets: ${name} in ${basename(file)} line ${index + 1} (${file})`);
      }
    }
  }
  return { ...result, kinds: result.kinds.size ? `: ${[...result.kinds].join(", ")}` : "" };
}

export async function runSecrets(context: h.PartContext): Promise<h.PartResult> {
  const needles = h.needlesOf(context.secrets);
  const { commands, answers: asked } = await leakScenario(context);
  context.progress("secrets: serve with a tunnel command; reading its children's environment");
  const tunnel = await tunnelChildren(context, needles);
  const logs = scan(h.children.logFiles, needles);
  context.progress(`secrets: scanned ${logs.lines} lines in ${logs.files} files`);
  const answers = scan(asked.files, needles);
  const problems = asked.problems.length
    ? `; not as README.md says: ${asked.problems.join("; ")}`
    : "";
  return {
    rows: [
      h.row(
        "secrets: none in anything a child printed or logged",
        `${logs.hits.length} hits in ${logs.lines} lines (${logs.files} log files of ${h.children.started} processes, ${commands} of them commands run for this check)${logs.kinds}`,
        "0 hits",
        logs.hits.length === 0 && logs.lines > 0,
      ),
      h.row(
        "secrets: none in what either listener answers (/health, /metrics)",
        `${answers.hits.length} hits in ${answers.files} answers (public /health GET and HEAD, public /metrics, loopback /health and /metrics; while Chat failed and after)${answers.kinds}${problems}`,
        "0 hits; every answer as README.md says",
        answers.hits.length === 0 && answers.files === 10 && asked.problems.length === 0,
      ),
      tunnel.row,
    ],
    // The tunnel notes may quote a command line holding a secret: the report is redacted whole.
    notes: [
      ...[...logs.hits, ...answers.hits].slice(0, 10),
      ...tunnel.notes.slice(0, 20),
      tunnel.notes.length > 20 && `secrets: and ${tunnel.notes.length - 20} more such lines`,
    ],
  };
}
