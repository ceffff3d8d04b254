// What to do with one object: a pure function of what HEAD said and the target,
// so every branch is unit-tested without a server.
import type { ObjectState } from './inspect.js';
import type { ResolvedTarget } from '../s3/kms.js';
import type { Method, SkipReason } from '../types.js';

export type Action =
  | { kind: 'already' }
  | { kind: 'skip'; reason: SkipReason; detail: string }
  | { kind: 'update-in-place' }
  | { kind: 'copy' }
  | { kind: 'multipart-copy' };

export interface DecideOptions {
  method: Method;
  /** The endpoint implements UpdateObjectEncryption (never probed: told by the job or known for AWS). */
  updateInPlaceAvailable: boolean;
  multipartThreshold: number;
  storageClass?: string;
  now?: Date;
}

const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

function sameKey(state: ObjectState, target: ResolvedTarget): boolean {
  if (!state.kmsKeyId) return false;
  if (!target.kmsKeyArn) return false;
  return state.kmsKeyId === target.kmsKeyArn || state.kmsKeyId === target.kmsKeyBareId;
}

export function isAtTarget(state: ObjectState, target: ResolvedTarget): boolean {
  if (state.sse !== target.type) return false;
  if (target.type === 'AES256') return true;
  if (!sameKey(state, target)) return false;
  if (target.bucketKeyEnabled !== undefined && Boolean(state.bucketKeyEnabled) !== target.bucketKeyEnabled)
    return false;
  return true;
}

/** Intelligent-Tiering's archive tiers: like GLACIER / DEEP_ARCHIVE, not readable until restored. */
const ARCHIVE_TIERS = new Set(['ARCHIVE_ACCESS', 'DEEP_ARCHIVE_ACCESS']);

export function isArchived(state: ObjectState): boolean {
  const archived =
    ARCHIVE_CLASSES.has(state.storageClass) ||
    (state.archiveStatus !== undefined && ARCHIVE_TIERS.has(state.archiveStatus));
  if (!archived) return false;
  // A finished restore looks like: ongoing-request="false", expiry-date="..."
  return !(state.restore && /ongoing-request="false"/.test(state.restore));
}

function archivedDetail(state: ObjectState): string {
  const where =
    state.archiveStatus && ARCHIVE_TIERS.has(state.archiveStatus)
      ? `${state.storageClass} ${state.archiveStatus}`
      : state.storageClass;
  return `${where} object not restored: restore it first`;
}

function hasLock(state: ObjectState, now: Date): boolean {
  if (state.objectLockLegalHold === 'ON') return true;
  return Boolean(state.objectLockRetainUntilDate && state.objectLockRetainUntilDate > now);
}

export function canUpdateInPlace(state: ObjectState, target: ResolvedTarget, now: Date): boolean {
  return (
    target.type === 'aws:kms' &&
    Boolean(target.kmsKeyArn) &&
    (state.sse === 'AES256' || state.sse === 'aws:kms') &&
    !hasLock(state, now)
  );
}

export function decide(state: ObjectState, target: ResolvedTarget, opts: DecideOptions): Action {
  const storageClassChange = opts.storageClass !== undefined && opts.storageClass !== state.storageClass;
  if (isAtTarget(state, target) && !storageClassChange) return { kind: 'already' };
  if (state.sseCustomerAlgorithm) {
    return {
      kind: 'skip',
      reason: 'unsupported',
      detail: 'encrypted with a customer-provided key (SSE-C): cannot be read without it',
    };
  }
  const now = opts.now ?? new Date();
  // Never send PUT ?encryption to an endpoint not known to implement it, whatever the method.
  const inPlaceAllowed =
    !storageClassChange &&
    opts.updateInPlaceAvailable &&
    (opts.method === 'UpdateObjectEncryption' || opts.method === 'Auto');
  // Before the archive check: UpdateObjectEncryption reads no data, so archived
  // objects are re-keyed where they are, without a restore.
  if (inPlaceAllowed && canUpdateInPlace(state, target, now)) return { kind: 'update-in-place' };
  if (isArchived(state)) return { kind: 'skip', reason: 'archived', detail: archivedDetail(state) };
  if (opts.method === 'UpdateObjectEncryption') {
    return {
      kind: 'skip',
      reason: 'unsupported',
      detail:
        'method UpdateObjectEncryption: object is not eligible (unencrypted, DSSE, locked, or target is not SSE-KMS with a key ARN)',
    };
  }
  return state.size > opts.multipartThreshold ? { kind: 'multipart-copy' } : { kind: 'copy' };
}
