// Running one shard, the same in the operator's process (shardrun.ts) and in a
// worker pod (workerpod.ts): ShardRunner takes a shard from its checkpoint,
// runs the engine over its range, and keeps the shard's object current (open
// uploads durably, the end settled). What the two places add (the job's sum
// and metrics in the operator, failure logs in a pod) are hooks. One place, so
// a fix to how a shard resumes, records or ends is made once.
import { runEngine, type Plan, type Progress, type RunOptions, type RunResult } from '../engine/index.js';
import type { EncryptionShardStatus, JobProgress, ShardStatus } from './api.js';
import { ZERO_PROGRESS } from './checkpoint.js';
import { add, addCommitted } from './jobrun.js';
import { SHARD_MAX_OPEN_UPLOADS, shardStatusPatch } from './shardstore.js';
import type { StatusWriter } from './status.js';
import { clip } from './tenancy.js';

/** The counters the shard's run adds to: those of its keys up to its checkpoint. */
export function shardBase(shard: ShardStatus): JobProgress {
  return shard.checkpointProgress ?? ZERO_PROGRESS;
}

/**
 * The engine plan of one run of `shard`: its range, listed from its checkpoint, with the uploads a
 * crashed run of it left open (aborted first), and at most SHARD_MAX_OPEN_UPLOADS open at once.
 */
export function shardPlan(basePlan: Plan, shard: ShardStatus): Plan {
  const from = shard.checkpoint ?? shard.startAfter;
  const abandoned = shard.openUploads ?? [];
  return {
    ...basePlan,
    ...(from ? { startAfter: from } : {}),
    ...(shard.endAt !== undefined ? { endAt: shard.endAt } : {}),
    ...(shard.startAfter ? { shardStartAfter: shard.startAfter } : {}),
    ...(abandoned.length > 0 ? { abandonedUploads: abandoned } : {}),
    maxOpenUploads: SHARD_MAX_OPEN_UPLOADS,
  };
}

/** The shard as a run of it starts. */
export function startShard(shard: ShardStatus): void {
  shard.phase = 'Running';
  delete shard.message;
}

/** What engine progress changes in the shard's status: counters, checkpoint (with its counters), open uploads. */
export function applyProgress(shard: ShardStatus, base: JobProgress, p: Progress, dryRun: boolean): void {
  shard.progress = add(base, p, dryRun);
  if (p.checkpoint !== undefined) {
    shard.checkpoint = p.checkpoint;
    shard.checkpointProgress = addCommitted(base, p.committed, dryRun);
  }
  setOpenUploads(shard, p.openUploads);
}

export function setOpenUploads(shard: ShardStatus, open: Progress['openUploads']): void {
  if (open.length > 0) shard.openUploads = open;
  else delete shard.openUploads;
}

/**
 * The shard's phase after a run: Complete (its total is what it saw), Failed for good (with why), or
 * Pending (stopped, or a passing failure: the next run resumes from the checkpoint, the message says why).
 */
export function endShard(shard: ShardStatus, result: RunResult): void {
  if (result.status === 'Complete') {
    shard.phase = 'Complete';
    const p = shard.progress ?? { ...ZERO_PROGRESS };
    shard.progress = { ...p, total: p.scanned, summary: `${p.encrypted + p.alreadyEncrypted}/${p.scanned}` };
    if (result.noncurrentVersions !== undefined) shard.noncurrentVersions = result.noncurrentVersions;
    else delete shard.noncurrentVersions;
  } else if (result.status === 'Failed' && !result.retryable) {
    shard.phase = 'Failed';
    shard.message = clip(`${result.reason ?? 'Failed'}: ${result.message ?? 'the run failed'}`);
  } else {
    shard.phase = 'Pending';
    if (result.status === 'Failed') shard.message = clip(`${result.reason ?? 'Failed'}: ${result.message ?? ''}`);
  }
}

export interface ShardRunHooks {
  /** Engine options besides progress and upload records (signal, budget, allowance, outcomes, observer). */
  engine: Omit<RunOptions, 'onProgress' | 'recordUploads'>;
  /** A dry run: it records no upload (it opens none) and counts what would change. */
  dryRun: boolean;
  /** After each progress, once the shard's status has taken it. */
  onProgress?: (p: Progress) => void;
  /** After the engine run, before the shard's end is written (a report part, the budget it holds). */
  beforeEnd?: (result: RunResult, base: JobProgress) => Promise<void> | void;
  /** How long the final write is tried (default 120 s). */
  settleMs?: () => number;
}

/**
 * One run of one shard: from its checkpoint to the end of its range (or a stop), its object kept
 * current through `writer` (coalesced; open multipart uploads durably, before any part is copied;
 * the end written and settled). `written` says whether the shard's end is recorded.
 */
export class ShardRunner {
  constructor(
    private readonly shard: ShardStatus,
    private readonly writer: StatusWriter<EncryptionShardStatus>,
  ) {}

  async run(basePlan: Plan, hooks: ShardRunHooks): Promise<{ result: RunResult; written: boolean }> {
    const { shard, writer } = this;
    const base = shardBase(shard);
    startShard(shard);
    void writer.update(shardStatusPatch(shard), true);
    const onProgress = (p: Progress): void => {
      applyProgress(shard, base, p, hooks.dryRun);
      hooks.onProgress?.(p);
      void writer.update(shardStatusPatch(shard));
    };
    // Rejects when the record could not be written: the engine then aborts the upload and fails the object as transient.
    const recordUploads = async (open: Progress['openUploads']): Promise<void> => {
      setOpenUploads(shard, open);
      await writer.durable(shardStatusPatch(shard));
    };
    let result: RunResult;
    try {
      result = await runEngine(shardPlan(basePlan, shard), {
        ...hooks.engine,
        onProgress,
        ...(hooks.dryRun ? {} : { recordUploads }),
      });
      onProgress(result);
      await hooks.beforeEnd?.(result, base);
      endShard(shard, result);
    } catch (err) {
      writer.dispose();
      throw err;
    }
    void writer.update(shardStatusPatch(shard), true);
    const written = await writer.settle(hooks.settleMs?.() ?? 120_000);
    writer.dispose();
    return { result, written };
  }
}
