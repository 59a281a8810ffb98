import { afterAll, beforeAll } from "vitest";
import {
  type ClusterOptions,
  type PostgresCluster,
  SKIP_POSTGRES,
  startPostgresCluster,
} from "../../support/postgres-cluster.js";
import { SQLITE_DRIVERS_HERE } from "../sqlite/drivers.js";

/**
 * The backends the store's contract runs on: each SQLite driver this Node has, and PostgreSQL
 * (a throwaway cluster per test file, test/support/postgres-cluster.ts). PostgreSQL is left out
 * only off CI when its programs are missing, with the reason printed; on CI it must run.
 */
export type StoreBackend = (typeof SQLITE_DRIVERS_HERE)[number] | "postgresql";

export const STORE_BACKENDS: StoreBackend[] = [
  ...SQLITE_DRIVERS_HERE,
  ...(SKIP_POSTGRES ? [] : (["postgresql"] as const)),
];

/** A cluster for the enclosing describe's tests: started before them, removed after. */
export function usePostgresCluster(options: ClusterOptions = {}): () => PostgresCluster {
  let cluster: PostgresCluster | undefined;
  beforeAll(async () => {
    cluster = await startPostgresCluster(options);
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  });
  return () => {
    if (!cluster) throw new Error("the PostgreSQL cluster did not start");
    return cluster;
  };
}
