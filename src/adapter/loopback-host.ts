/**
 * Whether a request's Host header names the loopback listener itself. A web page can point a
 * hostname of its own at 127.0.0.1 (DNS rebinding) and then read same-origin answers from a local
 * port; its requests still carry that hostname, so anything but a loopback name is refused.
 */
export function isLoopbackHostHeader(host: string | undefined, port: number): boolean {
  // Only what a host and port can be made of: no user info, path or second host to confuse URL.
  if (!host || !/^[A-Za-z0-9.\-[\]:]+$/.test(host)) return false;
  let url: URL;
  try {
    url = new URL(`http://${host}/`);
  } catch {
    return false;
  }
  // URL leaves out the scheme's default port, so port 80 is also "".
  const given = url.port === "" ? 80 : Number(url.port);
  if (given !== port) return false;
  // URL has already turned 127.1, 0x7f.0.0.1 and the like into dotted decimal.
  const name = url.hostname.toLowerCase();
  return name === "localhost" || name === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(name);
}
