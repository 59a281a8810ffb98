import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolveConfigDir } from "../../config/paths.js";
import type { GlobalOptions } from "../context.js";
import { createOutput, type OutputStreams } from "../output.js";

/**
 * `service`: a systemd unit that runs `serve` for good with this configuration, restarted when it
 * exits non-zero (a tunnel given up on, say). Secrets stay where init put them: never in the unit.
 */
export interface ServiceContext extends OutputStreams {
  env: NodeJS.ProcessEnv;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg)
    ? arg
    : `"${arg.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * How a long-running serve is started (this unit, deploy/'s replica unit and the Dockerfile say
 * the same; a test holds them to it). A heap cap: left to itself V8 grows its heap lazily under
 * heavy input (the soak's fuzzer took an uncapped serve to about 500 MiB); capped, it stays flat,
 * with room to spare for 50-event digests of 256 KiB bodies. A 1 MiB young generation: V8 sizes
 * it for throughput and, under a burst, grows it to some 50 MiB, a third of serve's peak; kept
 * small it costs a little speed where serve has plenty (docs/platforms.md, "Memory"). Two malloc
 * arenas: glibc would give each of V8's threads its own, and hold on to their pages.
 */
export const SERVE_NODE_OPTIONS = ["--max-old-space-size=256", "--max-semi-space-size=1"];
export const SERVE_ENVIRONMENT = { MALLOC_ARENA_MAX: "2" } as const;

export function systemdUnit(configDir: string): string {
  const bin = realpathSync(fileURLToPath(new URL("../../../bin/vast-gchat.js", import.meta.url)));
  const exec = [process.execPath, ...SERVE_NODE_OPTIONS, bin, "serve", "--config-dir", configDir]
    .map(quote)
    .join(" ");
  return `[Unit]
Description=vast-gchat: Vast.ai notifications to Google Chat
After=network-online.target
Wants=network-online.target

[Service]
${Object.entries(SERVE_ENVIRONMENT)
  .map(([name, value]) => `Environment=${name}=${value}`)
  .join("\n")}
ExecStart=${exec}
Restart=on-failure
RestartSec=5
# serve stops the tunnel and finishes the post in flight on SIGTERM.
KillSignal=SIGTERM
TimeoutStopSec=20
NoNewPrivileges=true
PrivateTmp=true
# Files serve creates (the event store, its WAL) are the user's alone, whatever the login's umask.
UMask=0077

[Install]
WantedBy=default.target
`;
}

export async function service(options: GlobalOptions, context: ServiceContext): Promise<number> {
  const out = createOutput(context, options);
  const configDir = resolveConfigDir(options.configDir, context.env);
  const unit = systemdUnit(configDir);
  out.result({ unit, install_path: "~/.config/systemd/user/vast-gchat.service" });
  if (!out.json) {
    context.stdout.write(unit);
    context.stderr.write(
      "Save it as ~/.config/systemd/user/vast-gchat.service, then: systemctl --user daemon-reload && systemctl --user enable --now vast-gchat (and `loginctl enable-linger $USER` to keep it running after logout).\n",
    );
  }
  return 0;
}
