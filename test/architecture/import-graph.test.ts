import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

/**
 * The layers of src/ (docs/architecture.md, "Layers"): the import graph has no cycle, type imports
 * included, and nothing below the CLI imports from src/cli/. Read from the source text, so a
 * type-only import counts as much as any other.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");
/** Static imports and re-exports (`import type` too), and dynamic `import("./x.js")`. */
const IMPORT =
  /^\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"|import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/gms;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(IMPORT)].map((match) =>
      relative(SRC, resolve(dirname(file), (match[1] ?? match[2] ?? "").replace(/\.js$/, ".ts"))),
    );
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the files on it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

it("src/ has no import cycle, type imports included", () => {
  expect(cycles(importGraph()).map((cycle) => cycle.join(" -> "))).toEqual([]);
});

/**
 * What each part of src/ may import (docs/architecture.md, "Layers"); files at the top of src/
 * (user-error.ts, service-url.ts, version.ts) are the foundation every part may use.
 */
const MAY_IMPORT: Record<string, string[]> = {
  foundation: [],
  vast: ["foundation"],
  config: ["foundation"],
  tunnel: ["vast", "foundation"],
  chat: ["vast", "foundation"],
  delivery: ["chat", "vast", "foundation"],
  adapter: ["delivery", "chat", "vast", "foundation"],
  cli: ["adapter", "delivery", "chat", "tunnel", "config", "vast", "foundation"],
};

function partOf(file: string): string {
  return file.includes("/") ? (file.split("/")[0] ?? "") : "foundation";
}

it("each part of src/ imports only the layers below it", () => {
  const across = [...importGraph()].flatMap(([file, targets]) =>
    targets
      .filter((target) => partOf(target) !== partOf(file))
      .filter((target) => !(MAY_IMPORT[partOf(file)] ?? []).includes(partOf(target)))
      .map((target) => `${file} -> ${target}`),
  );
  expect(across).toEqual([]);
});

it("nothing below the CLI imports from src/cli/", () => {
  const upward = [...importGraph()]
    .filter(([file]) => !file.startsWith("cli/"))
    .flatMap(([file, targets]) =>
      targets.filter((t) => t.startsWith("cli/")).map((t) => `${file} -> ${t}`),
    );
  expect(upward).toEqual([]);
});
