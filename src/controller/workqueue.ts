// A work queue in the manner of client-go's: a key is never processed by two
// workers at once, adds while it is processed mark it dirty to run again, and
// failures come back after an exponential per-key backoff.

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  onAdd?: () => void;
  onRetry?: () => void;
  onDepth?: (depth: number) => void;
  onQueueWait?: (seconds: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(private readonly opts: WorkQueueOptions = {}) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    this.opts.onAdd?.();
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.addedAt.set(key, performance.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
    } else {
      this.queue.push(key);
      this.opts.onDepth?.(this.queue.length);
    }
  }

  addAfter(key: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.add(key);
    }, ms);
    this.timers.add(t);
  }

  /**
   * Retries a key after the larger of its own exponential backoff and the
   * overall bucket's wait (10 retries/s, burst 100), as client-go's default
   * controller rate limiter does, so many failing keys cannot storm the API.
   */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.opts.onRetry?.();
    const perItem = Math.min((this.opts.baseDelayMs ?? 500) * 2 ** n, this.opts.maxDelayMs ?? 300_000);
    this.addAfter(key, Math.max(perItem, this.overallDelay()));
  }

  private bucketTokens = 100;
  private bucketAt = Date.now();

  private overallDelay(): number {
    const now = Date.now();
    this.bucketTokens = Math.min(100, this.bucketTokens + ((now - this.bucketAt) / 1000) * 10);
    this.bucketAt = now;
    this.bucketTokens -= 1;
    return this.bucketTokens >= 0 ? 0 : Math.ceil((-this.bucketTokens / 10) * 1000);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  private take(key: string): void {
    this.queued.delete(key);
    this.processing.add(key);
    const at = this.addedAt.get(key);
    if (at !== undefined) this.opts.onQueueWait?.((performance.now() - at) / 1000);
    this.addedAt.delete(key);
  }

  /** Next key to process, or undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.take(key);
      this.opts.onDepth?.(this.queue.length);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get depth(): number {
    return this.queue.length;
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters) w(undefined);
    this.waiters = [];
  }
}
