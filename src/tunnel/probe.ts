import { request } from "undici";
import type { ProbeResult } from "./supervisor.js";

/**
 * One end-to-end check: GET /health through the public URL must come back from this very adapter
 * (its instance id), whatever its status. A provider's own error page, a timeout, or another
 * adapter answering all mean the tunnel does not lead here.
 */
export async function probeThroughTunnel(
  publicUrl: string,
  instance: string,
  timeoutMs = 10_000,
): Promise<ProbeResult> {
  try {
    const response = await request(`${publicUrl}/health`, {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { "cache-control": "no-cache" },
    });
    const text = await response.body.text();
    let body: { instance?: unknown } = {};
    try {
      body = JSON.parse(text) as { instance?: unknown };
    } catch {
      // Not ours: a provider's HTML error page, say.
    }
    if (body.instance === instance) return { ok: true };
    return {
      ok: false,
      error: `the tunnel answered ${response.statusCode} without reaching this adapter`,
      status: response.statusCode,
    };
  } catch (error) {
    const code = (error as { code?: string }).code;
    return {
      ok: false,
      error:
        code === "UND_ERR_HEADERS_TIMEOUT"
          ? "no answer through the tunnel"
          : `could not reach the tunnel (${code ?? (error as Error).message})`,
    };
  }
}
