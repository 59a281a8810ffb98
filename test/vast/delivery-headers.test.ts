import { describe, expect, it } from "vitest";
import { deliveryHeaders } from "../../src/vast/delivery-headers.js";
import { SIGNATURE_VECTORS } from "../support/signature-vectors.js";

describe("deliveryHeaders", () => {
  it.each(SIGNATURE_VECTORS)("signs as Vast.ai does: $name", (vector) => {
    const headers = deliveryHeaders({
      secret: vector.secret,
      body: Buffer.from(vector.body_base64, "base64"),
      eventId: "7e9a2c4e6f9e4a24a53b77c2d8e3f0aa",
      attempt: 3,
      timestampSeconds: Number(vector.timestamp),
    });
    expect(headers).toEqual({
      "content-type": "application/json",
      "x-vast-event-id": "7e9a2c4e6f9e4a24a53b77c2d8e3f0aa",
      "x-vast-delivery-attempt": "3",
      "x-vast-timestamp": vector.timestamp,
      "x-vast-signature-256": vector.signature,
    });
  });
});
