import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { processTable } from "../../src/tunnel/process-table.js";
import { startVastEmulator } from "../../src/vast/emulator.js";
import { cleanEnv } from "../../test/support/cli-process.js";
import { seededRandom } from "../burst.js";
import { REPO_ROOT } from "../targets.js";
import {
  ask,
  children,
  exitWithin,
  makeSoakEvents,
  type Needle,
  needlesOf,
  type PartContext,
  type PartResult,
  row,
  type Serve,
  serveSpec,
  spawnCli,
  startServe,
  stopGently,
} from "./harness.js";
import { ChaosChat, sendLikeVast } from "./peers.js";

/**
 * Secrets: every line the suite's children printed (stdout and stderr of every serve and command,
 * kept in files) is searched for the webhook secret, the Vast.ai API keys, the Chat URL's key and
 * token and NGROK_AUTHTOKEN (every serve has it, none uses it). Before the scan, a scenario of its
 * own reaches the paths most likely to leak: debug logging, Chat failing (500, 429, hangs), forged
 * deliveries, the commands that report configuration or call the (local) Vast.ai API with a good
 * and a refused key, and start-up errors about a bad Chat URL or secret. Everything stays on
 * loopback.
 *
 * Two more scans: the answers of both listeners (the public /health and /metrics, the loopback
 * listener's detailed /health and /metrics, while Chat fails and after), and the environment and
 * command line of every process a serve with a tunnel command starts (the command's shell and
 * what it runs, the watchdog), read from /proc while it runs, for the webhook secret, the API
 * key, the Chat URL's key and token and NGROK_AUTHTOKEN, all of which that serve has.
 */

/** Requests that got no answer, or not the one README.md promises; the answers' files. */
type Answers = { problems: string[]; files: string[] };

/** What the listeners answer (expected status as README.md says), one file each for the scan. */
async function collectAnswers(serve: Serve, dir: string, phase: string, answers: Answers) {
  mkdirSync(dir, { recursive: true });
  const asks = [
    ["public-health", `${serve.origin}/health`, "GET", 200],
    ["public-health-head", `${serve.origin}/health`, "HEAD", 200],
    ["public-metrics", `${serve.origin}/metrics`, "GET", 404],
    ["loopback-health", `${serve.adminOrigin}/health`, "GET", 200],
    ["loopback-metrics", `${serve.adminOrigin}/metrics`, "GET", 200],
  ] as const;
  for (const [name, url, method, expect] of asks) {
    const answer = await ask(url, { method });
    const label = `${method} ${name} (${phase})`;
    if (answer.error !== undefined) {
      answers.problems.push(`${label}: ${answer.error}`);
      continue;
    }
    if (answer.status !== expect)
      answers.problems.push(`${label}: ${answer.status}, not ${expect}`);
    const file = join(dir, `${phase}-${name}.txt`);
    writeFileSync(file, `${answer.status}\n${answer.text}`);
    answers.files.push(file);
  }
}

async function leakScenario(context: PartContext): Promise<{ commands: number; answers: Answers }> {
  const { secrets, dir } = context;
  const emulator = await startVastEmulator({
    allowLoopbackHttp: true,
    apiKeys: { [secrets.apiKey]: { userId: 4242 } },
  });
  context.later(() => emulator.close());
  const chat = await ChaosChat.start(context, 7);
  const debugEnv = { DEBUG: "vast-gchat", VAST_API_URL: emulator.url };
  const spec = await serveSpec(context, "secrets", chat.url, {
    args: ["--tunnel", "none", "-v"],
    env: debugEnv,
  });
  let commands = 0;
  const answers: Answers = { problems: [], files: [] };
  const command = async (stem: string, args: string[], env: Record<string, string> = {}) => {
    commands++;
    await exitWithin(
      spawnCli(`vast-gchat ${args[0]}`, args, cleanEnv({ ...fullEnv, ...env }), dir, stem),
      20_000,
    );
  };
  const fullEnv = {
    VAST_WEBHOOK_SECRET: secrets.webhookSecret,
    GOOGLE_CHAT_URL: chat.url,
    VAST_API_KEY: secrets.apiKey,
    VAST_GCHAT_CONFIG_DIR: spec.configDir,
    ...debugEnv,
  };
  const serve = await startServe(spec);
  context.progress(
    "secrets: serve -v with DEBUG, Chat failing for a while, forged deliveries, commands",
  );
  chat.setChaos(true);
  const events = makeSoakEvents("S", 20);
  await sendLikeVast({ ...serve, secret: secrets.webhookSecret }, events, {
    concurrency: 4,
    ratePerS: 4,
    random: seededRandom(context.seed + 8),
    deadlineS: 30,
  });
  // Forged, stale and unsigned deliveries: the rejections are logged. The second carries the
  // secret itself as its signature, as a confused sender might: not a word of it may be logged.
  const forged = Buffer.from('{"event_id":"forged"}');
  for (const headers of [
    { "X-Vast-Timestamp": "1", "X-Vast-Signature-256": "sha256=00" },
    {
      "X-Vast-Timestamp": String(Math.floor(Date.now() / 1000)),
      "X-Vast-Signature-256": secrets.webhookSecret,
    },
    {},
  ]) {
    await ask(`${serve.origin}/`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: forged,
    });
  }
  // While Chat fails: the detailed /health has Chat's last error, /metrics the rejections.
  const answersDir = join(dir, "answers");
  await collectAnswers(serve, answersDir, "chat-failing", answers);
  chat.setChaos(false);
  await chat.waitForTokens(
    events.map((event) => event.token),
    30_000,
  );
  await collectAnswers(serve, answersDir, "chat-calm", answers);

  await command("trigger", ["trigger", "low_credit", "--url", `${serve.origin}/`]);
  await command("status", ["status", "--json"]);
  await command("status-text", ["status"]);
  await command("types", ["types", "--json"]);
  await command("types-refused", ["types"], { VAST_API_KEY: secrets.refusedApiKey });
  await command("events", ["events", "list", "--json"]);
  await stopGently(serve.child);

  // Start-up refusals: a Chat URL without its token, one over plain http to another host,
  // a secret with a trailing space. Each must name the problem without echoing the value.
  const serveArgs = ["serve", "--port", String(await freeLoopbackPort()), "--tunnel", "none"];
  const chatPath = "/v1/spaces/AAAAsoakSpace/messages";
  await command("serve-no-token", serveArgs, {
    GOOGLE_CHAT_URL: `https://chat.googleapis.com${chatPath}?key=${secrets.chatKey}`,
  });
  await command("serve-http-chat", serveArgs, {
    GOOGLE_CHAT_URL: `http://chat.invalid${chatPath}?key=${secrets.chatKey}&token=${secrets.chatToken}`,
  });
  await command("serve-bad-secret", serveArgs, {
    VAST_WEBHOOK_SECRET: `${secrets.webhookSecret} `,
  });
  return { commands, answers };
}

/** The NUL-separated entries of a /proc file. */
const procEntries = (path: string) => readFileSync(path, "latin1").split("\0").filter(Boolean);

interface Found {
  pid: number;
  comm: string;
  cmdline: string;
  /** `VARIABLE (which secret)` or `command line (which secret)`: never a value. */
  leaks: string[];
}

/**
 * Everything below `root` (children, grandchildren, ...) from /proc, several looks a moment apart,
 * merged: short-lived children (the watchdog's sleep) come and go. Processes that end meanwhile
 * are skipped; one whose environment cannot be read for another reason is unreadable (refused).
 */
async function scanBelow(root: number, needles: readonly Needle[]) {
  const found = new Map<string, Found>();
  const unreadable = new Map<number, string>();
  for (let look = 0; look < 4; look++) {
    if (look > 0) await new Promise((resolve) => setTimeout(resolve, 500));
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
      const places = [...environ.map((v) => [v.split("=")[0] || v, v]), ["command line", cmdline]];
      for (const [where, text] of places) {
        for (const needle of needles) {
          // One line per variable and secret: the halves of a value are the same leak.
          const what = needle.name.replace(/ \((first|second) half\)$/, "");
          if (text?.includes(needle.value)) leaks.add(`${where} (${what})`);
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
async function tunnelChildren(context: PartContext, needles: readonly Needle[]) {
  const chat = await ChaosChat.start(context, 9);
  // The tunnel command starts a grandchild (a sleep), then a loopback forwarder that prints its
  // URL as a tunnel program prints its public one: serve's probe goes through it to serve's own
  // /health, and nothing leaves the machine.
  const script = join(context.dir, "tunnel-stand-in.sh");
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  const forwarder = join(REPO_ROOT, "test/support/fake-tunnel.mjs");
  writeFileSync(
    script,
    `#!/bin/sh\nsleep 120 &\nexec ${quote(process.execPath)} ${quote(forwarder)} "$1"\n`,
    {
      mode: 0o700,
    },
  );
  const described: string[] = [];
  const leaks: string[] = [];
  const notes: string[] = [];
  let ran = true;
  for (const [stem, round, env] of [
    ["serve-tunnel", "defaults", {}],
    [
      "serve-tunnel-named",
      "VAST_GCHAT_TUNNEL_ENV=VAST_*,GOOGLE_*",
      { VAST_GCHAT_TUNNEL_ENV: "VAST_*,GOOGLE_*" },
    ],
  ] as const) {
    const spec = await serveSpec(context, "secrets, tunnel", chat.url, {
      stem,
      configDir: join(context.dir, `${stem}-config`),
      args: ["--tunnel", "command", "--tunnel-command", `/bin/sh '${script}' {port}`, "-v"],
      env: { DEBUG: "vast-gchat", ...env },
    });
    const serve = await startServe(spec);
    const { processes, unreadable } = await scanBelow(serve.child.pid, needles);
    const forwarderSeen = processes.some((found) => found.cmdline.includes("fake-tunnel.mjs"));
    const tunnelOpen = readFileSync(serve.child.stdoutPath, "utf8").includes('"msg":"tunnel open"');
    await stopGently(serve.child);

    const byName = new Map<string, number>();
    for (const { comm } of processes) byName.set(comm, (byName.get(comm) ?? 0) + 1);
    const names = [...byName].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
    described.push(
      `${round}: ${processes.length} processes (${names.join(", ") || "none"})${tunnelOpen ? "" : ", tunnel NOT open"}${forwarderSeen ? "" : ", the tunnel program NOT found"}${unreadable.size ? `, ${unreadable.size} unreadable` : ""}`,
    );
    // Which variable took which secret into which children: names and pids, never a value.
    const holders = new Map<string, string[]>();
    for (const { pid, comm, cmdline, leaks: found } of processes) {
      for (const leak of found) {
        holders.set(leak, [...(holders.get(leak) ?? []), `${comm} ${pid}`]);
        notes.push(
          `secrets: tunnel child environment [${round}]: ${leak} in pid ${pid} ${context.redact(`${comm} (${cmdline.slice(0, 80)})`)}`,
        );
      }
    }
    for (const [leak, list] of holders) leaks.push(`${leak} → ${list.join(", ")} [${round}]`);
    for (const [pid, code] of unreadable)
      notes.push(`secrets: could not read /proc/${pid}/environ (${code})`);
    ran &&= processes.length > 0 && forwarderSeen && unreadable.size === 0;
  }
  const row_ = row(
    "secrets: none in the environment of the processes serve starts (tunnel command)",
    `below serve: ${described.join("; ")}: ${leaks.length ? `leaked: ${leaks.slice(0, 8).join("; ")}${leaks.length > 8 ? `; and ${leaks.length - 8} more (notes)` : ""}` : "no secret"}`,
    "0 leaks (webhook secret, API key, Chat key/token, NGROK_AUTHTOKEN)",
    ran && leaks.length === 0,
  );
  return { row: row_, notes };
}

/** Every line of the files searched for every needle: where, never what (the line holds it). */
function scan(files: Iterable<string>, needles: readonly Needle[]) {
  const result = { files: 0, lines: 0, hits: [] as string[], kinds: new Set<string>() };
  for (const file of files) {
    if (!existsSync(file)) continue;
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
  return result;
}

export async function runSecrets(context: PartContext): Promise<PartResult> {
  const needles = needlesOf(context.secrets);
  const { commands, answers: asked } = await leakScenario(context);
  context.progress("secrets: serve with a tunnel command; reading its children's environment");
  const tunnel = await tunnelChildren(context, needles);
  const logs = scan(children.logFiles, needles);
  context.progress(`secrets: scanned ${logs.lines} lines in ${logs.files} files`);
  const answers = scan(asked.files, needles);
  const kinds = (set: Set<string>) => (set.size ? `: ${[...set].join(", ")}` : "");
  return {
    rows: [
      row(
        "secrets: none in anything a child printed or logged",
        `${logs.hits.length} hits in ${logs.lines} lines (${logs.files} stdout/stderr files of ${children.started} processes, ${commands} of them commands run for this check)${kinds(logs.kinds)}`,
        "0 hits",
        logs.hits.length === 0 && logs.lines > 0,
      ),
      row(
        "secrets: none in what either listener answers (/health, /metrics)",
        `${answers.hits.length} hits in ${answers.files} answers (public /health GET and HEAD, public /metrics, loopback /health and /metrics; while Chat failed and after)${kinds(answers.kinds)}${asked.problems.length ? `; not as README.md says: ${asked.problems.join("; ")}` : ""}`,
        "0 hits; every answer as README.md says",
        answers.hits.length === 0 && answers.files === 10 && asked.problems.length === 0,
      ),
      tunnel.row,
    ],
    notes: [
      ...[...logs.hits, ...answers.hits].slice(0, 10),
      ...tunnel.notes.slice(0, 20).map(context.redact),
      ...(tunnel.notes.length > 20
        ? [`secrets: and ${tunnel.notes.length - 20} more such lines`]
        : []),
    ],
  };
}
