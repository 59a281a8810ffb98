/**
 * `npm run check:packed -- NODE [NODE...]`: the package as users get it, on each given Node binary.
 *
 * It packs the package once (`npm pack`, which runs the build), then for each Node installs the
 * tarball into an empty prefix the way `npx` does (production dependencies only, nothing from this
 * repository's node_modules within reach) and runs the installed `vast-gchat` through its bin link:
 * `--help`, `--version` and `demo`. A file missing from `files`, a bin that only works from the
 * repository, or a dependency that is only a devDependency fails here and nowhere else.
 *
 * On Node 22.13 and later the install runs with `--ignore-scripts`: the store must run on the
 * built-in node:sqlite there, with no native build (issue 15). Older lines install with scripts, so
 * better-sqlite3 can build. The last Node given is also checked with the container's set
 * (Dockerfile): `--omit=optional` too (no better-sqlite3, no keyring) and the secrets in files.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { execa } from "execa";

const ROOT = resolve(import.meta.dirname, "..");
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;

/** npm's own CLI script, run by each Node under test (the Node packages carry no npm). */
function npmCli(): string {
  if (process.env.npm_execpath) return process.env.npm_execpath;
  throw new Error("run this through npm (npm run check:packed -- NODE...), so npm's path is known");
}

/** Node's version as [major, minor]. */
async function versionOf(node: string): Promise<[number, number]> {
  const { stdout } = await execa(node, ["-p", "process.versions.node"]);
  const [major = 0, minor = 0] = stdout.trim().split(".").map(Number);
  return [major, minor];
}

const hasBuiltinSqlite = ([major, minor]: [number, number]) =>
  major > 22 || (major === 22 && minor >= 13);

/** Anything a user should not see on a healthy run: warnings, deprecations, stack traces. */
const ALARMING = /warning|deprecat|experimental|error|\n\s+at /i;

/** `container`: installed and run as the Dockerfile does. */
async function checkOn(node: string, tarball: string, container = false): Promise<void> {
  const version = await versionOf(node);
  const label = `Node ${version.join(".")}${container ? ", the container's install" : ""}`;
  const prefix = mkdtempSync(join(tmpdir(), "vast-gchat-packed-"));
  // The Node under test comes first on PATH: the bin's `#!/usr/bin/env node` and npm's scripts use it.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dirname(realpathSync(node))}:${process.env.PATH ?? ""}`,
  };
  // `npm run` sets the repository as npm's prefix; the install must go to the empty one.
  delete env.npm_config_prefix;
  try {
    const ignoreScripts = hasBuiltinSqlite(version) ? ["--ignore-scripts"] : [];
    await execa(
      node,
      [
        npmCli(),
        "install",
        "--prefix",
        prefix,
        "--omit=dev",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        ...ignoreScripts,
        ...(container ? ["--omit=optional"] : []),
        tarball,
      ],
      { env, cwd: prefix },
    );
    const bin = join(prefix, "node_modules", ".bin", "vast-gchat");
    // A config dir of its own, so nothing of the user's is read (demo makes its own anyway).
    const runEnv = {
      ...env,
      VAST_GCHAT_CONFIG_DIR: join(prefix, "config"),
      NO_COLOR: "1",
      ...(container ? { VAST_GCHAT_SECRET_STORE: "file" } : {}),
    };
    const run = (args: string[]) =>
      execa(bin, args, { env: runEnv, cwd: prefix, reject: false, timeout: 60_000 });

    const help = await run(["--help"]);
    expect(label, "--help", help.exitCode === 0 && help.stdout.includes("Usage: vast-gchat"), help);
    const shown = await run(["--version"]);
    expect(label, "--version", shown.exitCode === 0 && shown.stdout.trim() === VERSION, shown);
    const demo = await run(["demo"]);
    expect(label, "demo", demo.exitCode === 0 && /^Done: /m.test(demo.stdout), demo);
    for (const [name, result] of [
      ["--help", help],
      ["--version", shown],
      ["demo", demo],
    ] as const) {
      expect(label, `${name} prints nothing alarming`, !ALARMING.test(result.stderr), result);
    }
    console.log(
      `ok   ${label}: installed${ignoreScripts.length ? " with scripts off" : ""}${container ? " and no optional dependency" : ""}, --help, --version, demo`,
    );
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}

function expect(
  label: string,
  what: string,
  ok: boolean,
  result: { exitCode?: number | undefined; stdout: string; stderr: string },
): void {
  if (ok) return;
  throw new Error(
    `${label}: ${what} failed (exit ${result.exitCode})\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
  );
}

async function main(nodes: string[]): Promise<number> {
  if (nodes.length === 0) {
    console.error("usage: npm run check:packed -- NODE [NODE...]   (paths of node binaries)");
    return 2;
  }
  const packDir = mkdtempSync(join(tmpdir(), "vast-gchat-pack-"));
  try {
    const { stdout } = await execa("npm", ["pack", "--json", "--pack-destination", packDir], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as { filename: string }[];
    if (!packed) throw new Error("npm pack made no tarball");
    const tarball = join(packDir, packed.filename);
    for (const node of nodes) await checkOn(node, tarball);
    await checkOn(nodes.at(-1) as string, tarball, true);
    return 0;
  } catch (error) {
    console.error(`FAIL ${(error as Error).message}`);
    return 1;
  } finally {
    rmSync(packDir, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));
