import { sampleEvent } from "../../src/vast/sample-events.js";

/**
 * Events the suite can find again in Chat. Each subject carries a token (`SOAKC000042`): letters
 * and digits only, so Chat escaping leaves it whole, and a digest shows every subject (its
 * fallback text and its card sections), so counting tokens per message counts events per message.
 */
export interface SoakEvent {
  token: string;
  eventId: string;
  /** The same bytes on every attempt; only the timestamp and signature headers change. */
  body: Buffer;
}

/** One capital letter per part, so tokens of different parts never mix. */
export type TokenSeries = "C" | "D" | "P" | "S";

export const TOKEN_PATTERN = /\bSOAK[A-Z]\d{6}\b/g;

export function soakToken(series: TokenSeries, index: number): string {
  return `SOAK${series}${String(index).padStart(6, "0")}`;
}

// A mix of real types, so digests group several types as a real burst would.
const TYPES = ["instance_stopped", "outbid", "low_credit", "machine_error", "billing_failed"];

export function makeSoakEvents(series: TokenSeries, count: number, firstIndex = 0): SoakEvent[] {
  return Array.from({ length: count }, (_, offset) => {
    const index = firstIndex + offset;
    const token = soakToken(series, index);
    const event = sampleEvent(TYPES[index % TYPES.length] ?? "low_credit", {
      subject: `${token} soak event`,
      message: `Soak event ${index}.`,
    });
    return { token, eventId: event.event_id, body: Buffer.from(JSON.stringify(event), "utf8") };
  });
}
