import { firstPublicUrl, openChildTunnel } from "./child-tunnel.js";
import { TunnelError, type TunnelProvider } from "./types.js";

/**
 * `--tunnel-command "CMD {port}"`: any program of the user's that prints a public URL. It runs in
 * a shell so that quoting and pipes work as typed; the first https URL it prints is the tunnel's.
 */
export function commandTunnel(template: string): TunnelProvider {
  return {
    name: "command",
    open(options) {
      const command = template.replaceAll("{port}", String(options.port));
      return openChildTunnel(
        {
          label: "the tunnel command",
          command: "/bin/sh",
          args: ["-c", command],
          findUrl: firstPublicUrl,
          notInstalled: new TunnelError("setup", "No shell (/bin/sh) to run the tunnel command."),
        },
        options,
      );
    },
  };
}
