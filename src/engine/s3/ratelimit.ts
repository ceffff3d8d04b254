// A hard ceiling on requests per second (the job's maxRequestsPerSecond). The
// adaptive part (slowing down on SlowDown / throttling) is the SDK's adaptive
// retry mode; this only caps the rate a user asked for.

export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ratePerSecond: number) {
    this.tokens = Math.min(ratePerSecond, 1);
  }

  /** Resolves when the caller may send one request; callers are served in order. */
  take(): Promise<void> {
    const next = this.chain.then(() => this.wait());
    this.chain = next;
    return next;
  }

  private async wait(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.ratePerSecond, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000)));
    }
  }
}
