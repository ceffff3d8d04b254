// Where a run starts: a checkpoint belongs to the spec that made it. A key
// below the checkpoint is finished only for the objects and the treatment the
// spec of that time asked for; widen the selection or change the target and
// those keys must be looked at again. Pure, so every case is unit-tested.
import { createHash } from 'node:crypto';
import type { EncryptionJob, EncryptionJobSpec, JobCheckpoint, JobProgress } from './api.js';

/**
 * The version of the fingerprints below, written in front of them. A change of
 * what they hash is a new version, never an edit of this one: the checkpoints
 * an older operator saved are then read with the function of their version
 * (sameSelection), so an upgrade neither resets every job nor keeps a
 * checkpoint it cannot vouch for.
 */
export const FINGERPRINT_VERSION = 'v2';

/** JSON with object keys in order: the same spec hashes the same whatever order its fields came in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

const hash = (value: unknown): string => createHash('sha256').update(canonical(value)).digest('hex').slice(0, 16);

/** The fields of version 1 (operators before fingerprints had versions): everything but the source. */
function selectionFieldsV1(spec: EncryptionJobSpec): Record<string, unknown> {
  const conn = spec.connection ?? {};
  return {
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
}

/** Version 1, kept only to read the checkpoints it wrote: an unversioned hash in that field order. */
export function selectionFingerprintV1(spec: EncryptionJobSpec): string {
  return createHash('sha256')
    .update(JSON.stringify(selectionFieldsV1(spec)))
    .digest('hex')
    .slice(0, 16);
}

/**
 * A fingerprint of the spec fields that decide which objects are eligible and
 * what is done to them, the source of the keys included (an inventory lists
 * other keys than another inventory or a LIST). Concurrency, suspend, request
 * rate, maxObjects, credentials and the report do not change what a finished
 * key means, so they are left out: changing them keeps the checkpoint.
 */
export function selectionFingerprint(spec: EncryptionJobSpec): string {
  const source = spec.source?.inventory?.manifest ?? '';
  return `${FINGERPRINT_VERSION}:${hash({ ...selectionFieldsV1(spec), source })}`;
}

/** Spec fields that say how fast, when and with what report a job runs, not what it does. */
const PACE_FIELDS = ['concurrency', 'maxRequestsPerSecond', 'suspend', 'maxObjects', 'report', 'dryRun'] as const;

/**
 * A fingerprint of the whole spec but its pace fields: what a finished run was
 * for. After a run reached the end of its selection, a new generation resumes
 * its checkpoint only when this is the same (the user changed only the pace);
 * any other edit (credentials, region, parallelism, workers...) is a request
 * to look again, so the listing starts over.
 */
export function runFingerprint(spec: EncryptionJobSpec): string {
  const rest: Record<string, unknown> = { ...spec };
  for (const f of PACE_FIELDS) delete rest[f];
  return `${FINGERPRINT_VERSION}:${hash(rest)}`;
}

/**
 * Why a checkpoint (or shard plan) saved for selection `stored` does not hold
 * for the job's current spec; undefined when it does. A version-1 fingerprint
 * (no version in front) is compared with the version-1 function, and its
 * source, which it did not hash, with the report the run that saved it read
 * (status.inventory; none for a LIST). A version this operator does not know
 * (a downgrade) never holds.
 */
export function selectionChange(stored: string, job: EncryptionJob): string | undefined {
  const changed = 'the selection or the target changed since the checkpoint was saved: listing from the beginning';
  if (stored.startsWith(`${FINGERPRINT_VERSION}:`))
    return stored === selectionFingerprint(job.spec) ? undefined : changed;
  if (/^[0-9a-f]{16}$/.test(stored)) {
    if (stored !== selectionFingerprintV1(job.spec)) return changed;
    const readFrom = job.status?.inventory?.manifest ?? '';
    return readFrom === (job.spec.source?.inventory?.manifest ?? '') ? undefined : changed;
  }
  return `the checkpoint was saved by another version of the operator (fingerprint ${stored.split(':')[0]}): listing from the beginning`;
}

/**
 * Why the checkpoints of a run that reached the end of its selection cannot be
 * resumed by this generation; undefined when they can (or the run did not
 * finish). `completedFor` is what the finished run recorded. A checkpoint of
 * `savedBy` another fingerprint version (an older operator, which recorded no
 * completedFor) counts as finished when the job was Complete for an earlier
 * generation, and then nothing tells what changed: it starts over.
 */
export function finishedRunChange(
  completedFor: string | null | undefined,
  savedBy: string,
  job: EncryptionJob,
): string | undefined {
  const status = job.status ?? {};
  if (completedFor) {
    if (completedFor === runFingerprint(job.spec)) return undefined;
    return 'the job had finished and the spec changed in more than concurrency, maxRequestsPerSecond, suspend, maxObjects or report: listing from the beginning';
  }
  const earlier = status.observedGeneration !== job.metadata?.generation;
  const older = !savedBy.startsWith(`${FINGERPRINT_VERSION}:`);
  if (older && earlier && status.phase === 'Complete')
    return 'the job had finished under an earlier operator version, which did not record what for: listing from the beginning';
  return undefined;
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
 * it was made for the same selection, and a checkpoint at the end of a
 * finished run only when the spec changed in its pace alone (finishedRunChange).
 * A checkpoint written before fingerprints existed is trusted only when the
 * status is for the current generation (the spec that made it is the current one).
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
  const sameGeneration = status.observedGeneration === job.metadata?.generation;
  const restart = cp.spec
    ? (selectionChange(cp.spec, job) ?? finishedRunChange(cp.completedFor, cp.spec, job))
    : sameGeneration
      ? undefined
      : 'the selection or the target changed since the checkpoint was saved: listing from the beginning';
  if (restart) return result(undefined, ZERO_PROGRESS, restart);
  // Checkpoints written before they carried their counters: the job's counters were theirs.
  const base = cp.progress ?? (status.progress ? checkpointCounters(status.progress) : ZERO_PROGRESS);
  return result(cp.startAfter, base);
}
