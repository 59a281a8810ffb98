import pg from "pg";
import type { StoreLocation } from "../store-location.js";
import { describePgError } from "./errors.js";

/**
 * Which replica leads: the one holding a PostgreSQL advisory lock on a connection of its own. Only
 * the leader keeps the Vast.ai webhook pointed (serve's tunnel and webhook code asks `isLeader()`;
 * so should any periodic check of the webhook). The lock belongs to the session: when the leader
 * dies, or its connection or the server goes, the lock is freed with the session, and another
 * replica, trying every `pollMs`, takes it within that time and says so.
 *
 * A leader also checks its connection every `pollMs`: a connection that no longer answers means
 * the lock may be someone else's now, so it steps down at once rather than act on a stale belief.
 */
export interface LeaderElection {
  isLeader(): boolean;
  /** Stops trying, and releases the lock (closes the connection). */
  close(): Promise<void>;
}

export interface LeaderLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface LeaderOptions {
  /** How often a follower tries the lock and a leader checks its connection. Default 2 s. */
  pollMs?: number;
  log: LeaderLog;
  /** Called when this replica becomes the leader (at start or on a takeover), or stops being it. */
  onChange?: (leader: boolean) => void;
  /** This replica, in the log lines. */
  instance?: string;
}

/** The advisory lock's key: (classid, objid) of the two-integer form, fixed for vast-gchat. */
const LOCK_CLASS = 0x7661_7374; // "vast"
const LOCK_LEADER = 1;

/** Starts electing; resolves after the first try, so `isLeader()` already answers for the start. */
export async function startLeaderElection(
  where: Extract<StoreLocation, { kind: "postgresql" }>,
  options: LeaderOptions,
): Promise<LeaderElection> {
  const pollMs = options.pollMs ?? 2000;
  const { log } = options;
  let client: pg.Client | undefined;
  let leader = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let lastProblem: string | undefined;

  const setLeader = (next: boolean, reason?: string) => {
    if (next === leader) return;
    leader = next;
    if (next)
      log.info({ instance: options.instance }, "leader: this replica keeps the webhook pointed");
    else log.warn({ instance: options.instance, reason }, "no longer the leader");
    options.onChange?.(next);
  };

  const drop = async () => {
    const old = client;
    client = undefined;
    await old?.end().catch(() => {});
  };

  const connect = async (): Promise<pg.Client> => {
    const fresh = new pg.Client({
      connectionString: where.url,
      connectionTimeoutMillis: 2000,
      query_timeout: 2000,
      application_name: "vast-gchat leader",
    });
    // An error on an idle connection (the server went away) must not crash the process.
    fresh.on("error", () => {});
    await fresh.connect();
    return fresh;
  };

  const tick = async () => {
    try {
      client ??= await connect();
      if (leader) {
        await client.query("SELECT 1");
      } else {
        const result = await client.query<{ locked: boolean }>(
          "SELECT pg_try_advisory_lock($1, $2) AS locked",
          [LOCK_CLASS, LOCK_LEADER],
        );
        if (result.rows[0]?.locked) setLeader(true);
      }
      lastProblem = undefined;
    } catch (error) {
      const problem = describePgError(error, where.secrets);
      await drop();
      setLeader(false, problem);
      if (problem !== lastProblem) log.debug({ reason: problem }, "leader election: no database");
      lastProblem = problem;
    }
  };

  const loop = async () => {
    await tick();
    if (!closed) timer = setTimeout(loop, pollMs);
  };
  await tick();
  if (!closed) timer = setTimeout(loop, pollMs);

  return {
    isLeader: () => leader,
    async close() {
      closed = true;
      clearTimeout(timer);
      await drop();
      leader = false;
    },
  };
}
