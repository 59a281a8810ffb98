import { signPayload } from "./signature.js";

/**
 * The headers Vast.ai sends with every delivery (docs/vast-api.md): the event's id, which attempt
 * this is, when the attempt left and the signature over that moment and the body. A retry sends
 * the same body with the next attempt number and a fresh timestamp and signature, which is why
 * they are built per attempt. The emulator, `trigger`, the tests and the bench all build them
 * here, so the receiver is tested against the headers Vast.ai sends, not against one copy of them.
 */
export interface DeliveryAttemptInfo {
  /** The webhook's signing secret. */
  secret: string;
  /** The exact bytes sent: the signature covers these bytes, never re-encoded JSON. */
  body: Uint8Array;
  eventId: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** When the attempt leaves, in Unix seconds (the signature's clock). */
  timestampSeconds: number;
}

export function deliveryHeaders(delivery: DeliveryAttemptInfo): Record<string, string> {
  const timestamp = String(delivery.timestampSeconds);
  return {
    "content-type": "application/json",
    "x-vast-event-id": delivery.eventId,
    "x-vast-delivery-attempt": String(delivery.attempt),
    "x-vast-timestamp": timestamp,
    "x-vast-signature-256": signPayload(delivery.secret, timestamp, delivery.body),
  };
}
