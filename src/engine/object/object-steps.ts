// One object's journey: inspect (HEAD) → decide (pure, decide.ts) → act (copy
// or UpdateObjectEncryption) → verify, looked at again when the object changed
// under us. A try returns an Outcome or throws; the run wraps each try in
// transient-retry.ts and records what comes out (run.ts). Which request an
// error came from travels with the error (`during`), not in a shared label.
import type { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_MAX_ATTEMPTS } from '../s3/clients.js';
import {
  copyInPlace,
  multipartCopyInPlace,
  retentionExpired,
  updateEncryptionInPlace,
  type CopyOptions,
  type WrittenEncryption,
} from './copy.js';
import { decide, isAtTarget, type Action } from './decide.js';
import {
  attemptsOf,
  errorCode,
  errorMessage,
  isAccessDenied,
  isNotFound,
  isNotImplemented,
  isPreconditionFailed,
  isTransient,
} from '../s3/errors.js';
import { explainHeadError, needsExplaining } from './headerror.js';
import { firstPartSize, getAclGrants, headObject, type AclGrants, type ObjectState } from './inspect.js';
import type { ResolvedTarget } from '../s3/kms.js';
import type { ListedObject } from '../keys/lister.js';
import { LockUnreadableError, type ObjectLockReader } from './objectlock.js';
import type { ObjectFailure, Outcome, Plan } from '../types.js';
import type { UploadJournal } from './uploads.js';

const DEFAULT_MULTIPART_THRESHOLD = 5 * 1024 ** 3;
const DEFAULT_PART_SIZE = 512 * 1024 ** 2;
/** Looks at one object at most this often when it keeps changing under us. */
const MAX_INSPECTIONS = 3;

type WriteMethod = 'copy' | 'multipart-copy' | 'update-in-place';
type WriteAction = Action & { kind: WriteMethod };

function isWrite(action: Action): action is WriteAction {
  return action.kind === 'copy' || action.kind === 'multipart-copy' || action.kind === 'update-in-place';
}

const operations = new WeakMap<object, string>();

/** `err`, marked as an error of `operation` unless it is marked already (the innermost one wins). */
export function tagged(err: unknown, operation: string): unknown {
  if (typeof err === 'object' && err !== null && !operations.has(err)) operations.set(err, operation);
  return err;
}

/** Runs `work`; an error it throws carries `operation`. */
export async function during<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw tagged(err, operation);
  }
}

/** The request an error came from (see `during`). */
export function operationOf(err: unknown, fallback: string): string {
  return (typeof err === 'object' && err !== null ? operations.get(err) : undefined) ?? fallback;
}

export function failure(key: string, operation: string, code: string, message: string): Outcome {
  return { kind: 'failed', failure: { key, operation, code, message } satisfies ObjectFailure };
}

/**
 * What one object's tries share (transient-retry.ts tries it again): whether a
 * write of ours may have landed (its answer was lost), so that finding the
 * object at the target afterwards counts as encrypted by this run, not as
 * already encrypted; and the last state seen, for the failure's message.
 */
export interface ObjectMemory {
  wrote?: WriteMethod;
  inspected?: ObjectState;
}

/** What one try learned that the next inspection of the same try needs. */
interface TryState {
  /** The object's ETag when a write last said it is missing (a second time is a real failure). */
  lastMissing?: string;
  /** Why UpdateObjectEncryption was refused for this object (Auto then copies). */
  uoeRefused?: string;
  /** The request after which the object was last looked at again. */
  lastChange: string;
}

/** What a write step came back with: the written encryption, or "look at the object again". */
type Acted = { kind: 'written'; written: WrittenEncryption } | { kind: 'again' } | { kind: 'fallback' } | Outcome;

export interface StepsContext {
  s3: S3Client;
  plan: Plan;
  target: ResolvedTarget;
  /** Said by the connection, else known for AWS's own endpoints; never probed. */
  updateInPlaceAvailable: boolean;
  aclMode: 'preserve' | 'skip';
  lockReader: ObjectLockReader;
  uploads: UploadJournal;
  count: (operation: string) => void;
}

export class ObjectSteps {
  /** Learned during the run: the managed key's ARN once S3 used it, ACLs unsupported, UOE unavailable. */
  target: ResolvedTarget;
  private aclMode: 'preserve' | 'skip';
  /** UpdateObjectEncryption answered NotImplemented/MethodNotAllowed: copy for the rest of the run. */
  private uoeUnavailable: string | undefined;

  constructor(private readonly ctx: StepsContext) {
    this.target = ctx.target;
    this.aclMode = ctx.aclMode;
  }

  /**
   * One try: inspect → decide → act → verify, again (at most MAX_INSPECTIONS
   * times) when the object changed after it was inspected. `signal` only keeps
   * an object from starting its write: a request already sent is never
   * aborted, since S3 may complete it anyway and the outcome would be unknown.
   * undefined: stopped before the write.
   */
  async attempt(listed: ListedObject, signal: AbortSignal, memory: ObjectMemory): Promise<Outcome | undefined> {
    const tried: TryState = { lastChange: 'HeadObject' };
    for (let inspection = 0; inspection < MAX_INSPECTIONS; inspection++) {
      const state = await this.inspect(listed.key, signal);
      if ('kind' in state) return state;
      memory.inspected = state;
      const action = this.decide(state, tried);
      const settled = this.withoutWrite(action, state, memory);
      if (settled || !isWrite(action)) return settled;
      if (signal.aborted) return undefined;
      const now = new Date();
      const acted = await this.act(state, action, now, memory, tried, signal);
      if (acted.kind === 'fallback') inspection--; // the fallback is not another inspection of a changed object
      if (acted.kind === 'again' || acted.kind === 'fallback') continue;
      if (acted.kind !== 'written') return acted;
      const check = await during('Verify', () => this.verify(state, action.kind, acted.written));
      if (typeof check === 'object') {
        tried.lastChange = 'Verify'; // a newer version is current: bring that one to the target
        continue;
      }
      if (check) return failure(listed.key, 'Verify', 'NotAtTargetAfterWrite', check);
      return this.encrypted(state, action.kind, now, tried);
    }
    return failure(
      listed.key,
      tried.lastChange,
      'ObjectKeptChanging',
      `changed during each of ${MAX_INSPECTIONS} attempts`,
    );
  }

  /** HEAD; a bare 400/403 is explained by a GET's error body (SSE-C without its key, credentials, token, clock...). */
  private async inspect(key: string, signal: AbortSignal): Promise<ObjectState | Outcome> {
    const { s3, plan } = this.ctx;
    this.ctx.count('HeadObject');
    try {
      return await headObject(s3, plan.bucket, key, signal);
    } catch (err) {
      if (isNotFound(err)) return { kind: 'skipped', reason: 'vanished', detail: 'deleted after it was listed' };
      if (!needsExplaining(err)) throw tagged(err, 'HeadObject');
      this.ctx.count('GetObject');
      const meaning = await during('GetObject', () => explainHeadError(s3, plan.bucket, key, err));
      if (meaning.kind === 'sse-c') return { kind: 'skipped', reason: 'unsupported', detail: meaning.detail };
      // A job-level meaning is judged by the run (run.ts) like any other error of this object.
      throw tagged(meaning.error, 'HeadObject');
    }
  }

  private decide(state: ObjectState, tried: TryState): Action {
    const plan = this.ctx.plan;
    return decide(state, this.target, {
      method: plan.method ?? 'Auto',
      updateInPlaceAvailable: this.ctx.updateInPlaceAvailable && !this.uoeUnavailable && !tried.uoeRefused,
      multipartThreshold: plan.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD,
      ...(plan.storageClass ? { storageClass: plan.storageClass } : {}),
    });
  }

  /** The outcome of an object that needs no write (or may not get one), else undefined. */
  private withoutWrite(action: Action, state: ObjectState, memory: ObjectMemory): Outcome | undefined {
    if (action.kind === 'already') {
      return memory.wrote
        ? { kind: 'encrypted', method: memory.wrote, bytes: state.size }
        : { kind: 'alreadyEncrypted' };
    }
    if (action.kind === 'skip') return { kind: 'skipped', reason: action.reason, detail: action.detail };
    // Only a copy rewrites the metadata; an object already at the target, or changed in place, keeps it.
    if (action.kind !== 'update-in-place' && state.missingMeta && state.missingMeta > 0) {
      return failure(
        state.key,
        'HeadObject',
        'MissingMetadata',
        `HEAD reports ${state.missingMeta} user metadata entries it cannot return as headers (x-amz-missing-meta): a copy would drop them`,
      );
    }
    if (this.ctx.plan.dryRun) return { kind: 'wouldEncrypt', method: action.kind, bytes: state.size };
    return undefined;
  }

  /** The write, and what its error means: look again (the object changed or is gone), fall back, or fail. */
  private async act(
    state: ObjectState,
    action: WriteAction,
    now: Date,
    memory: ObjectMemory,
    tried: TryState,
    signal: AbortSignal,
  ): Promise<Acted> {
    const wroteBefore = memory.wrote;
    try {
      if (action.kind === 'update-in-place') {
        memory.wrote = action.kind;
        this.ctx.count('UpdateObjectEncryption');
        const written = await during('UpdateObjectEncryption', () =>
          updateEncryptionInPlace(this.ctx.s3, state, { bucket: this.ctx.plan.bucket, target: this.target }),
        );
        return { kind: 'written', written };
      }
      const common = await this.copyOptions(state, now);
      if ('kind' in common) return common; // the lock cannot be read: this object fails
      memory.wrote = action.kind;
      return { kind: 'written', written: await this.copy(state, action.kind, common, signal) };
    } catch (err) {
      const next = await this.afterWriteError(err, state, action, tried);
      if (next === 'fail') throw err;
      // A 412 to the SDK's retry may follow our own first attempt, which landed; a missing object keeps the mark.
      if (next !== 'missing' && !(next === 'changed' && attemptsOf(err) > 1 && isPreconditionFailed(err)))
        memory.wrote = wroteBefore;
      tried.lastChange = operationOf(err, action.kind);
      return { kind: next === 'fallback' ? 'fallback' : 'again' };
    }
  }

  /** Lock state HEAD may hide, and the ACL to carry over: what a copy needs besides the object's headers. */
  private async copyOptions(state: ObjectState, now: Date): Promise<CopyOptions | Outcome> {
    const { plan } = this.ctx;
    try {
      await during('ObjectLock', () => this.ctx.lockReader.complete(state));
    } catch (err) {
      if (err instanceof LockUnreadableError)
        return failure(state.key, err.operation, 'ObjectLockUnreadable', err.message);
      throw err;
    }
    let grants: AclGrants | undefined;
    const aclRead = this.aclMode === 'preserve';
    if (aclRead) {
      this.ctx.count('GetObjectAcl');
      grants = await during('GetObjectAcl', () => this.readGrants(state.key, state.versionId));
    }
    return {
      bucket: plan.bucket,
      target: this.target,
      now,
      ...(plan.storageClass ? { storageClass: plan.storageClass } : {}),
      ...(grants ? { grants } : {}),
      aclRead: aclRead && this.aclMode === 'preserve',
    };
  }

  private async copy(
    state: ObjectState,
    method: 'copy' | 'multipart-copy',
    common: CopyOptions,
    signal: AbortSignal,
  ): Promise<WrittenEncryption> {
    const { s3, plan } = this.ctx;
    if (method === 'copy') {
      this.ctx.count('CopyObject');
      return during('CopyObject', () => copyInPlace(s3, state, common));
    }
    this.ctx.count('MultipartCopy');
    const sourcePartSize =
      state.partsCount && state.partsCount > 1
        ? await during('HeadObject', () => firstPartSize(s3, plan.bucket, state.key))
        : undefined;
    return during('UploadPartCopy', () =>
      multipartCopyInPlace(s3, state, {
        ...common,
        defaultPartSize: plan.multipartPartSize ?? DEFAULT_PART_SIZE,
        signal,
        uploads: this.ctx.uploads,
        ...(sourcePartSize ? { sourcePartSize } : {}),
      }),
    );
  }

  /**
   * 'changed': the object changed after HEAD (412/409): look again. 'missing':
   * the write says it is gone; HEAD tells (twice for the same ETag is a real
   * failure). 'fallback': Auto copies where UpdateObjectEncryption was refused.
   */
  private async afterWriteError(
    err: unknown,
    state: ObjectState,
    action: Action,
    tried: TryState,
  ): Promise<'changed' | 'missing' | 'fallback' | 'fail'> {
    if (isPreconditionFailed(err)) return 'changed';
    if (isNotFound(err)) {
      if (tried.lastMissing === state.etag) return 'fail'; // HEAD sees it, the write says it is missing
      tried.lastMissing = state.etag;
      return 'missing';
    }
    if (
      action.kind === 'update-in-place' &&
      (this.ctx.plan.method ?? 'Auto') === 'Auto' &&
      (isAccessDenied(err) || isNotImplemented(err))
    ) {
      // Refused (a key of another account, a partition or server without the API): copy this object instead.
      tried.uoeRefused = `UpdateObjectEncryption refused (${errorCode(err)}: ${errorMessage(err)}), copied instead`;
      if (isNotImplemented(err)) this.uoeUnavailable ??= tried.uoeRefused;
      this.ctx.count('UpdateObjectEncryptionFallback');
      return 'fallback';
    }
    // A refusal may be about an object that is no longer the one inspected
    // (e.g. rewritten unencrypted just before UpdateObjectEncryption): look again.
    if (!isTransient(err, DEFAULT_MAX_ATTEMPTS) && (await this.changedSince(state))) return 'changed';
    return 'fail';
  }

  private encrypted(state: ObjectState, method: WriteMethod, now: Date, tried: TryState): Outcome {
    const notes = [
      ...(tried.uoeRefused ? [tried.uoeRefused] : []),
      ...(method !== 'update-in-place' && retentionExpired(state, now)
        ? [
            `object-lock retention (${state.objectLockMode ?? 'mode unknown'}) expired on ${state.objectLockRetainUntilDate?.toISOString() ?? '?'}: not carried over`,
          ]
        : []),
    ];
    return { kind: 'encrypted', method, bytes: state.size, ...(notes.length > 0 ? { detail: notes.join('; ') } : {}) };
  }

  /** Whether the object is no longer the inspected one (another ETag, version or LastModified, or gone). */
  private async changedSince(state: ObjectState): Promise<boolean> {
    this.ctx.count('HeadObject');
    try {
      const now = await headObject(this.ctx.s3, this.ctx.plan.bucket, state.key);
      return (
        now.etag !== state.etag ||
        (now.versionId ?? '') !== (state.versionId ?? '') ||
        (now.lastModified?.getTime() ?? 0) !== (state.lastModified?.getTime() ?? 0)
      );
    } catch (err) {
      return isNotFound(err);
    }
  }

  /**
   * Checks that the write really left the object at the target: from the
   * write's response where it says, else with a HEAD. Some servers answer 200
   * to a copy that changed nothing; that must never count as encrypted.
   * 'changed': UpdateObjectEncryption re-keyed the inspected version, but
   * another one is current now.
   */
  private async verify(
    inspected: ObjectState,
    method: string,
    written: WrittenEncryption,
  ): Promise<{ changed: true } | string | undefined> {
    const key = inspected.key;
    let seen: { sse?: string; kmsKeyId?: string; bucketKeyEnabled?: boolean } = written;
    const kmsTarget = this.target.type !== 'AES256';
    // A job that names no bucket key keeps the object's; compared only where the server reported it.
    const bucketKey =
      this.target.bucketKeyEnabled ?? (kmsTarget && inspected.bucketKeyEnabled === true ? true : undefined);
    const responseSays = written.sse !== undefined && (!kmsTarget || written.kmsKeyId !== undefined);
    if (
      method === 'update-in-place' ||
      !responseSays ||
      (bucketKey !== undefined && written.bucketKeyEnabled === undefined)
    ) {
      this.ctx.count('HeadObject');
      const h = await headObject(this.ctx.s3, this.ctx.plan.bucket, key);
      if (
        method === 'update-in-place' &&
        (h.etag !== inspected.etag || (h.versionId ?? '') !== (inspected.versionId ?? ''))
      )
        return { changed: true };
      seen = h;
    }
    this.learnManagedKey(seen);
    const state = { key, size: 0, etag: '', storageClass: 'STANDARD', metadata: {}, ...seen } as ObjectState;
    const target = bucketKey !== undefined ? { ...this.target, bucketKeyEnabled: bucketKey } : this.target;
    if (isAtTarget(state, target)) return undefined;
    return `the write succeeded but the object is ${seen.sse ?? 'unencrypted'}${seen.kmsKeyId ? ` with key ${seen.kmsKeyId}` : ''}${
      bucketKey !== undefined ? ` (bucket key ${String(Boolean(seen.bucketKeyEnabled))})` : ''
    }, not ${this.target.type}${this.target.kmsKeyArn ? ` with ${this.target.kmsKeyArn}` : ''}${bucketKey !== undefined ? ` (bucket key ${String(bucketKey)})` : ''}`;
  }

  /** The AWS managed key (no key named) could not be resolved before the first write: accept what S3 used, and remember it. */
  private learnManagedKey(seen: { sse?: string; kmsKeyId?: string }): void {
    const t = this.target;
    if (t.type !== 'AES256' && !t.kmsKeyArn && !t.kmsKeyId && seen.sse === t.type && seen.kmsKeyId) {
      this.target = { ...t, kmsKeyArn: seen.kmsKeyId };
    }
  }

  private async readGrants(key: string, versionId: string | undefined): Promise<AclGrants | undefined> {
    try {
      return await getAclGrants(this.ctx.s3, this.ctx.plan.bucket, key, versionId);
    } catch (err) {
      const code = errorCode(err);
      if (code === 'NotImplemented' || code === 'AccessControlListNotSupported') {
        // The server keeps no ACLs: nothing to carry over, and no need to ask again.
        this.aclMode = 'skip';
        return undefined;
      }
      throw err;
    }
  }
}
