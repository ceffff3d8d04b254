// A delay that doubles on each failure up to a cap, and starts again from the
// first delay once the thing retried has worked for a while (the caller says
// when: reset()). For restarts of a watch that may fail right after it starts.
export class Backoff {
  private failures = 0;

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {}

  /** The delay before the next try; each call counts one more failure. */
  next(): number {
    const ms = Math.min(this.maxMs, this.firstMs * 2 ** this.failures);
    if (ms < this.maxMs) this.failures++;
    return ms;
  }

  reset(): void {
    this.failures = 0;
  }
}
