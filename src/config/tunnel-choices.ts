/**
 * How Vast.ai reaches this machine: the one list the settings file, `init` and `serve` take their
 * choices from. Its own module, free of imports, because the program (and so `--help`) loads it.
 */
export type TunnelChoice = "tunnelmole" | "cloudflared" | "ngrok" | "command" | "none";

export const TUNNEL_CHOICES: readonly TunnelChoice[] = [
  "tunnelmole",
  "cloudflared",
  "ngrok",
  "command",
  "none",
];
