// What the shards of one job share in the operator's process: one maxObjects
// budget (spec.maxObjects counts over the job, whatever shard an object is in)
// and one report (spec.report: one part per shard run, and a manifest that
// lists every part so far).
import { createClients, type Connection } from '../engine/index.js';
import { ReportWriter } from '../engine/bookkeeping/report.js';
import { readManifestParts, uploadSegment } from '../engine/bookkeeping/report-upload.js';
import type { JobProgress, ShardStatus } from './api.js';

/**
 * spec.maxObjects for a sharded run: one pool for the job, taken one object
 * at a time by whichever shard lists it next. Like an unsharded run's
 * resumePoint, the objects under the shards' checkpoints are spent; and each
 * shard keeps hold of the objects its earlier runs took above its checkpoint
 * (ShardStatus.budgetHeld: a stop left them finished or not, to be looked at
 * again), so its next run gets them back first, before the pool. So the sum of
 * the shards' counters never passes maxObjects, and no object a stopped run
 * changed goes uncounted because other shards spent the budget meanwhile.
 */
export class JobAllowance {
  private pool: number;

  constructor(maxObjects: number, shards: readonly ShardStatus[]) {
    const done = shards.reduce((sum, s) => sum + (s.checkpointProgress?.scanned ?? 0), 0);
    const held = shards.reduce((sum, s) => sum + (s.budgetHeld ?? 0), 0);
    this.pool = Math.max(0, maxObjects - done - held);
  }

  get remaining(): number {
    return this.pool;
  }

  /** One shard run's share: its held objects first, then the pool. */
  forShard(shard: ShardStatus): ShardAllowance {
    return new ShardAllowance(shard.budgetHeld ?? 0, () => {
      if (this.pool <= 0) return false;
      this.pool--;
      return true;
    });
  }
}

export class ShardAllowance {
  private taken = 0;

  constructor(
    private readonly held: number,
    private readonly fromPool: () => boolean,
  ) {}

  take(): boolean {
    if (this.taken < this.held || this.fromPool()) {
      this.taken++;
      return true;
    }
    return false;
  }

  /**
   * What the shard still holds after a run that did not complete: the objects
   * taken (now or before) beyond those its checkpoint moved over.
   */
  stillHeld(committed: number): number {
    return Math.max(0, Math.max(this.taken, this.held) - committed);
  }
}

/**
 * The job's report across shard runs: each shard run writes its own part
 * (outcomes as its checkpoint passes them, like an unsharded run's segment);
 * uploads are one at a time, so each manifest lists every part before it.
 */
export class ShardReports {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly opts: { destination: string; all: boolean; connection: Connection; job: string },
    /**
     * Every part so far (a resumed job continues its report), oldest first; undefined: those the
     * manifest lists (the job's status keeps only the manifest: its size does not grow with the report).
     */
    private parts: string[] | undefined,
    public manifest: string | undefined,
  ) {}

  writer(): ReportWriter {
    return new ReportWriter({ destination: this.opts.destination, all: this.opts.all });
  }

  /** Uploads one shard run's part and a new manifest; throws what went wrong (the caller makes it an event). */
  upload(report: ReportWriter): Promise<{ manifest: string; parts: string[] }> {
    const next = this.chain.then(async () => {
      const clients = createClients(this.opts.connection);
      try {
        this.parts ??= this.manifest ? await readManifestParts(clients.s3, this.manifest) : [];
        const file = await report.closeFile();
        const out = await uploadSegment(clients.s3, {
          destination: this.opts.destination,
          localPath: file.path,
          contentType: file.contentType,
          previous: this.parts,
          job: this.opts.job,
        });
        this.parts = out.parts;
        this.manifest = out.manifest;
        return out;
      } finally {
        clients.destroy();
        report.removeTemp();
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** Whether the job stopped at its maxObjects (for the Complete message). */
export function reachedMaxObjects(maxObjects: number | undefined, progress: JobProgress): boolean {
  return maxObjects !== undefined && progress.scanned >= maxObjects;
}
