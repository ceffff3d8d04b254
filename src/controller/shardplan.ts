// Planning a job's shards, shared by the operator's in-process run (shardrun.ts)
// and the planning worker pod (workerpod.ts): cut the key space under the
// prefix into `n` ranges from the job's inventory (every key, no LIST) or from a
// sampling LIST pass, and carry over what an earlier unsharded run of the same
// selection already did (its checkpoint, its open multipart uploads).
import { createClients, JobError, type Plan } from '../engine/index.js';
import { errorCode, errorMessage, TransientError } from '../engine/errors.js';
import { sampleInventory } from '../engine/inventory-source.js';
import { planShards, sampleKeys } from '../engine/shards.js';
import type { EncryptionJob, EncryptionJobStatus, ShardStatus } from './api.js';
import { resumePoint, selectionFingerprint, ZERO_PROGRESS } from './checkpoint.js';

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
  const clients = createClients(basePlan.connection);
  const manifest = basePlan.inventoryManifest;
  let sample;
  try {
    sample =
      manifest !== undefined
        ? await sampleInventory(clients.s3, {
            manifest,
            bucket: basePlan.bucket,
            prefix: basePlan.prefix,
            signal: opts.signal,
          })
        : await sampleKeys(clients.s3, {
            bucket: basePlan.bucket,
            prefix: basePlan.prefix,
            maxRequests: Math.max(SAMPLE_REQUESTS_MIN, SAMPLE_REQUESTS_PER_SHARD * n),
            requestsPerSubPrefix: SAMPLE_REQUESTS_PER_SUB_PREFIX,
            signal: opts.signal,
          });
  } catch (err) {
    if (opts.signal.aborted) return undefined;
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
  const createdAt = (sample as { createdAt?: Date }).createdAt;
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
      createdAt: new Date().toISOString(),
      estimatedObjects: sample.estimatedCount,
      sampleRequests: sample.requests,
    },
  };
}
