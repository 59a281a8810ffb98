import { spawnSync } from "node:child_process";

/**
 * A small tmpfs for the disk-full part. Mounting needs root; every mount is remembered so that it
 * is undone however the suite ends (normal end, error, Ctrl+C).
 */
const mounted = new Set<string>();

export type MountResult = { ok: true } | { ok: false; reason: string };

export function mountTmpfs(dir: string, size: string): MountResult {
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (result.error) return { ok: false, reason: result.error.message };
  if (result.status !== 0) {
    return { ok: false, reason: (result.stderr || `mount exited ${result.status}`).trim() };
  }
  mounted.add(dir);
  return { ok: true };
}

/** Unmounts, falling back to a lazy unmount if something still holds a file open. */
export function unmount(dir: string): MountResult {
  if (!mounted.has(dir)) return { ok: true };
  let result = spawnSync("umount", [dir], { encoding: "utf8", timeout: 10_000 });
  if (result.status !== 0) {
    result = spawnSync("umount", ["-l", dir], { encoding: "utf8", timeout: 10_000 });
  }
  if (result.status !== 0) {
    return { ok: false, reason: (result.stderr || `umount exited ${result.status}`).trim() };
  }
  mounted.delete(dir);
  return { ok: true };
}

export function unmountAll(): void {
  for (const dir of [...mounted]) unmount(dir);
}
