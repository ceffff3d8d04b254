// The EncryptionJob API as TypeScript types (mirrors crds/).
import type { KubernetesObject } from '@kubernetes/client-node';

export const GROUP = 's3encryption.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'encryptionjobs';
export const KIND = 'EncryptionJob';
export const FINALIZER = 's3encryption.dev/finalizer';
export const SHARD_PLURAL = 'encryptionshards';
export const SHARD_KIND = 'EncryptionShard';

export interface EncryptionJobSpec {
  bucket: string;
  prefix?: string;
  encryption: { type: 'AES256' | 'aws:kms' | 'aws:kms:dsse'; kmsKeyId?: string; bucketKeyEnabled?: boolean };
  connection?: {
    region?: string;
    endpoint?: string;
    kmsEndpoint?: string;
    forcePathStyle?: boolean;
    credentialsSecretRef?: { name: string };
    roleArn?: string;
    externalId?: string;
    stsEndpoint?: string;
    supportsUpdateObjectEncryption?: boolean;
  };
  dryRun?: boolean;
  suspend?: boolean;
  concurrency?: number;
  report?: { destination: string; all?: boolean };
  include?: string[];
  exclude?: string[];
  maxObjects?: number;
  method?: 'Auto' | 'Copy' | 'UpdateObjectEncryption';
  maxRequestsPerSecond?: number;
  storageClass?: string;
  /** Shards worked on at once, in the operator's process or as worker pods (default 1: one listing, as before shards). */
  parallelism?: number;
  /** Key ranges the plan cuts (default: parallelism); more than parallelism keeps each small. */
  shards?: number;
  /** Run the shards as pods of a batch/v1 Indexed Job in the job's namespace (workerrun.ts). */
  workers?: {
    /** A ServiceAccount of the job's namespace labelled s3encryption.dev/worker=true. */
    serviceAccountName: string;
    resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  };
  /** Where the object list comes from (absent: ListObjectsV2). */
  source?: { inventory?: { manifest: string } };
}

/**
 * Progressing, Complete, Failed and Suspended mean what they mean on a batch/v1 Job; Reconciling
 * and Stalled follow from them (conditions.ts) for kstatus readers (Flux, kpt, cli-utils).
 */
export type ConditionType = 'Progressing' | 'Complete' | 'Failed' | 'Suspended' | 'Reconciling' | 'Stalled';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type Phase = 'Pending' | 'Running' | 'Suspended' | 'Complete' | 'Failed';

export interface JobProgress {
  scanned: number;
  encrypted: number;
  alreadyEncrypted: number;
  skipped: number;
  failed: number;
  bytesEncrypted: number;
  /** For display: percent of the total once counted, else at target / listed. */
  summary?: string | null;
  /** Objects under the prefix, counted beside the run. */
  total?: number | null;
  skippedByReason?: Record<string, number> | null;
  wouldEncrypt?: number | null;
  wouldEncryptBytes?: number | null;
  /** Dry run: wouldEncrypt by method (copy, multipart-copy, update-in-place); the cost estimate is made from it. */
  wouldEncryptByMethod?: Record<string, number> | null;
  estimatedCostUSD?: string | null;
}

/**
 * Where a resumed run starts, and what for: `spec` is the fingerprint of the
 * selection it was made for (checkpoint.ts), `progress` the counters of the
 * keys up to `startAfter`, so a run resumes with the right base even after a
 * dry run showed its own counters in between.
 */
export interface JobCheckpoint {
  startAfter?: string | null;
  updatedAt?: string | null;
  /** Fingerprint of the spec fields the checkpoint was made for (checkpoint.ts). */
  spec?: string | null;
  /**
   * Set when a run reached the end of its selection: the run fingerprint (checkpoint.ts) of the spec it
   * ran for. A new generation resumes such a checkpoint only when its run fingerprint is the same.
   */
  completedFor?: string | null;
  /** Counters of the objects up to startAfter: the base of a resumed run (progress also counts finished objects after it). */
  progress?: JobProgress | null;
  /** Multipart uploads in progress; the next run aborts those a crashed run left. */
  openUploads?: { key: string; uploadId: string }[];
}

export type ShardPhase = 'Pending' | 'Running' | 'Complete' | 'Failed';

/**
 * One shard `(startAfter, endAt]` of a sharded job, with its own checkpoint.
 * Fields are omitted rather than null: status.shards is written as a whole list.
 */
export interface ShardStatus {
  index: number;
  /** Exclusive lower bound ("" = from the first key under the prefix). */
  startAfter: string;
  /** Inclusive upper bound; absent on the last shard. */
  endAt?: string;
  phase: ShardPhase;
  /** Every key of the shard up to and including this one is finished. */
  checkpoint?: string;
  /** Counters of the shard's keys up to the checkpoint: the base a resumed shard run adds to. */
  checkpointProgress?: JobProgress;
  /** Counters of every finished object of the shard; status.progress is their sum. */
  progress?: JobProgress;
  /** The shard run's multipart uploads in progress; its next run aborts those a crashed run left. */
  openUploads?: { key: string; uploadId: string }[];
  /**
   * spec.maxObjects: objects this shard's runs took from the job's budget above its
   * checkpoint (a stop left them to be looked at again); its next run gets them first.
   */
  budgetHeld?: number;
  /** Noncurrent versions in the shard's key range, once it completed. */
  noncurrentVersions?: number;
  /** Why the shard failed. */
  message?: string;
}

/** The keys the real runs of the selection failed on, kept for a retry of exactly them (retryfailed.ts). */
export interface FailedKeysStatus {
  /** Every failed key below the checkpoint, in S3's order, while they fit in FAILED_KEYS_BYTES. */
  keys: string[];
  /** More failed than fit: no key is kept, and a retry looks at the whole selection again. */
  overflow?: boolean;
}

/** What the operator did with the s3encryption.dev/retry-failed annotation. */
export interface RetryFailedStatus {
  /** The last annotation value acted on: another value asks for another retry. */
  handled: string;
  /** What that retry did, e.g. "retry of 12 failed keys: 10 encrypted, 1 still failed, 1 gone". */
  message?: string;
  time?: string;
}

export interface EncryptionJobStatus {
  observedGeneration?: number;
  phase?: Phase;
  conditions?: Condition[];
  startTime?: string;
  completionTime?: string | null;
  progress?: JobProgress;
  /** The real runs' checkpoint; a dry run never touches it. */
  checkpoint?: JobCheckpoint | null;
  /** A dry run's own checkpoint. */
  dryRunCheckpoint?: JobCheckpoint | null;
  kmsKeyArn?: string | null;
  noncurrentVersions?: number | null;
  recentFailures?: { key: string; operation: string; code: string; message: string }[] | null;
  /** The manifest (s3://...) that lists every part of the job's report so far. */
  report?: string | null;
  /** Every part of the job's report so far, one per run segment, oldest first. */
  reportParts?: string[] | null;
  /** The failed keys kept for s3encryption.dev/retry-failed (bounded; see FailedKeysStatus). */
  failedKeys?: FailedKeysStatus | null;
  /** The last s3encryption.dev/retry-failed request acted on, and what it did. */
  retryFailed?: RetryFailedStatus | null;
  /** Runs of this generation that ended on a transient error and were started again. */
  retries?: number | null;
  /**
   * Deprecated (operators before EncryptionShard objects): the shards as a list in the job. Read only to carry
   * them over into shard objects, then cleared. In memory, the shards a run works with (shardstore.ts).
   */
  shards?: ShardStatus[] | null;
  /** Shards of the current plan by phase (each is an EncryptionShard object). */
  shardCounts?: ShardCounts | null;
  /** A sharded dry run's own shards and plan: it never touches shards/shardPlan (the real runs'). */
  dryRunShards?: ShardStatus[] | null;
  dryRunShardPlan?: EncryptionJobStatus['shardPlan'];
  /** The S3 Inventory report the objects came from (spec.source.inventory), once read. */
  inventory?: { manifest: string; createdAt?: string; objects?: number } | null;
  /** What the shard plan was made for: the selection fingerprint (checkpoint.ts), and when. */
  shardPlan?: {
    spec: string;
    createdAt: string;
    estimatedObjects?: number;
    sampleRequests?: number;
    /** Shards in the plan (EncryptionShard objects). */
    shards?: number;
    /** A planning worker pod could not plan (spec.workers): the job fails with this reason. */
    failure?: { reason: string; message: string } | null;
    /** Set when every shard completed: the run fingerprint of that spec (as JobCheckpoint.completedFor). */
    completedFor?: string | null;
  } | null;
}

export interface ShardCounts {
  total: number;
  pending: number;
  running: number;
  complete: number;
  failed: number;
}

/** The fixed part of a shard: its key range and the plan it belongs to. */
export interface EncryptionShardSpec {
  /** The EncryptionJob (same namespace). */
  job: string;
  index: number;
  startAfter: string;
  endAt?: string;
  /** The selection fingerprint of the plan (the job's status.shardPlan.spec). */
  plan: string;
  dryRun?: boolean;
}

/** What the shard's runner writes; null removes a field (a merge patch). */
export interface EncryptionShardStatus {
  phase?: ShardPhase;
  checkpoint?: string | null;
  checkpointProgress?: JobProgress | null;
  progress?: JobProgress | null;
  openUploads?: { key: string; uploadId: string }[] | null;
  budgetHeld?: number | null;
  noncurrentVersions?: number | null;
  message?: string | null;
  updatedAt?: string;
}

/** One key range of a sharded job as its own object, owned by the job (shardstore.ts). */
export interface EncryptionShard extends KubernetesObject {
  spec: EncryptionShardSpec;
  status?: EncryptionShardStatus;
}

export interface EncryptionJob extends KubernetesObject {
  spec: EncryptionJobSpec;
  status?: EncryptionJobStatus;
}

export function jobKey(job: KubernetesObject): string {
  return `${job.metadata?.namespace ?? ''}/${job.metadata?.name ?? ''}`;
}
