import { tunnelChildEnv } from "./child-env.js";
import { firstPublicUrl, openChildTunnel } from "./child-tunnel.js";
import { TunnelError, type TunnelProvider } from "./types.js";

/**
 * `--tunnel-command "CMD {port}"`: any program of the user's that prints a public URL. It runs in
 * a shell so that quoting and pipes work as typed; the first https URL it prints is the tunnel's.
 * Its environment is the allow-list of tunnelChildEnv: a program of the user's that needs more
 * (a token for its service, say) gets the variables the user names in VAST_GCHAT_TUNNEL_ENV.
 * An allow-list rather than "everything but our secrets": serve's environment may hold the
 * user's other credentials (a cloud key, a database URL) that we cannot recognise, and a tunnel
 * program hands traffic to a third party.
 */
export function commandTunnel(template: string, env: NodeJS.ProcessEnv): TunnelProvider {
  return {
    name: "command",
    async open(options) {
      const command = template.replaceAll("{port}", String(options.port));
      return openChildTunnel(
        {
          label: "the tunnel command",
          command: "/bin/sh",
          args: ["-c", command],
          env: tunnelChildEnv(env),
          findUrl: firstPublicUrl,
          notInstalled: new TunnelError("setup", "No shell (/bin/sh) to run the tunnel command."),
        },
        options,
      );
    },
  };
}
