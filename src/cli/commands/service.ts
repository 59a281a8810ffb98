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
 * How a long-running serve is started: with a heap cap. Left to itself V8 grows its heap lazily
 * under heavy input (the soak's fuzzer took an uncapped serve to about 500 MiB); capped, it stays
 * flat at about 200 MiB, with room to spare for 50-event digests of 256 KiB bodies.
 */
export const SERVE_NODE_OPTIONS = ["--max-old-space-size=256"];

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
