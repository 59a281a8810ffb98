import { mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";
import { startVastEmulator } from "../../src/vast/emulator.js";
import { cleanEnv } from "../../test/support/cli-process.js";
import { seededRandom } from "../burst.js";
import { ChaosChat } from "./chaos-chat.js";
import {
  capturedLogFiles,
  killHard,
  processesStarted,
  runCliToEnd,
  stopGently,
} from "./processes.js";
import { rawExchange } from "./raw-http.js";
import { type PartContext, type PartResult, verdict } from "./results.js";
import { needlesOf } from "./secret-values.js";
import { partServeSpec, type RunningServe, startServe } from "./serve.js";
import { makeSoakEvents } from "./soak-events.js";
import { SOAK_RETRY_POLICY, sendLikeVast } from "./vast-sender.js";

/**
 * Secrets: every line the suite's children printed (stdout and stderr of every serve and command,
 * kept in files) is searched for the webhook secret, the Vast.ai API keys and the Chat URL's key
 * and token. Before the scan, a scenario of its own reaches the paths most likely to leak: debug
 * logging, Chat failing (500, 429, hangs), forged deliveries, the commands that report configuration
 * or call the (local) Vast.ai API with a good and a refused key, and start-up errors about a bad
 * Chat URL or secret. Everything stays on loopback.
 */
async function leakScenario(context: PartContext): Promise<{ commands: number }> {
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
    chat.setChaos(false);
    await chat.waitForTokens(
      events.map((event) => event.token),
      30_000,
    );

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
  return { commands };
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

export async function runSecrets(context: PartContext): Promise<PartResult> {
  const { commands } = await leakScenario(context);
  const files = capturedLogFiles();
  const result = scan(files, needlesOf(context.secrets));
  const kinds = new Set(result.hits.map((hit) => hit.what));
  context.progress(`secrets: scanned ${result.lines} lines in ${result.files} files`);
  return {
    rows: [
      {
        part: "secrets",
        check: "secrets: none in anything a child printed or logged",
        figure: `${result.hits.length} hits in ${result.lines} lines (${result.files} stdout/stderr files of ${processesStarted()} processes, ${commands} of them commands run for this check)${kinds.size ? `: ${[...kinds].join(", ")}` : ""}`,
        target: "0 hits",
        verdict: verdict(result.hits.length === 0 && result.lines > 0),
      },
    ],
    // Where, never what: the line itself holds the secret.
    notes: result.hits
      .slice(0, 10)
      .map((hit) => `secrets: ${hit.what} in ${basename(hit.file)} line ${hit.line} (${hit.file})`),
  };
}
