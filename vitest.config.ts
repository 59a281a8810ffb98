import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Child-process tests (kill -9, restarts) need room on a busy 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // `npx vitest bench`: micro-benchmarks of the hot path, not part of `npm test`.
    benchmark: { include: ["test/**/*.bench.ts"] },
  },
});
