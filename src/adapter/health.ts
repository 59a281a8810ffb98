import type { EventStore, QueueCounts } from "../delivery/event-store.js";
import type { DeliveryHealth } from "../delivery/worker.js";
import type { JsonResponse } from "./http-listener.js";

/**
 * The detailed health: store, queue, dead letters and whether Chat is failing (with Chat's last
 * error text), in all and for each route. It tells a lot about the set-up, so only the loopback
 * listener serves it.
 */
export interface HealthRoute {
  name: string;
  /** The route's Chat space label (never the webhook's key or token). */
  space: string;
  /** Whether its Chat is failing now. */
  delivery?: () => DeliveryHealth;
}

export interface HealthDeps {
  store: Pick<EventStore, "queue">;
  /** The routes this adapter delivers. */
  routes?: readonly HealthRoute[];
  /** This adapter process's random id, as the public /health gives it. */
  instance?: string;
  now?: () => number;
}

const NONE: QueueCounts = { pending: 0, dead: 0, oldestPendingAt: null };

export async function detailedHealth(deps: HealthDeps): Promise<JsonResponse> {
  const now = deps.now?.() ?? Date.now();
  const instance = deps.instance ? { instance: deps.instance } : {};
  const age = (oldest: number | null) =>
    oldest === null ? null : Math.max(0, (now - oldest) / 1000);
  try {
    const queue = await deps.store.queue();
    const routes = (deps.routes ?? []).map((route) => {
      const counts = queue.routes[route.name] ?? NONE;
      const delivery = route.delivery?.();
      // Degraded, not down: a failing Chat is no reason for a supervisor to restart the adapter.
      // With nothing waiting (every failing event given up on), nothing is at risk: ok again.
      const degraded = Boolean(delivery?.failingSince) && counts.pending > 0;
      return { route, counts, delivery, degraded };
    });
    // The adapter's own `chat`: the route whose Chat has failed longest.
    const failing = routes
      .flatMap((entry) => (entry.delivery?.failingSince ? [entry.delivery] : []))
      .sort((a, b) => (a.failingSince ?? 0) - (b.failingSince ?? 0))[0];
    return {
      status: 200,
      body: {
        ok: true,
        status: routes.some((entry) => entry.degraded) ? "degraded" : "ok",
        ...instance,
        ...(failing ? { chat: chatJson(failing) } : {}),
        store: "ok",
        queue: { pending: queue.pending, oldest_pending_age_s: age(queue.oldestPendingAt) },
        dead: queue.dead,
        routes: Object.fromEntries(
          routes.map(({ route, counts, delivery, degraded }) => [
            route.name,
            {
              space: route.space,
              status: degraded ? "degraded" : "ok",
              ...(delivery?.failingSince ? { chat: chatJson(delivery) } : {}),
              queue: { pending: counts.pending, oldest_pending_age_s: age(counts.oldestPendingAt) },
              dead: counts.dead,
            },
          ]),
        ),
      },
    };
  } catch {
    return {
      status: 503,
      body: { ok: false, error: "unavailable", ...instance, store: "unavailable" },
    };
  }
}

function chatJson(delivery: DeliveryHealth) {
  return {
    failing_since: new Date(delivery.failingSince ?? 0).toISOString(),
    last_error: delivery.lastError,
  };
}
