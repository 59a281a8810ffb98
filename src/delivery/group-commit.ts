/**
 * Group commit: the writes that arrive in one turn of the event loop share one transaction.
 *
 * Under load, many deliveries finish reading their bodies in the same turn (the poll phase hands
 * every readable socket its data before the check phase runs). Committing each alone makes every
 * one pay for its own transaction (the journal append, the lock); committing them together at the
 * end of the turn (setImmediate) costs about one. Each caller still resolves only once its write is
 * committed, so "an acknowledgement means committed" holds, and a lone write waits no timer, only
 * for the turn to end.
 *
 * When a shared transaction fails because of one write (`isolates(error)`: a constraint, say), the
 * batch is committed again one write at a time, so only the writes that fail are refused. Any
 * other failure (a full disk, a lock held elsewhere) is every write's: all are refused at once,
 * rather than each waiting again for the same lock.
 */
export interface GroupCommitOptions<Input, Result> {
  /** Runs every input in one transaction and returns their results in order; throws to roll back. */
  commit(inputs: readonly Input[]): Result[];
  /** Whether a failed batch is retried one write at a time. */
  isolates(error: unknown): boolean;
  /** Larger batches are split (one turn can bring thousands of writes). */
  maxBatch?: number;
}

interface Waiting<Input, Result> {
  input: Input;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

export class GroupCommit<Input, Result> {
  private waiting: Waiting<Input, Result>[] = [];
  private readonly maxBatch: number;

  constructor(private readonly options: GroupCommitOptions<Input, Result>) {
    this.maxBatch = options.maxBatch ?? 256;
  }

  /** Resolves with the input's result once the transaction holding it has committed. */
  submit(input: Input): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      if (this.waiting.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Commits every waiting write now (the store calls it before it closes). */
  flush(): void {
    while (this.waiting.length > 0) this.commitBatch(this.waiting.splice(0, this.maxBatch));
  }

  private commitBatch(batch: Waiting<Input, Result>[]): void {
    let results: Result[];
    try {
      results = this.options.commit(batch.map((waiting) => waiting.input));
    } catch (error) {
      if (batch.length > 1 && this.options.isolates(error)) {
        for (const waiting of batch) this.commitBatch([waiting]);
      } else {
        for (const waiting of batch) waiting.reject(error);
      }
      return;
    }
    for (const [index, waiting] of batch.entries()) waiting.resolve(results[index] as Result);
  }
}
