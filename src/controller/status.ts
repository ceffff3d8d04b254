// Coalescing status writes: at most about one merge patch per second per job,
// and at once on a phase change, so a 100k-object job does not flood etcd.
import type { Logger } from '../log.js';
import type { EncryptionJobStatus } from './api.js';
import type { KubeClient } from './kubeclient.js';

export class StatusWriter {
  private pending: EncryptionJobStatus | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private chain: Promise<void> = Promise.resolve();
  writes = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
    private readonly log: Logger,
    private readonly minIntervalMs = 1000,
    /** How a coalesced update is written (default: a merge patch of /status); a worker applies its shard instead. */
    private readonly write: (status: EncryptionJobStatus) => Promise<unknown> = (status) =>
      client.patchStatus(namespace, name, status),
  ) {}

  /** Merges into the pending patch; writes now if `immediate` or the interval has passed. */
  update(status: EncryptionJobStatus, immediate = false): Promise<void> {
    this.pending = { ...this.pending, ...status };
    const wait = this.lastWrite + this.minIntervalMs - Date.now();
    if (immediate || wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), wait);
    return Promise.resolve();
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.chain = this.chain.then(async () => {
      const patch = this.pending;
      if (!patch) return;
      this.pending = undefined;
      this.lastWrite = Date.now();
      try {
        await this.write(patch);
        this.writes++;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return; // the job is gone
        this.log.warn({ err: String(err) }, 'status write failed; will retry with the next update');
        this.pending = { ...patch, ...(this.pending ?? {}) };
        this.timer ??= setTimeout(() => void this.flush(), this.minIntervalMs);
      }
    });
    return this.chain;
  }

  /**
   * Writes whatever is pending and retries (with backoff) until it is written:
   * the final status of a run must not be lost to an API server restart.
   */
  async settle(maxMs = 120_000): Promise<void> {
    const deadline = Date.now() + maxMs;
    let delay = 250;
    for (;;) {
      await this.flush();
      if (!this.pending) return;
      if (Date.now() > deadline) {
        this.log.error('giving up writing the final status; the next reconcile will resume from the checkpoint');
        return;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
