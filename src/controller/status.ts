// Coalescing status writes: at most about one merge patch per second per job,
// and at once on a phase change, so a 100k-object job does not flood etcd.
// A coalesced write that fails is tried again with the next one; a record a
// later run depends on (an open multipart upload's id, a run's final status)
// is written with `durable` or `settle`, which say whether it was written.
import type { Logger } from '../log.js';
import type { EncryptionJobStatus } from './api.js';
import type { KubeClient } from './kubeclient.js';

/** How long a durable write is tried again before it is given up (one hung call may take longer). */
export const DURABLE_WRITE_MS = 10_000;

/** A status write that must be durable could not be made. */
export class StatusWriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StatusWriteError';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Coalesces the status writes of one object: an EncryptionJob by default, an EncryptionShard with its own `write`. */
export class StatusWriter<T extends object = EncryptionJobStatus> {
  private pending: T | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite = 0;
  private chain: Promise<void> = Promise.resolve();
  /** A flush waiting for the one in flight; not started yet. */
  private queued: Promise<void> | undefined;
  /** Updates merged so far, the last one merged into `pending`, and the last one written (all before it are). */
  private merged = 0;
  private pendingUpTo = 0;
  private writtenUpTo = 0;
  private disposed = false;
  /** The job was deleted: nothing more can be written. */
  private gone = false;
  private lastError: unknown;
  writes = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
    private readonly log: Logger,
    private readonly minIntervalMs = 1000,
    /** How a coalesced update is written (default: a merge patch of the job's /status). */
    private readonly write: (status: T) => Promise<unknown> = (status) => client.patchStatus(namespace, name, status),
    /** The kind of object written, for error messages. */
    private readonly kind = 'EncryptionJob',
  ) {}

  /**
   * Merges into the pending patch; writes now if `immediate` or the interval has passed.
   * Resolves whether or not the write was made: a failed one is tried again with the next.
   */
  update(status: T, immediate = false): Promise<void> {
    this.merge(status);
    const wait = this.lastWrite + this.minIntervalMs - Date.now();
    if (immediate || wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), wait);
    return Promise.resolve();
  }

  /**
   * Writes `status` (with whatever is pending) now, trying again with backoff for up to
   * `maxMs`; resolves only once it is written, and rejects with a StatusWriteError when it
   * could not be: the caller must not go on as if it were recorded.
   */
  async durable(status: T, maxMs = DURABLE_WRITE_MS): Promise<void> {
    const mine = this.merge(status);
    if (await this.retryUntil(mine, maxMs)) return;
    const why = this.gone
      ? `the ${this.kind === 'EncryptionJob' ? 'job' : this.kind} is gone`
      : `not written within ${maxMs} ms: ${String(this.lastError)}`;
    throw new StatusWriteError(`writing the status of ${this.kind} ${this.namespace}/${this.name}: ${why}`, {
      cause: this.lastError,
    });
  }

  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // One write at a time, and at most one waiting behind it (it writes whatever is pending when it
    // starts): while the API server hangs, flushes do not pile up behind each other.
    if (this.queued) return this.queued;
    const next = this.chain.then(async () => {
      this.queued = undefined;
      const patch = this.pending;
      const upTo = this.pendingUpTo;
      // Disposed: whoever gave up on this write has said so (settle's false); it is not made behind their back.
      if (!patch || this.disposed) return;
      this.pending = undefined;
      this.lastWrite = Date.now();
      try {
        await this.write(patch);
        this.writes++;
        this.writtenUpTo = Math.max(this.writtenUpTo, upTo);
      } catch (err) {
        this.lastError = err;
        const code = (err as { code?: number }).code;
        if (code === 404) {
          this.gone = true; // the job is gone: nothing to write to
          return;
        }
        this.log.warn({ err: String(err) }, 'status write failed; will retry with the next update');
        this.pending = { ...patch, ...(this.pending ?? {}) };
        if (!this.disposed) this.timer ??= setTimeout(() => void this.flush(), this.minIntervalMs);
      }
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  /**
   * Writes whatever is pending and retries (with backoff) until it is written:
   * the final status of a run must not be lost to an API server restart.
   * Resolves true once written, false when it gave up (or the job is gone).
   */
  async settle(maxMs = 120_000): Promise<boolean> {
    const written = await this.retryUntil(this.merged, maxMs);
    if (!written && !this.gone) {
      this.log.error('giving up writing the final status; the next reconcile will resume from the checkpoint');
    }
    return written;
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private merge(status: T): number {
    this.pending = { ...this.pending, ...status };
    this.pendingUpTo = ++this.merged;
    return this.merged;
  }

  /**
   * Flushes until update number `seq` is written; false once `maxMs` passed or the job is gone.
   * A write that hangs (its call has a deadline of its own) is not waited for past `maxMs`.
   */
  private async retryUntil(seq: number, maxMs: number): Promise<boolean> {
    const deadline = Date.now() + maxMs;
    let delay = 250;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
      await Promise.race([this.flush(), late]);
      clearTimeout(timer);
      if (this.writtenUpTo >= seq) return true;
      if (this.gone || Date.now() + delay > deadline) return false;
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}
