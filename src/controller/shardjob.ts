// What the shards of one job share in the operator's process: one maxObjects
// budget (spec.maxObjects counts over the job, whatever shard an object is in)
// and one report (spec.report: one part per shard run, and a manifest that
// lists every part so far).
import { createClients, type Connection } from '../engine/index.js';
import { ReportWriter } from '../engine/report.js';
import { uploadSegment } from '../engine/report-upload.js';
import type { JobProgress, ShardStatus } from './api.js';

/**
 * spec.maxObjects for a sharded run: what is left after the objects already
 * under the shards' checkpoints (the same rule as an unsharded run's
 * resumePoint), taken one object at a time by whichever shard lists it next.
 * The sum of the shards' scanned counters never passes maxObjects: the objects
 * a stopped shard finished above its checkpoint are counted again only when
 * its next run lists them again, out of this same budget.
 */
export class JobAllowance {
  private left: number;

  constructor(maxObjects: number, shards: readonly ShardStatus[]) {
    const done = shards.reduce((sum, s) => sum + (s.checkpointProgress?.scanned ?? 0), 0);
    this.left = Math.max(0, maxObjects - done);
  }

  get remaining(): number {
    return this.left;
  }

  take(): boolean {
    if (this.left <= 0) return false;
    this.left--;
    return true;
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
    /** Every part so far (a resumed job continues its report), oldest first. */
    public parts: string[],
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
