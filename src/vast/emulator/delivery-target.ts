import { BlockList, isIP } from "node:net";
import { isLoopbackHost } from "../../service-url.js";

/**
 * Where a delivery may go. Two different limits: the addresses Vast.ai itself refuses to deliver
 * to (a refusal, final), and the emulator's own reach, which is loopback only so that tests and the
 * demo never leave the machine (any other host fails as a connection error would, and is retried).
 */

/**
 * Address ranges Vast.ai will not deliver to. Only literal addresses are checked (inferred: the
 * real service presumably also checks what a name resolves to).
 */
const PRIVATE_RANGES = (() => {
  const ranges = new BlockList();
  for (const [address, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.168.0.0", 16],
  ] as const) {
    ranges.addSubnet(address, prefix, "ipv4");
  }
  for (const [address, prefix] of [
    ["::", 127],
    ["::ffff:0:0", 96],
    ["fc00::", 7],
    ["fe80::", 10],
  ] as const) {
    ranges.addSubnet(address, prefix, "ipv6");
  }
  return ranges;
})();

/**
 * Why Vast.ai would refuse to deliver to this URL, or undefined when it would deliver.
 * `allowLoopback` makes the exception tests and the demo need: their receivers are on loopback.
 */
export function targetRefusal(rawUrl: string, allowLoopback: boolean): string | undefined {
  const hostname = new URL(rawUrl).hostname;
  const bare = hostname.replace(/^\[(.*)\]$/, "$1");
  if (allowLoopback && isLoopbackHost(hostname)) return undefined;
  const family = isIP(bare);
  const isPrivate =
    bare === "localhost" ||
    bare.endsWith(".localhost") ||
    (family !== 0 && PRIVATE_RANGES.check(bare, family === 6 ? "ipv6" : "ipv4"));
  return isPrivate
    ? `webhook_url points to a private or loopback address (${hostname}); such targets are refused`
    : undefined;
}

/** Why the emulator cannot reach this URL (it is not on loopback), or undefined when it can. */
export function outOfEmulatorReach(rawUrl: string): string | undefined {
  const url = new URL(rawUrl);
  if (isLoopbackHost(url.hostname)) return undefined;
  return `cannot reach ${url.host} from the emulator (loopback only)`;
}
