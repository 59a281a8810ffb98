import type { EventStore } from "../delivery/event-store.js";
import type { DeliveryHealth } from "../delivery/worker.js";
import type { JsonResponse } from "./http-listener.js";

/**
 * The detailed health: store, queue, dead letters and whether Chat is failing (with Chat's last
 * error text). It tells a lot about the set-up, so only the loopback listener serves it.
 */
export interface HealthDeps {
  store: Pick<EventStore, "queue">;
  /** Whether Chat is failing now. */
  delivery?: () => DeliveryHealth;
  /** This adapter process's random id, as the public /health gives it. */
  instance?: string;
  now?: () => number;
}

export async function detailedHealth(deps: HealthDeps): Promise<JsonResponse> {
  const now = deps.now?.() ?? Date.now();
  const instance = deps.instance ? { instance: deps.instance } : {};
  try {
    const queue = await deps.store.queue();
    const delivery = deps.delivery?.();
    const oldestAge =
      queue.oldestPendingAt === null ? null : Math.max(0, (now - queue.oldestPendingAt) / 1000);
    return {
      status: 200,
      body: {
        ok: true,
        // Degraded, not down: a failing Chat is no reason for a supervisor to restart the adapter.
        // With nothing waiting (every failing event given up on), nothing is at risk: ok again.
        status: delivery?.failingSince && queue.pending > 0 ? "degraded" : "ok",
        ...instance,
        ...(delivery?.failingSince
          ? {
              chat: {
                failing_since: new Date(delivery.failingSince).toISOString(),
                last_error: delivery.lastError,
              },
            }
          : {}),
        store: "ok",
        queue: { pending: queue.pending, oldest_pending_age_s: oldestAge },
        dead: queue.dead,
      },
    };
  } catch {
    return {
      status: 503,
      body: { ok: false, error: "unavailable", ...instance, store: "unavailable" },
    };
  }
}
