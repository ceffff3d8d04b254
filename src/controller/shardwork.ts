// What running one shard means, the same in the operator's process
// (shardrun.ts) and in a worker pod (workerpod.ts): the engine plan of the
// shard from its checkpoint, what engine progress changes in the shard's
// status, and what the run's result makes of it. One place, so a fix to how a
// shard resumes or ends is made once.
import type { Plan, Progress, RunResult } from '../engine/index.js';
import type { JobProgress, ShardStatus } from './api.js';
import { ZERO_PROGRESS } from './checkpoint.js';
import { add, addCommitted } from './jobrun.js';
import { SHARD_MAX_OPEN_UPLOADS } from './shardstore.js';
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
