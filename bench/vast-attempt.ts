import type { Pool } from "undici";
import { deliveryOutcome } from "../src/vast/delivery-outcome.js";
import { vastHeaders } from "../test/support/sign.js";

/**
 * One delivery attempt as Vast.ai makes it, shared by the bench's burst sender and the soak's:
 * signed at the moment it leaves (a fresh X-Vast-Timestamp and signature), POSTed, its answer
 * read to the end. The retry loop around it is each sender's own.
 */
export type AttemptResult =
  | { kind: "acked" }
  | { kind: "answered"; status: number }
  | { kind: "no answer"; code: string };

export interface AttemptTarget {
  path: string;
  secret: string;
}

export async function attemptDelivery(
  pool: Pool,
  target: AttemptTarget,
  event: { eventId: string; body: Buffer },
  attempt: number,
  signal: AbortSignal,
): Promise<AttemptResult> {
  try {
    const response = await pool.request({
      path: target.path,
      method: "POST",
      headers: vastHeaders(target.secret, event.body, { eventId: event.eventId, attempt }),
      body: event.body,
      signal,
    });
    await response.body.text();
    const status = response.statusCode;
    return deliveryOutcome(status) === "success" ? { kind: "acked" } : { kind: "answered", status };
  } catch (error) {
    const { code, name } = error as { code?: string; name?: string };
    return { kind: "no answer", code: code ?? name ?? "error" };
  }
}
