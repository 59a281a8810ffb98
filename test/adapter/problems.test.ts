import { describe, expect, it } from "vitest";
import { createProblemMetrics } from "../../src/adapter/problem-metrics.js";
import { type ProblemChange, ProblemTracker } from "../../src/adapter/problems.js";

const WORDS = { title: "The Vast.ai webhook is gone", summary: "gone", action: "run init" };

function tracked(start = 1000) {
  let now = start;
  const tracker = new ProblemTracker({ now: () => now });
  const changes: ProblemChange[] = [];
  tracker.subscribe((change) => changes.push(change));
  return { tracker, changes, setNow: (ms: number) => (now = ms) };
}

describe("ProblemTracker", () => {
  it("opens a problem once, however often it is reported, and resolves it once", () => {
    const { tracker, changes, setNow } = tracked();
    expect(tracker.report("webhook_missing", WORDS)).toBe(true);
    setNow(2000);
    expect(tracker.report("webhook_missing", { ...WORDS, summary: "still gone" })).toBe(false);
    expect(tracker.report("webhook_missing", WORDS)).toBe(false);
    expect(changes).toEqual([
      { change: "opened", problem: { kind: "webhook_missing", since: 1000, ...WORDS } },
    ]);
    setNow(5000);
    expect(tracker.resolve("webhook_missing")).toBe(true);
    expect(tracker.resolve("webhook_missing")).toBe(false);
    expect(changes.slice(1)).toEqual([
      {
        change: "resolved",
        problem: { kind: "webhook_missing", since: 1000, ...WORDS },
        at: 5000,
      },
    ]);
    expect(tracker.list()).toEqual([]);
  });

  it("resolving what is not open says nothing", () => {
    const { tracker, changes } = tracked();
    expect(tracker.resolve("chat_refusing")).toBe(false);
    expect(changes).toEqual([]);
  });

  it("a problem that began before it was reported keeps its beginning; the list is oldest first", () => {
    const { tracker } = tracked(10_000);
    tracker.report("self_test_failed", WORDS);
    tracker.report("tunnel_unreachable", { ...WORDS, since: 4000 });
    expect(tracker.list().map((p) => [p.kind, p.since])).toEqual([
      ["tunnel_unreachable", 4000],
      ["self_test_failed", 10_000],
    ]);
    expect(tracker.isOpen("tunnel_unreachable")).toBe(true);
    expect(tracker.isOpen("webhook_missing")).toBe(false);
  });

  it("while open, later reports refresh its words silently", () => {
    const { tracker, changes } = tracked();
    tracker.report("self_test_failed", WORDS);
    tracker.report("self_test_failed", { title: "t2", summary: "s2", action: "a2" });
    expect(tracker.list()[0]).toMatchObject({ title: "t2", summary: "s2", action: "a2" });
    expect(changes).toHaveLength(1);
  });
});

describe("problem metrics", () => {
  it("a gauge per kind, 1 while open with when it began, every kind present", async () => {
    const { tracker } = tracked(1_700_000_000_000);
    const metrics = createProblemMetrics(() => tracker.list());
    const idle = await metrics.render();
    for (const kind of [
      "webhook_missing",
      "self_test_failed",
      "tunnel_unreachable",
      "chat_refusing",
    ])
      expect(idle).toContain(`vast_gchat_problem{kind="${kind}"} 0`);
    tracker.report("tunnel_unreachable", { ...WORDS, since: 1_699_999_880_000 });
    const open = await metrics.render();
    expect(open).toContain('vast_gchat_problem{kind="tunnel_unreachable"} 1');
    expect(open).toContain(
      'vast_gchat_problem_since_timestamp_seconds{kind="tunnel_unreachable"} 1699999880',
    );
    expect(open).toContain('vast_gchat_problem{kind="chat_refusing"} 0');
    tracker.resolve("tunnel_unreachable");
    expect(await metrics.render()).toContain('vast_gchat_problem{kind="tunnel_unreachable"} 0');
  });
});
