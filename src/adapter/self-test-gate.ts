import { slugOf } from "../vast/type-selection.js";

/**
 * Recognising the adapter's own self-test event at the receiver, so that it never reaches Chat.
 *
 * Vast.ai answers `POST /webhooks/{id}/test/` only once its delivery is over (docs/vast-api.md),
 * so the event arrives before its `event_id` is known. While a self-test call is under way, every
 * verified `webhook_test` delivery is therefore claimed: answered 200 (it did reach us, which is
 * all it is for) but neither kept nor posted. Once Vast.ai names its event, a claimed event with
 * another id was somebody else's (`vast-gchat test` run at that moment) and is released: kept as
 * the receiver would have kept it, so the worker posts it; from then on only that id is claimed,
 * until the wait ends. With the merged spec's `{msg}` answer, which names no event, the
 * `webhook_test` events claimed during the run are taken as the self-test's (the guess
 * `vast-gchat test` makes too, by type and time). A call that failed releases what it claimed:
 * nothing the gate held back is lost.
 *
 * The receiver asks `claim()` for each verified, parsed delivery; the chain watcher opens a run
 * around each test call. One run at a time.
 */
export interface ClaimedEvent {
  eventId: string;
  notifType: string | undefined;
  payload: string;
  receivedAt: number;
}

export const TEST_EVENT_TYPE = "webhook_test";

export interface SelfTestRun {
  /**
   * Vast.ai answered 200, naming the event it sent when its answer does. Resolves true once that
   * event has arrived (perhaps already), false when `deadline` settles first or the run is closed.
   */
  arrival(eventId: string | undefined, deadline: Promise<void>): Promise<boolean>;
  /** Ends the run: nothing more is claimed for it. */
  close(): void;
}

export interface SelfTestGateOptions {
  /** Keeps an event the gate claimed that turned out not to be the self-test's. */
  release(event: ClaimedEvent): void;
}

interface Run {
  /** Vast.ai has answered 200: a claim from now on is the arrival. */
  answered: boolean;
  /** The event Vast.ai named; until then (or with a `{msg}` answer) any webhook_test is claimed. */
  expectedId: string | undefined;
  claimed: Map<string, ClaimedEvent>;
  arrived: boolean;
  wake: (() => void) | undefined;
}

export class SelfTestGate {
  private run: Run | undefined;

  constructor(private readonly options: SelfTestGateOptions) {}

  /** For the receiver: true when this delivery is the self-test's, to be answered and dropped. */
  claim(event: ClaimedEvent): boolean {
    const run = this.run;
    if (!run) return false;
    const ours =
      run.expectedId === undefined
        ? event.notifType !== undefined && slugOf(event.notifType) === TEST_EVENT_TYPE
        : event.eventId === run.expectedId;
    if (!ours) return false;
    run.claimed.set(event.eventId, event);
    if (run.answered) {
      run.arrived = true;
      run.wake?.();
    }
    return true;
  }

  /** Starts claiming `webhook_test` deliveries, for the test call about to be made. */
  begin(): SelfTestRun {
    if (this.run) this.end(this.run);
    const run: Run = {
      answered: false,
      expectedId: undefined,
      claimed: new Map(),
      arrived: false,
      wake: undefined,
    };
    this.run = run;
    return {
      arrival: async (eventId, deadline) => {
        if (this.run !== run) return false;
        run.answered = true;
        if (eventId === undefined) {
          run.arrived = run.claimed.size > 0;
        } else {
          run.expectedId = eventId;
          this.releaseAllBut(run, eventId);
          run.arrived = run.claimed.has(eventId);
        }
        if (!run.arrived) {
          await Promise.race([deadline, new Promise<void>((resolve) => (run.wake = resolve))]);
        }
        return run.arrived;
      },
      close: () => this.end(run),
    };
  }

  /** Ends the run under way, if any (the adapter is stopping): what it claimed is settled. */
  stop(): void {
    if (this.run) this.end(this.run);
  }

  private end(run: Run): void {
    if (this.run === run) this.run = undefined;
    run.wake?.();
    // Answered: what is still claimed is the self-test's own. Not answered (the call failed):
    // whatever came is released rather than lost; at worst Chat shows one test event.
    if (!run.answered) this.releaseAllBut(run, undefined);
    run.claimed.clear();
  }

  private releaseAllBut(run: Run, keep: string | undefined): void {
    for (const [id, event] of run.claimed) {
      if (id === keep) continue;
      run.claimed.delete(id);
      this.options.release(event);
    }
  }
}
