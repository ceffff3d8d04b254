// Where a run starts: a checkpoint belongs to the spec that made it. A key
// below the checkpoint is finished only for the objects and the treatment the
// spec of that time asked for; widen the selection or change the target and
// those keys must be looked at again. Pure, so every case is unit-tested.
import { createHash } from 'node:crypto';
import type { EncryptionJob, EncryptionJobSpec, JobCheckpoint, JobProgress } from './api.js';

/**
 * A fingerprint of the spec fields that decide which objects are eligible and
 * what is done to them. Concurrency, suspend, request rate, maxObjects,
 * credentials and the report do not change what a finished key means, so they
 * are left out: changing them keeps the checkpoint.
 */
export function selectionFingerprint(spec: EncryptionJobSpec): string {
  const conn = spec.connection ?? {};
  const relevant = {
    bucket: spec.bucket,
    prefix: spec.prefix ?? '',
    endpoint: conn.endpoint ?? '',
    type: spec.encryption.type,
    kmsKeyId: spec.encryption.kmsKeyId ?? '',
    bucketKeyEnabled: spec.encryption.bucketKeyEnabled ?? null,
    include: spec.include ?? [],
    exclude: spec.exclude ?? [],
    method: spec.method ?? 'Auto',
    supportsUpdateObjectEncryption: conn.supportsUpdateObjectEncryption ?? null,
    storageClass: spec.storageClass ?? '',
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 16);
}

export const ZERO_PROGRESS: JobProgress = {
  scanned: 0,
  encrypted: 0,
  alreadyEncrypted: 0,
  skipped: 0,
  failed: 0,
  bytesEncrypted: 0,
};

/** The counters a checkpoint carries: those that add up over resumed runs. */
export function checkpointCounters(p: JobProgress): JobProgress {
  const out: JobProgress = {
    scanned: p.scanned,
    encrypted: p.encrypted,
    alreadyEncrypted: p.alreadyEncrypted,
    skipped: p.skipped,
    failed: p.failed,
    bytesEncrypted: p.bytesEncrypted,
  };
  if (p.skippedByReason) out.skippedByReason = { ...p.skippedByReason };
  if (typeof p.wouldEncrypt === 'number') out.wouldEncrypt = p.wouldEncrypt;
  if (typeof p.wouldEncryptBytes === 'number') out.wouldEncryptBytes = p.wouldEncryptBytes;
  if (p.wouldEncryptByMethod) out.wouldEncryptByMethod = { ...p.wouldEncryptByMethod };
  return out;
}

export interface ResumePoint {
  /** Start the listing after this key (undefined: from the beginning). */
  startAfter: string | undefined;
  /** Counters of the keys up to startAfter. */
  base: JobProgress;
  /** Fingerprint of the spec this run works for; stored with every checkpoint it saves. */
  fingerprint: string;
  /** Why the listing starts over although a checkpoint exists (for the condition message), if it does. */
  restartReason?: string;
  /** maxObjects left for this run (maxObjects counts over the checkpoint's life), if the spec sets one. */
  maxObjects?: number;
}

/**
 * Decides where the run of `job` (its current spec) starts. A real run resumes
 * only a real run's checkpoint and a dry run only a dry run's, each only when
 * it was made for the same selection. A checkpoint written before fingerprints
 * existed is trusted only when the status is for the current generation (the
 * spec that made it is the current one).
 */
export function resumePoint(job: EncryptionJob): ResumePoint {
  const spec = job.spec;
  const dryRun = spec.dryRun ?? false;
  const status = job.status ?? {};
  const fingerprint = selectionFingerprint(spec);
  const cp: JobCheckpoint | null | undefined = dryRun ? status.dryRunCheckpoint : status.checkpoint;
  const result = (startAfter: string | undefined, base: JobProgress, restartReason?: string): ResumePoint => {
    const out: ResumePoint = { startAfter, base, fingerprint };
    if (restartReason) out.restartReason = restartReason;
    if (spec.maxObjects !== undefined) out.maxObjects = spec.maxObjects - base.scanned;
    return out;
  };
  if (!cp?.startAfter) return result(undefined, ZERO_PROGRESS);
  const sameSpec =
    cp.spec !== undefined ? cp.spec === fingerprint : status.observedGeneration === job.metadata?.generation;
  if (!sameSpec) {
    return result(
      undefined,
      ZERO_PROGRESS,
      'the selection or the target changed since the checkpoint was saved: listing from the beginning',
    );
  }
  // Checkpoints written before they carried their counters: the job's counters were theirs.
  const base = cp.progress ?? (status.progress ? checkpointCounters(status.progress) : ZERO_PROGRESS);
  return result(cp.startAfter, base);
}
