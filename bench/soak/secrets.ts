import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { startVastEmulator } from "../../src/vast/emulator.js";
import { cleanEnv } from "../../test/support/cli-process.js";
import { seededRandom } from "../burst.js";
import { REPO_ROOT } from "../targets.js";
import { ChaosChat } from "./chaos-chat.js";
import {
  capturedLogFiles,
  killHard,
  processesStarted,
  runCliToEnd,
  stopGently,
} from "./processes.js";
import { rawExchange } from "./raw-http.js";
import { type CheckRow, type PartContext, type PartResult, verdict } from "./results.js";
import { type Needle, needlesOf, redactor } from "./secret-values.js";
import { fetchText, partServeSpec, type RunningServe, startServe } from "./serve.js";
import { makeSoakEvents } from "./soak-events.js";
import { type ChildScan, scanDescendantsRepeatedly } from "./tunnel-children.js";
import { SOAK_RETRY_POLICY, sendLikeVast } from "./vast-sender.js";

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

/** What the listeners answered, one file each, for the scan (status line first). */
interface ListenerAnswers {
  files: string[];
  /** Requests that got no answer, or not the one README.md promises. */
  problems: string[];
}

async function collectAnswers(
  serve: RunningServe,
  dir: string,
  phase: string,
  into: ListenerAnswers,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const asks: Array<{ name: string; url: string; method?: "HEAD"; expect: number }> = [
    { name: "public-health", url: `${serve.origin}/health`, expect: 200 },
    { name: "public-health-head", url: `${serve.origin}/health`, method: "HEAD", expect: 200 },
    { name: "public-metrics", url: `${serve.origin}/metrics`, expect: 404 },
    { name: "loopback-health", url: `${serve.adminOrigin}/health`, expect: 200 },
    { name: "loopback-metrics", url: `${serve.adminOrigin}/metrics`, expect: 200 },
  ];
  for (const ask of asks) {
    const answer = await fetchText(ask.url, ask.method);
    const label = `${ask.method ?? "GET"} ${ask.name} (${phase})`;
    if ("error" in answer) {
      into.problems.push(`${label}: ${answer.error}`);
      continue;
    }
    if (answer.status !== ask.expect) {
      into.problems.push(`${label}: ${answer.status}, not ${ask.expect}`);
    }
    const file = join(dir, `${phase}-${ask.name}.txt`);
    writeFileSync(file, `${answer.status}\n${answer.text}`);
    into.files.push(file);
  }
}

async function leakScenario(
  context: PartContext,
): Promise<{ commands: number; answers: ListenerAnswers }> {
  const { secrets, progress } = context;
  const workdir = join(context.workdir, "secrets");
  mkdirSync(workdir, { recursive: true });
  const emulator = await startVastEmulator({
    allowLoopbackHttp: true,
    apiKeys: { [secrets.apiKey]: { userId: 4242 } },
  });
  const chat = await ChaosChat.start(secrets, seededRandom(context.seed + 7));
  const configDir = join(workdir, "config");
  const debugEnv = { DEBUG: "vast-gchat", VAST_API_URL: emulator.url };
  const spec = await partServeSpec("secrets", workdir, chat.url, context, {
    extraArgs: ["-v"],
    extraEnv: debugEnv,
  });
  let serve: RunningServe | undefined;
  let commands = 0;
  const answers: ListenerAnswers = { files: [], problems: [] };
  const answersDir = join(workdir, "answers");
  const command = async (stem: string, args: string[], env: Record<string, string>) => {
    commands++;
    await runCliToEnd(`vast-gchat ${args[0]}`, args, cleanEnv(env), workdir, stem, 20_000);
  };
  const fullEnv = {
    VAST_WEBHOOK_SECRET: secrets.webhookSecret,
    GOOGLE_CHAT_URL: chat.url,
    VAST_API_KEY: secrets.apiKey,
    VAST_GCHAT_CONFIG_DIR: configDir,
    ...debugEnv,
  };
  try {
    serve = await startServe(spec);
    progress("secrets: serve -v with DEBUG, Chat failing for a while, forged deliveries, commands");
    chat.setChaos(true);
    const events = makeSoakEvents("S", 20);
    await sendLikeVast(
      { origin: serve.origin, path: serve.path, secret: secrets.webhookSecret },
      events,
      {
        concurrency: 4,
        ratePerS: 4,
        policy: SOAK_RETRY_POLICY,
        random: seededRandom(context.seed + 8),
        deadline: Date.now() + 30_000,
      },
    );
    // Forged, stale and unsigned deliveries: the rejections are logged. The second carries the
    // secret itself as its signature, as a confused sender might: not a word of it may be logged.
    const forged = Buffer.from('{"event_id":"forged"}');
    for (const headers of [
      "X-Vast-Timestamp: 1\r\nX-Vast-Signature-256: sha256=00\r\n",
      `X-Vast-Timestamp: ${Math.floor(Date.now() / 1000)}\r\nX-Vast-Signature-256: ${secrets.webhookSecret}\r\n`,
      "",
    ]) {
      const request = `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}Content-Length: ${forged.length}\r\n\r\n`;
      await rawExchange(spec.port, [Buffer.from(request, "latin1"), forged], { timeoutMs: 5000 });
    }
    // While Chat fails: the detailed /health has Chat's last error, /metrics the rejections.
    await collectAnswers(serve, answersDir, "chat-failing", answers);
    chat.setChaos(false);
    await chat.waitForTokens(
      events.map((event) => event.token),
      30_000,
    );
    await collectAnswers(serve, answersDir, "chat-calm", answers);

    await command("trigger", ["trigger", "low_credit", "--url", `${serve.origin}/`], fullEnv);
    await command("status", ["status", "--json"], fullEnv);
    await command("status-text", ["status"], fullEnv);
    await command("types", ["types", "--json"], fullEnv);
    await command("types-refused", ["types"], { ...fullEnv, VAST_API_KEY: secrets.refusedApiKey });
    await command("events", ["events", "list", "--json"], fullEnv);

    await stopGently(serve.proc);
    serve = undefined;

    // Start-up refusals: a Chat URL without its token, one over plain http to another host,
    // a secret with a trailing space. Each must name the problem without echoing the value.
    const port = String(await freeLoopbackPort());
    const startOnly = (env: Record<string, string>) => ({ ...fullEnv, ...env });
    const space = "AAAAsoakSpace";
    await command(
      "serve-no-token",
      ["serve", "--port", port, "--tunnel", "none"],
      startOnly({
        GOOGLE_CHAT_URL: `https://chat.googleapis.com/v1/spaces/${space}/messages?key=${secrets.chatKey}`,
      }),
    );
    await command(
      "serve-http-chat",
      ["serve", "--port", port, "--tunnel", "none"],
      startOnly({
        GOOGLE_CHAT_URL: `http://chat.invalid/v1/spaces/${space}/messages?key=${secrets.chatKey}&token=${secrets.chatToken}`,
      }),
    );
    await command(
      "serve-bad-secret",
      ["serve", "--port", port, "--tunnel", "none"],
      startOnly({
        VAST_WEBHOOK_SECRET: `${secrets.webhookSecret} `,
      }),
    );
  } finally {
    if (serve) await killHard(serve.proc);
    await chat.close();
    await emulator.close();
  }
  return { commands, answers };
}

/**
 * A tunnel command that starts a grandchild (a sleep) and then runs a loopback forwarder that
 * prints its URL, as a tunnel program prints its public one: serve's probe goes through it to
 * serve's own /health, and nothing leaves the machine.
 */
function writeTunnelStandIn(dir: string): string {
  const forwarder = join(REPO_ROOT, "test/support/fake-tunnel.mjs");
  const script = join(dir, "tunnel-stand-in.sh");
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    script,
    [
      "#!/bin/sh",
      "# The soak's tunnel command: a child of its own, then a loopback forwarder printing its URL.",
      "sleep 120 &",
      `exec ${quote(process.execPath)} ${quote(forwarder)} "$1"`,
      "",
    ].join("\n"),
    { mode: 0o700 },
  );
  return script;
}

/**
 * The rounds of the tunnel scenario: serve's defaults, and a user who lets the tunnel have
 * everything that begins with VAST_ or GOOGLE_ (VAST_GCHAT_TUNNEL_ENV), which must still not hand
 * over vast-gchat's own secrets.
 */
const TUNNEL_ROUNDS = [
  { stem: "serve-tunnel", env: {} },
  { stem: "serve-tunnel-named", env: { VAST_GCHAT_TUNNEL_ENV: "VAST_*,GOOGLE_*" } },
] as const;

interface TunnelRound {
  stem: string;
  scan: ChildScan;
  forwarderSeen: boolean;
  tunnelOpen: boolean;
}

/**
 * serve with a tunnel command and every secret in its environment (NGROK_AUTHTOKEN too); while
 * it runs, what it started is read from /proc. None of it may hold a secret.
 */
async function tunnelChildrenScenario(
  context: PartContext,
  needles: readonly Needle[],
): Promise<TunnelRound[]> {
  const workdir = join(context.workdir, "secrets");
  const chat = await ChaosChat.start(context.secrets, seededRandom(context.seed + 9));
  const script = writeTunnelStandIn(workdir);
  const rounds: TunnelRound[] = [];
  let serve: RunningServe | undefined;
  try {
    for (const round of TUNNEL_ROUNDS) {
      const spec = await partServeSpec("secrets, tunnel", workdir, chat.url, context, {
        stem: round.stem,
        configDir: join(workdir, `${round.stem}-config`),
        tunnelArgs: ["--tunnel", "command", "--tunnel-command", `/bin/sh '${script}' {port}`],
        extraArgs: ["-v"],
        extraEnv: { DEBUG: "vast-gchat", ...round.env },
      });
      serve = await startServe(spec);
      const scan = await scanDescendantsRepeatedly(serve.proc.pid, needles, 4, 500);
      const forwarderSeen = scan.processes.some((info) => info.cmdline.includes("fake-tunnel.mjs"));
      const log = readFileSync(join(workdir, `${round.stem}.stdout.log`), "utf8");
      const tunnelOpen = log.includes('"msg":"tunnel open"');
      await stopGently(serve.proc);
      serve = undefined;
      rounds.push({ stem: round.stem, scan, forwarderSeen, tunnelOpen });
    }
    return rounds;
  } finally {
    if (serve) await killHard(serve.proc);
    await chat.close();
  }
}

interface ScanResult {
  files: number;
  lines: number;
  hits: Array<{ file: string; line: number; what: string }>;
}

function scan(files: readonly string[], needles: ReturnType<typeof needlesOf>): ScanResult {
  const result: ScanResult = { files: 0, lines: 0, hits: [] };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    result.files++;
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    for (const [index, line] of lines.entries()) {
      result.lines++;
      for (const needle of needles) {
        if (line.includes(needle.value))
          result.hits.push({ file, line: index + 1, what: needle.name });
      }
    }
  }
  return result;
}

function tunnelChildrenRow(
  rounds: readonly TunnelRound[],
  redact: (text: string) => string,
): { row: CheckRow; notes: string[] } {
  const described: string[] = [];
  const leaks: string[] = [];
  const notes: string[] = [];
  let ran = rounds.length === TUNNEL_ROUNDS.length;
  for (const { stem, scan, forwarderSeen, tunnelOpen } of rounds) {
    const byName = new Map<string, number>();
    for (const info of scan.processes) {
      const name = info.description.slice(0, info.description.indexOf(" ("));
      byName.set(name, (byName.get(name) ?? 0) + 1);
    }
    const found = [...byName].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
    const round = stem === "serve-tunnel" ? "defaults" : "VAST_GCHAT_TUNNEL_ENV=VAST_*,GOOGLE_*";
    described.push(
      `${round}: ${scan.processes.length} processes (${found.join(", ") || "none"})${tunnelOpen ? "" : ", tunnel NOT open"}${forwarderSeen ? "" : ", the tunnel program NOT found"}${scan.unreadable.length ? `, ${scan.unreadable.length} unreadable` : ""}`,
    );
    // Which variable took which secret into which children: names and pids, never a value.
    const children = new Map<string, string[]>();
    for (const leak of scan.leaks) {
      const key = `${leak.where} (${leak.what})`;
      const list = children.get(key) ?? [];
      list.push(`${leak.description.slice(0, leak.description.indexOf(" ("))} ${leak.pid}`);
      children.set(key, list);
      notes.push(
        `secrets: tunnel child environment [${round}]: ${key} in pid ${leak.pid} ${redact(leak.description)}`,
      );
    }
    for (const [key, list] of children) leaks.push(`${key} → ${list.join(", ")} [${round}]`);
    for (const problem of scan.unreadable) {
      notes.push(`secrets: could not read /proc/${problem.pid}/environ (${problem.error})`);
    }
    ran &&= scan.processes.length > 0 && forwarderSeen && scan.unreadable.length === 0;
  }
  const row: CheckRow = {
    part: "secrets",
    check: "secrets: none in the environment of the processes serve starts (tunnel command)",
    figure: `below serve: ${described.join("; ")}: ${leaks.length ? `leaked: ${leaks.slice(0, 8).join("; ")}${leaks.length > 8 ? `; and ${leaks.length - 8} more (notes)` : ""}` : "no secret"}`,
    target: "0 leaks (webhook secret, API key, Chat key/token, NGROK_AUTHTOKEN)",
    verdict: verdict(ran && leaks.length === 0),
  };
  return { row, notes };
}

export async function runSecrets(context: PartContext): Promise<PartResult> {
  const needles = needlesOf(context.secrets);
  const redact = redactor(context.secrets);
  const { commands, answers } = await leakScenario(context);
  context.progress("secrets: serve with a tunnel command; reading its children's environment");
  const rounds = await tunnelChildrenScenario(context, needles);
  const files = capturedLogFiles();
  const result = scan(files, needles);
  const kinds = new Set(result.hits.map((hit) => hit.what));
  context.progress(`secrets: scanned ${result.lines} lines in ${result.files} files`);
  const answered = scan(answers.files, needles);
  const answerKinds = new Set(answered.hits.map((hit) => hit.what));
  const tunnel = tunnelChildrenRow(rounds, redact);
  return {
    rows: [
      {
        part: "secrets",
        check: "secrets: none in anything a child printed or logged",
        figure: `${result.hits.length} hits in ${result.lines} lines (${result.files} stdout/stderr files of ${processesStarted()} processes, ${commands} of them commands run for this check)${kinds.size ? `: ${[...kinds].join(", ")}` : ""}`,
        target: "0 hits",
        verdict: verdict(result.hits.length === 0 && result.lines > 0),
      },
      {
        part: "secrets",
        check: "secrets: none in what either listener answers (/health, /metrics)",
        figure: `${answered.hits.length} hits in ${answered.files} answers (public /health GET and HEAD, public /metrics, loopback /health and /metrics; while Chat failed and after)${answerKinds.size ? `: ${[...answerKinds].join(", ")}` : ""}${answers.problems.length ? `; not as README.md says: ${answers.problems.join("; ")}` : ""}`,
        target: "0 hits; every answer as README.md says",
        verdict: verdict(
          answered.hits.length === 0 && answered.files === 10 && answers.problems.length === 0,
        ),
      },
      tunnel.row,
    ],
    // Where, never what: the line itself holds the secret.
    notes: [
      ...[...result.hits, ...answered.hits]
        .slice(0, 10)
        .map(
          (hit) => `secrets: ${hit.what} in ${basename(hit.file)} line ${hit.line} (${hit.file})`,
        ),
      ...tunnel.notes.slice(0, 20).map(redact),
      ...(tunnel.notes.length > 20
        ? [`secrets: and ${tunnel.notes.length - 20} more such lines`]
        : []),
    ],
  };
}
