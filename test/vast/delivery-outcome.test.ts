import { describe, expect, it } from "vitest";
import { deliveryOutcome } from "../../src/vast/delivery-outcome.js";

/** The table at the top of docs/tunnels.md, row by row. */
describe("deliveryOutcome", () => {
  it.each([200, 201, 202, 204, 299])("%i is a success", (status) => {
    expect(deliveryOutcome(status)).toBe("success");
  });

  it.each([408, 429, 500, 502, 503, 504, 530, 599])("%i is retried", (status) => {
    expect(deliveryOutcome(status)).toBe("retry");
  });

  it("retries a delivery that got no answer (a timeout, a connection error)", () => {
    expect(deliveryOutcome("no answer")).toBe("retry");
  });

  it.each([301, 302, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451])(
    "%i is final",
    (status) => {
      expect(deliveryOutcome(status)).toBe("permanent");
    },
  );
});
