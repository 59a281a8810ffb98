import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freeLoopbackPort } from "../../src/tunnel/free-port.js";

/**
 * A throwaway PostgreSQL server for the tests, made and removed by the tests themselves: `initdb`
 * into a temporary directory, a postmaster on a free loopback port (its unix socket in that
 * directory too, so nothing touches the machine's own PostgreSQL), a superuser with a generated
 * password (so every URL a test hands the product carries one, and the redaction of it is
 * exercised), one database per test file or test. Debian's `postgresql` package provides the
 * binaries; `.ci/run` installs it where missing.
 *
 * Speed over durability, for tests only: `fsync=off` and `full_page_writes=off` (an OS crash
 * could corrupt this cluster, which lives for one test file). `synchronous_commit` stays on, as in
 * production: an acknowledged event is committed on the server before the answer.
 *
 * initdb refuses to run as root: as root, the cluster's directory is given to the `postgres` user
 * and the programs run as it. A watchdog (a one-line shell loop, as the tunnel's) stops the
 * postmaster and removes the directory if the test process dies without cleaning up, kill -9
 * included; on an ordinary exit, `process.on("exit")` stops the postmaster at once.
 */

/** Where initdb, postgres live here: `pg_config --bindir`, else Debian's newest version folder. */
export function findPostgresBin(): string | undefined {
  const fromEnv = process.env.POSTGRES_BINDIR;
  if (fromEnv && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: "pipe" }).trim();
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir;
  } catch {
    // No pg_config on the PATH (it is in libpq-dev, or postgresql's own folder): look for Debian's.
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(root, version, "bin");
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir;
  }
  return undefined;
}

export const POSTGRES_BIN = findPostgresBin();

/**
 * Why the PostgreSQL tests cannot run here, or undefined when they can. On CI (CI=true) they must
 * run, so a test file calls `requirePostgres()` and fails with this sentence instead of skipping.
 */
export const POSTGRES_MISSING: string | undefined = POSTGRES_BIN
  ? undefined
  : "PostgreSQL's server programs (initdb, postgres) are not installed: `apt-get install postgresql` (.ci/run does it)";

/** Skip the PostgreSQL tests: only off CI, and only with the reason printed. */
export const SKIP_POSTGRES = POSTGRES_MISSING !== undefined && process.env.CI !== "true";
if (SKIP_POSTGRES) {
  process.stderr.write(`skipping the PostgreSQL tests: ${POSTGRES_MISSING}\n`);
}

export interface PostgresCluster {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The temporary directory: data, socket, log. */
  readonly dir: string;
  /** A URL to `database` on this cluster, password included. */
  url(database: string): string;
  /** A new empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  /** The server's log so far (to explain a failure). */
  log(): string;
  /** Stops the server ("fast": ends sessions cleanly; "immediate": as if it crashed). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Stops it and removes the directory. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  /** Server settings beyond the defaults here (e.g. max_connections). */
  settings?: Record<string, string | number>;
}

const SUPERUSER = "vast_gchat_test";
let databaseCounter = 0;

/** Throws the reason PostgreSQL tests cannot run, for a test file that needs a cluster. */
export function requirePostgres(): string {
  if (!POSTGRES_BIN) throw new Error(POSTGRES_MISSING);
  return POSTGRES_BIN;
}

export async function startPostgresCluster(options: ClusterOptions = {}): Promise<PostgresCluster> {
  const bin = requirePostgres();
  const dir = mkdtempSync(join(tmpdir(), "vast-gchat-pg-"));
  const data = join(dir, "data");
  const logPath = join(dir, "server.log");
  const password = `pw-${randomBytes(12).toString("hex")}`;
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
  writeFileSync(join(dir, "pwfile"), `${password}\n`, { mode: 0o600 });
  closeSync(openSync(logPath, "a"));
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(join(dir, "pwfile"), owner.uid, owner.gid);
    chownSync(logPath, owner.uid, owner.gid);
  }

  const init = spawnSync(
    join(bin, "initdb"),
    [
      "-D",
      data,
      "-U",
      SUPERUSER,
      `--pwfile=${join(dir, "pwfile")}`,
      "--auth=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
    ],
    { ...ids, encoding: "utf8", cwd: dir, env: { PATH: process.env.PATH ?? "", LANG: "C" } },
  );
  rmSync(join(dir, "pwfile"), { force: true });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }

  const port = await freeLoopbackPort();
  const settings: Record<string, string | number> = {
    listen_addresses: "127.0.0.1",
    port,
    unix_socket_directories: dir,
    fsync: "off",
    full_page_writes: "off",
    synchronous_commit: "on",
    max_connections: 100,
    shared_buffers: "32MB",
    log_min_messages: "warning",
    ...options.settings,
  };
  const args = ["-D", data, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];

  let server: ChildProcess | undefined;
  let destroyed = false;
  const url = (database: string) =>
    `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

  const startServer = async () => {
    const fd = openSync(logPath, "a");
    const child = spawn(join(bin, "postgres"), args, {
      ...ids,
      cwd: dir,
      stdio: ["ignore", fd, fd],
      env: { PATH: process.env.PATH ?? "", LANG: "C" },
    });
    closeSync(fd);
    server = child;
    child.on("exit", () => {
      if (server === child) server = undefined;
    });
    await waitUntilReady(url("postgres"), child, () => readFileSync(logPath, "utf8"));
  };

  const watchdog = startWatchdog(dir, data);
  const onExit = () => {
    // Synchronous, as an exit handler must be: immediate shutdown now; the watchdog, which sees
    // this process gone within a second, removes the files once the server has let go of them.
    if (server?.pid) {
      try {
        process.kill(server.pid, "SIGQUIT");
      } catch {
        // Already gone.
      }
    }
  };
  process.on("exit", onExit);

  const stopServer = async (mode: "fast" | "immediate" = "fast") => {
    const child = server;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill(mode === "fast" ? "SIGINT" : "SIGQUIT");
    await exited;
  };

  try {
    await startServer();
  } catch (error) {
    await stopServer("immediate");
    process.off("exit", onExit);
    watchdog.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    port,
    user: SUPERUSER,
    password,
    dir,
    url,
    log: () => readFileSync(logPath, "utf8"),
    get running() {
      return server !== undefined && server.exitCode === null;
    },
    async createDatabase(name) {
      const database =
        name ?? `t${process.pid}_${++databaseCounter}_${randomBytes(3).toString("hex")}`;
      const client = new pg.Client({ connectionString: url("postgres") });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${database}"`);
      } finally {
        await client.end();
      }
      return url(database);
    },
    stop: stopServer,
    async start() {
      if (server) return;
      await startServer();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await stopServer("immediate");
      process.off("exit", onExit);
      watchdog.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The `postgres` account, which owns the cluster when the tests run as root. */
function postgresUser(): { uid: number; gid: number } {
  const passwd = readFileSync("/etc/passwd", "utf8");
  const line = passwd.split("\n").find((entry) => entry.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(
      `the tests run as root (${userInfo().username}) and there is no postgres user for initdb; install Debian's postgresql package`,
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * A shell loop that outlives a test process killed outright: once that process is gone it stops
 * the postmaster (immediate shutdown: its pid is in postmaster.pid) and removes the directory.
 */
function startWatchdog(dir: string, data: string): ChildProcess {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null',
    "sleep 1",
    'rm -rf "$2"',
  ].join("; ");
  const child = spawn("sh", ["-c", script, "pg-watchdog", String(process.pid), dir, data], {
    stdio: "ignore",
    detached: true,
  });
  child.unref();
  return child;
}

async function waitUntilReady(
  url: string,
  child: ChildProcess,
  log: () => string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`postgres exited (${child.exitCode}) while starting:\n${log()}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) {
      throw new Error(`postgres did not accept connections in ${timeoutMs} ms:\n${log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
