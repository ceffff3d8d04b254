// Planning a job's shards, shared by the operator's in-process run (shardrun.ts)
// and the planning worker pod (workerpod.ts): cut the key space under the
// prefix into `n` ranges from the job's inventory (every key, no LIST) or from a
// sampling LIST pass, and carry over what an earlier unsharded run of the same
// selection already did (its checkpoint, its open multipart uploads).
import { createClients, JobError, type Plan } from '../engine/index.js';
import { errorCode, errorMessage, TransientError } from '../engine/s3/errors.js';
import { sampleInventory } from '../engine/keys/inventory-source.js';
import { planShards, sampleKeys, type KeySample } from '../engine/keys/shards.js';
import type { EncryptionJob, EncryptionJobStatus, ShardStatus } from './api.js';
import { finishedRunChange, resumePoint, selectionChange, selectionFingerprint, ZERO_PROGRESS } from './checkpoint.js';

/** LIST requests the sampling pass may spend per planned shard (and at least this in all). */
export const SAMPLE_REQUESTS_PER_SHARD = 8;
export const SAMPLE_REQUESTS_MIN = 16;
/** And per sub-prefix at the top of the prefix, so many dates or tenants do not eat the whole budget. */
export const SAMPLE_REQUESTS_PER_SUB_PREFIX = 2;

export interface PlannedShards {
  shards: ShardStatus[];
  shardPlan: NonNullable<EncryptionJobStatus['shardPlan']>;
  inventory?: EncryptionJobStatus['inventory'];
  requests: number;
}

export interface PlanningFailure {
  reason: string;
  message: string;
  retryable: boolean;
}

/** The keys the shards are cut from: every key of the job's inventory, or a sampling LIST pass. */
async function sampleSelection(
  basePlan: Plan,
  n: number,
  signal: AbortSignal,
): Promise<(KeySample & { createdAt?: Date }) | PlanningFailure | undefined> {
  const clients = createClients(basePlan.connection);
  const manifest = basePlan.inventoryManifest;
  try {
    return manifest !== undefined
      ? await sampleInventory(clients.s3, { manifest, bucket: basePlan.bucket, prefix: basePlan.prefix, signal })
      : await sampleKeys(clients.s3, {
          bucket: basePlan.bucket,
          prefix: basePlan.prefix,
          maxRequests: Math.max(SAMPLE_REQUESTS_MIN, SAMPLE_REQUESTS_PER_SHARD * n),
          requestsPerSubPrefix: SAMPLE_REQUESTS_PER_SUB_PREFIX,
          signal,
        });
  } catch (err) {
    if (signal.aborted) return undefined;
    // The inventory's own errors name the manifest or file already.
    if (err instanceof JobError || err instanceof TransientError)
      return {
        reason: err.reason,
        message: `planning shards: ${err.message}`,
        retryable: err instanceof TransientError,
      };
    const cause = (err as { cause?: unknown }).cause ?? err;
    const code = errorCode(cause);
    const message = `planning shards: ${errorMessage(err)}`;
    if (code === 'NoSuchBucket') return { reason: 'BucketNotFound', message, retryable: false };
    if (code === 'AccessDenied' || code === 'AllAccessDisabled')
      return { reason: 'AccessDenied', message, retryable: false };
    return { reason: 'PlanningFailed', message, retryable: true };
  } finally {
    clients.destroy();
  }
}

/**
 * Plans `n` shards for the job's selection. `undefined` when the signal stopped it.
 * A dry run hands no open upload to its shards: it changes nothing, and the real runs still need to know of them.
 */
export async function planJobShards(
  job: EncryptionJob,
  basePlan: Plan,
  n: number,
  opts: { signal: AbortSignal; dryRun: boolean },
): Promise<PlannedShards | PlanningFailure | undefined> {
  const prev = job.status ?? {};
  const manifest = basePlan.inventoryManifest;
  const sample = await sampleSelection(basePlan, n, opts.signal);
  if (sample === undefined || 'reason' in sample) return sample;
  // Keys up to an unsharded run's checkpoint (same selection) are done: the first shard starts with them done.
  const resume = resumePoint(opts.dryRun ? job : { ...job, spec: { ...job.spec, dryRun: false } });
  const cut = planShards(sample.keys, n, resume.startAfter !== undefined ? { startAfter: resume.startAfter } : {});
  const shards: ShardStatus[] = cut.map((c) => ({
    index: c.index,
    startAfter: c.startAfter,
    ...(c.endAt !== undefined ? { endAt: c.endAt } : {}),
    phase: 'Pending',
    progress: { ...ZERO_PROGRESS },
  }));
  const first = shards[0]!;
  if (resume.startAfter !== undefined) {
    first.startAfter = '';
    first.checkpoint = resume.startAfter;
    first.checkpointProgress = resume.base;
    first.progress = { ...resume.base };
  }
  // Uploads an earlier run (unsharded, or of an older plan) may have left open: the first shard aborts them.
  const open = opts.dryRun
    ? []
    : [...(prev.checkpoint?.openUploads ?? []), ...(prev.shards ?? []).flatMap((s) => s.openUploads ?? [])];
  if (open.length > 0) first.openUploads = open;
  const createdAt = sample.createdAt;
  return {
    shards,
    requests: sample.requests,
    ...(manifest !== undefined
      ? {
          inventory: {
            manifest,
            ...(createdAt ? { createdAt: createdAt.toISOString() } : {}),
            objects: sample.estimatedCount,
          },
        }
      : {}),
    shardPlan: {
      spec: selectionFingerprint(job.spec),
      // A merge patch keeps what it does not name: a new plan has finished nothing yet.
      completedFor: null,
      createdAt: new Date().toISOString(),
      estimatedObjects: sample.estimatedCount,
      sampleRequests: sample.requests,
    },
  };
}

type ShardPlan = NonNullable<EncryptionJobStatus['shardPlan']>;

/** Whether `plan` (status.shardPlan or dryRunShardPlan) was made for the job's current selection. */
export function planFitsSelection(plan: EncryptionJobStatus['shardPlan'], job: EncryptionJob): boolean {
  return plan?.spec !== undefined && selectionChange(plan.spec, job) === undefined;
}

/** A shard as planned, nothing done: its open uploads stay recorded until a run of it aborts them. */
function restarted(s: ShardStatus): ShardStatus {
  return {
    index: s.index,
    startAfter: s.startAfter,
    ...(s.endAt !== undefined ? { endAt: s.endAt } : {}),
    phase: 'Pending',
    progress: { ...ZERO_PROGRESS },
    ...(s.openUploads ? { openUploads: s.openUploads } : {}),
  };
}

/**
 * The shards a run of `job` works on from a plan of its selection. The same
 * generation (an operator restart, a retry) keeps every shard as it is. A new
 * generation runs every shard that is not Complete again from its checkpoint,
 * and a Complete one too (keys added after it are picked up), unless every
 * shard had completed for a spec that differs in more than its pace
 * (finishedRunChange): then every shard runs from its start, and
 * `restartReason` says why. The plan comes back with the current fingerprint
 * (an older version's is upgraded once it was found to hold).
 */
export function resumeShards(
  job: EncryptionJob,
  shards: ShardStatus[],
  plan: ShardPlan,
): { shards: ShardStatus[]; plan: ShardPlan; restartReason?: string } {
  const status = job.status ?? {};
  const current = { ...plan, spec: selectionFingerprint(job.spec) };
  if (status.observedGeneration === job.metadata?.generation)
    return { shards: shards.map((s) => (s.phase === 'Complete' ? s : { ...s, phase: 'Pending' })), plan: current };
  const restartReason = finishedRunChange(plan.completedFor, plan.spec, job);
  if (restartReason) return { shards: shards.map(restarted), plan: { ...current, completedFor: null }, restartReason };
  return { shards: shards.map((s) => ({ ...s, phase: 'Pending' })), plan: current };
}
