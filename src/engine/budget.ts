// A budget of objects in flight shared by every run of a process, so several
// jobs at once cannot together overload S3 or the operator's memory.

export class Budget {
  private inUse = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error(`budget size must be at least 1, got ${size}`);
  }

  async acquire(): Promise<void> {
    if (this.inUse < this.size) {
      this.inUse++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.inUse--;
  }

  get inFlight(): number {
    return this.inUse;
  }
}
