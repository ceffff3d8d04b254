// The engine's public vocabulary. The engine knows nothing of Kubernetes: the
// controller and the CLI both translate their inputs into a Plan.

export type SseType = 'AES256' | 'aws:kms' | 'aws:kms:dsse';
export const SSE_TYPES: readonly SseType[] = ['AES256', 'aws:kms', 'aws:kms:dsse'];

export type Method = 'Auto' | 'Copy' | 'UpdateObjectEncryption';

export interface TargetEncryption {
  type: SseType;
  /** key id, alias/NAME or key ARN; only with aws:kms*. Absent = the AWS managed key (aws/s3). */
  kmsKeyId?: string;
  /** Absent = keep whatever the object has and do not compare it. */
  bucketKeyEnabled?: boolean;
}

export interface Connection {
  region?: string;
  endpoint?: string;
  kmsEndpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** An IAM role to assume (with the credentials above, or the default chain) for every S3 and KMS call. */
  roleArn?: string;
  /** ExternalId for the role's trust policy. */
  externalId?: string;
  /** STS endpoint for assuming the role (S3-compatible setups; default: AWS). */
  stsEndpoint?: string;
  /** Whether the endpoint implements S3 UpdateObjectEncryption. Default: true for AWS, false for a custom endpoint. */
  supportsUpdateObjectEncryption?: boolean;
}

export interface Plan {
  bucket: string;
  prefix: string;
  target: TargetEncryption;
  connection: Connection;
  include?: string[];
  exclude?: string[];
  maxObjects?: number;
  dryRun?: boolean;
  method?: Method;
  concurrency?: number;
  maxRequestsPerSecond?: number;
  /** Storage class to give copied objects instead of keeping theirs. */
  storageClass?: string;
  /** Objects larger than this are copied part by part (S3's single-copy limit is 5 GiB). */
  multipartThreshold?: number;
  /** Part size when the source was not uploaded in parts. */
  multipartPartSize?: number;
  /** Resume after this key: every key <= it is already finished. */
  startAfter?: string;
  /**
   * Last key of this run (inclusive, S3's byte order): a shard `(startAfter, endAt]`
   * of the prefix. Absent: to the end of the prefix.
   */
  endAt?: string;
  /**
   * The shard's own lower bound (exclusive), when startAfter is a checkpoint inside
   * it: noncurrent versions are counted over the shard `(shardStartAfter, endAt]`,
   * not the whole prefix. Only meaningful with endAt or for the last shard.
   */
  shardStartAfter?: string;
  /**
   * s3://BUCKET/KEY of an S3 Inventory manifest.json (CSV): the run's objects come
   * from that report instead of ListObjectsV2, read with this plan's connection.
   * Objects written after the report was made are not looked at.
   */
  inventoryManifest?: string;
  /**
   * Look at exactly these keys instead of listing (a retry of a finished run's
   * failures): each is HEADed like a listed object; one that is gone is skipped
   * as vanished. Sorted and deduplicated by the engine; keys outside the prefix
   * or the shard `(startAfter, endAt]` are ignored. Not with inventoryManifest.
   */
  keys?: string[];
  /** How many failures to keep in the result (all are counted). */
  maxFailuresKept?: number;
  /**
   * Multipart uploads an earlier run of this job recorded (Progress.openUploads)
   * and may have left open (it crashed): this run aborts them before any work.
   */
  abandonedUploads?: OpenUpload[];
  /**
   * Multipart uploads open at once (objects above the multipart threshold being copied); more wait
   * for one to end. The controller bounds them so a shard's record of its open uploads stays small.
   * Default: no bound beyond the run's concurrency.
   */
  maxOpenUploads?: number;
}

/** A multipart upload of ours that is not completed or aborted yet. */
export interface OpenUpload {
  key: string;
  uploadId: string;
}

export type SkipReason = 'archived' | 'filtered' | 'vanished' | 'unsupported';

export type Outcome =
  /** detail: what the user should know (a fallback from UpdateObjectEncryption, an expired retention not carried over). */
  | { kind: 'encrypted'; method: 'copy' | 'multipart-copy' | 'update-in-place'; bytes: number; detail?: string }
  | { kind: 'alreadyEncrypted' }
  | { kind: 'skipped'; reason: SkipReason; detail?: string }
  | { kind: 'failed'; failure: ObjectFailure }
  /** Dry run: what a real run would have done. */
  | { kind: 'wouldEncrypt'; method: 'copy' | 'multipart-copy' | 'update-in-place'; bytes: number };

export interface ObjectFailure {
  key: string;
  operation: string;
  code: string;
  message: string;
}

export interface Counters {
  scanned: number;
  encrypted: number;
  alreadyEncrypted: number;
  skipped: number;
  failed: number;
  bytesEncrypted: number;
}

export interface Progress {
  /** Every object this run finished so far, in whatever order they finished. */
  counters: Counters;
  skippedByReason: Record<SkipReason, number>;
  /** Every key <= startAfter is finished. Undefined until the first object is finished. */
  checkpoint?: string;
  /**
   * The objects at or below the checkpoint: what to persist with it as the base
   * of a resumed run. Finished objects above the checkpoint are in `counters`
   * but not here: a resumed run looks at them again and counts them then.
   */
  committed: {
    counters: Counters;
    skippedByReason: Record<SkipReason, number>;
    /** Dry run: what a real run would change of these objects (kept with the checkpoint like the counters). */
    planned: { objects: number; bytes: number; byMethod: Record<string, number> };
  };
  /** Multipart uploads in progress: persist them with the checkpoint (Plan.abandonedUploads). */
  openUploads: OpenUpload[];
  /** Dry run: objects and bytes a real run would change, by method. */
  planned: { objects: number; bytes: number; byMethod: Record<string, number> };
  requests: Record<string, number>;
  recentFailures: ObjectFailure[];
  /** Objects being worked on right now. */
  inFlight: number;
  /** Objects this run will look at (listed after the checkpoint), once counted. */
  total?: number;
  /** The inventory the objects come from (Plan.inventoryManifest), once read. */
  inventory?: { manifest: string; createdAt?: string; objects: number };
}

export type ResultStatus = 'Complete' | 'Failed' | 'Stopped';

export interface RunResult extends Progress {
  status: ResultStatus;
  /** Job-level failure: why the run gave up. */
  reason?: string;
  message?: string;
  /**
   * Failed for a reason that may pass (the network, a server error that
   * outlasted the SDK's retries), not one that needs a person: a controller may
   * run the job again from its checkpoint.
   */
  retryable?: boolean;
  resolvedKmsKeyArn?: string;
  /** Noncurrent versions left as they are (versioned buckets): counted, not changed. */
  noncurrentVersions?: number;
  /** Dry run: the requests a real run would make and what they would cost. */
  estimate?: CostEstimate;
  /** Bookkeeping that failed after the work was done (e.g. counting noncurrent versions); the status stands. */
  warnings?: string[];
  /** Uploads left by an earlier run (Plan.abandonedUploads) that this run aborted. */
  abortedUploads?: number;
}

export interface CostEstimate {
  requests: { list: number; head: number; copy: number; uploadPartCopy: number; updateInPlace: number; kms: number };
  /** At us-east-1 list prices (S3 Standard requests, KMS requests); bucket keys make KMS far cheaper. */
  usd: number;
}

export interface ProgressListener {
  (progress: Progress): void;
}

export function emptyCounters(): Counters {
  return { scanned: 0, encrypted: 0, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 0 };
}

export function addCounters(a: Counters, b: Counters): Counters {
  return {
    scanned: a.scanned + b.scanned,
    encrypted: a.encrypted + b.encrypted,
    alreadyEncrypted: a.alreadyEncrypted + b.alreadyEncrypted,
    skipped: a.skipped + b.skipped,
    failed: a.failed + b.failed,
    bytesEncrypted: a.bytesEncrypted + b.bytesEncrypted,
  };
}
