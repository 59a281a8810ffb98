/**
 * Which answers end a Vast.ai delivery and which bring it back, as Vast.ai states it (the table at
 * the top of docs/tunnels.md): a 2xx is a success; 408, 429, any 5xx, and no answer at all (no
 * answer within 10 s, a refused or cut connection) are retried later; a 3xx (redirects are not
 * followed) or any other 4xx is final, and the event is lost. The emulator, the bench's senders and
 * the tunnel supervisor (how fast a dead tunnel is replaced) apply this one rule.
 */
export type DeliveryOutcome = "success" | "retry" | "permanent";

/** `"no answer"` stands for an attempt that timed out or never got a connection. */
export function deliveryOutcome(answer: number | "no answer"): DeliveryOutcome {
  if (answer === "no answer") return "retry";
  if (answer >= 200 && answer < 300) return "success";
  if (answer === 408 || answer === 429 || answer >= 500) return "retry";
  return "permanent";
}
