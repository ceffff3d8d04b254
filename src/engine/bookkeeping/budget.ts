// A budget of objects in flight shared by every run of a process, so several
// jobs at once cannot together overload S3 or the operator's memory.

export class Budget {
  private inUse = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error(`budget size must be at least 1, got ${size}`);
  }

  /** Takes a slot; false (and no slot) when `signal` aborts first: a stop does not wait for other jobs' work. */
  async acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    if (this.inUse < this.size) {
      this.inUse++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else this.inUse--;
  }

  get inFlight(): number {
    return this.inUse;
  }
}
