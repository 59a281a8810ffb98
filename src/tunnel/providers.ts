import { cloudflaredTunnel } from "./cloudflared.js";
import { commandTunnel } from "./command-tunnel.js";
import { ngrokTunnel } from "./ngrok.js";
import { tunnelmoleTunnel } from "./tunnelmole.js";
import { TunnelError, type TunnelProvider, type TunnelProviderName } from "./types.js";

export interface TunnelChoice {
  tunnel: Exclude<TunnelProviderName, "loopback">;
  /** `--tunnel-command "CMD {port}"`, for tunnel "command". */
  command?: string;
  /** `--tunnel-domain`: a reserved domain (ngrok). */
  domain?: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The provider for serve's --tunnel choice. None of these modules imports a provider's package at
 * the top: @ngrok/ngrok is imported inside open(), so choosing a tunnel loads only what that
 * tunnel needs (tunnelmole is spoken by our own client, cloudflared and a command are programs).
 */
export function createTunnelProvider(choice: TunnelChoice): TunnelProvider {
  switch (choice.tunnel) {
    case "tunnelmole":
      return tunnelmoleTunnel({ env: choice.env });
    case "cloudflared":
      return cloudflaredTunnel({ env: choice.env });
    case "ngrok":
      return ngrokTunnel({
        env: choice.env,
        ...(choice.domain ? { domain: choice.domain } : {}),
      });
    case "command": {
      const command = choice.command?.trim();
      if (!command) {
        throw new TunnelError(
          "setup",
          'The command tunnel needs a command: pass --tunnel-command "CMD {port}" (the first https URL it prints is used).',
        );
      }
      return commandTunnel(command, choice.env);
    }
    default: {
      const unknown: never = choice.tunnel;
      throw new TunnelError(
        "setup",
        `Unknown tunnel "${String(unknown)}": pick tunnelmole, cloudflared, ngrok or command.`,
      );
    }
  }
}
