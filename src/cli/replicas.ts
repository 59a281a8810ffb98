import { parseStoreLocation } from "../delivery/store-location.js";

/**
 * What this `serve` is among its replicas. On SQLite it is alone, so it always leads. On a shared
 * PostgreSQL store, replicas elect a leader (src/delivery/postgres/leader.ts): only the leader
 * keeps the Vast.ai webhook pointed (`isLeader()` is the seam for whatever else must happen once,
 * not once per replica, such as a periodic check of the webhook), and when it dies another replica
 * takes over within the poll interval and points the webhook at its URL.
 */
export interface ReplicaRole {
  isLeader(): boolean;
  close(): Promise<void>;
}

export interface ReplicaLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface ReplicaOptions {
  /** This replica, in the log. */
  instance: string;
  log: ReplicaLog;
  /** Called when this replica becomes the leader after the start (a takeover). */
  onTakeover: () => Promise<void> | undefined;
  /** How often a follower tries to lead. Default 2 s (VAST_GCHAT_LEADER_POLL_MS for tests). */
  pollMs?: number;
}

export const LEADER_POLL_ENV = "VAST_GCHAT_LEADER_POLL_MS";

const ALONE: ReplicaRole = { isLeader: () => true, close: async () => {} };

export async function startReplicaRole(
  storeLocation: string,
  options: ReplicaOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ReplicaRole> {
  const where = parseStoreLocation(storeLocation);
  if (where.kind !== "postgresql") return ALONE;
  const { startLeaderElection } = await import("../delivery/postgres/leader.js");
  const { log } = options;
  const fromEnv = Number(env[LEADER_POLL_ENV]);
  let started = false;
  const election = await startLeaderElection(where, {
    pollMs: options.pollMs ?? (fromEnv > 0 ? fromEnv : 2000),
    instance: options.instance,
    log,
    onChange: (leader) => {
      if (!leader || !started) return;
      log.info({ instance: options.instance }, "took over as leader: pointing the webhook here");
      Promise.resolve(options.onTakeover()).catch((error: unknown) => {
        log.warn({ reason: (error as Error).message }, "could not point the webhook");
      });
    },
  });
  started = true;
  if (!election.isLeader()) {
    log.info({ instance: options.instance }, "another replica leads: it keeps the webhook pointed");
  }
  return election;
}
