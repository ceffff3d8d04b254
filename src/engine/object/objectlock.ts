// Object-lock state a copy must carry over, even when HEAD does not show it.
// HEAD returns the retention only with s3:GetObjectRetention and the legal hold
// only with s3:GetObjectLegalHold; without them it is silent, and a copy would
// make an unlocked current version. In a bucket with object lock, whatever HEAD
// did not show is asked for explicitly, and a refusal fails the object.
//
// Whether the bucket has object lock: GetObjectLockConfiguration says, once per
// run. A least-privilege identity may be denied it, and then also be denied
// GetObjectRetention: S3 checks permissions before it looks for a lock
// configuration, so a bucket WITHOUT lock then answers 403, not its "no object
// lock" 400, and HEAD's silence proves nothing either. What still tells, and
// honestly: object lock needs versioning, and a bucket with object lock can
// never suspend it. So a bucket whose versioning we read as not Enabled has no
// lock, whatever was denied. Only when versioning is Enabled (or unreadable) and
// both the configuration and the object's lock are denied do we not know; then
// the object fails (ObjectLockUnreadable) with a message that says we could not
// tell, never that the bucket has lock.
import {
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { errorCode, errorMessage, httpStatus } from '../s3/errors.js';
import type { ObjectState } from './inspect.js';

/** The object's lock state cannot be read: copying it could drop a retention or legal hold. */
export class LockUnreadableError extends Error {
  constructor(
    readonly operation: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LockUnreadableError';
  }
}

/** No lock configuration on the bucket, or none on the object: nothing to carry over. */
function isNone(err: unknown): boolean {
  const code = errorCode(err);
  return (
    code === 'ObjectLockConfigurationNotFoundError' ||
    code === 'NoSuchObjectLockConfiguration' ||
    (httpStatus(err) === 404 && code !== 'NoSuchKey' && code !== 'NoSuchBucket')
  );
}

/** S3's answer to a retention/legal-hold call on a bucket without object lock. */
function bucketHasNoLock(err: unknown): boolean {
  return errorCode(err) === 'InvalidRequest' && /object lock/i.test(errorMessage(err));
}

export class ObjectLockReader {
  /** undefined: not asked yet. 'unknown': the bucket's configuration could not be read, so every object is asked. */
  private bucketLock: Promise<boolean | 'unknown'> | undefined;
  /** Why the configuration could not be read (for the failure's message). */
  private configError: string | undefined;

  /**
   * `versioningEnabled`: whether GetBucketVersioning said Enabled; undefined
   * when it could not be read.
   */
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly count: (operation: string) => void,
    private readonly versioningEnabled?: boolean,
  ) {}

  /** Asked once per run. */
  private lockEnabled(): Promise<boolean | 'unknown'> {
    this.bucketLock ??= (async () => {
      this.count('GetObjectLockConfiguration');
      try {
        const out = await this.s3.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
        return out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
      } catch (err) {
        if (isNone(err)) return false;
        // Object lock needs versioning, and a locked bucket can never suspend it (see the top of this file).
        if (this.versioningEnabled === false) return false;
        // Denied or not implemented: cannot tell, so ask each object (a bucket without lock says so).
        this.configError = `${errorCode(err)}: ${errorMessage(err)}`;
        return 'unknown';
      }
    })();
    return this.bucketLock;
  }

  /** Fills the retention and legal hold HEAD did not show; throws LockUnreadableError when they cannot be read. */
  async complete(state: ObjectState, signal?: AbortSignal): Promise<void> {
    const enabled = await this.lockEnabled();
    if (enabled === false) return;
    const versionId = state.versionId && state.versionId !== 'null' ? state.versionId : undefined;
    const where =
      enabled === true
        ? `s3://${this.bucket}/${state.key} is in a bucket with object lock and`
        : `s3://${this.bucket}/${state.key} may be in a bucket with object lock (its configuration could not be read: ${this.configError ?? '?'}; versioning ${this.versioningEnabled === undefined ? 'could not be read' : 'is Enabled'}), and`;
    const ask = { where, versionId, ...(signal ? { signal } : {}) };
    if (!state.objectLockMode) {
      const out = await this.read('GetObjectRetention', 'retention', state.key, ask, (input, options) =>
        this.s3.send(new GetObjectRetentionCommand(input), options),
      );
      if (out === 'noLock') return;
      if (out?.Retention?.Mode) state.objectLockMode = out.Retention.Mode;
      if (out?.Retention?.RetainUntilDate) state.objectLockRetainUntilDate = out.Retention.RetainUntilDate;
    }
    if (!state.objectLockLegalHold) {
      const out = await this.read('GetObjectLegalHold', 'legal hold', state.key, ask, (input, options) =>
        this.s3.send(new GetObjectLegalHoldCommand(input), options),
      );
      if (out === 'noLock') return;
      if (out?.LegalHold?.Status) state.objectLockLegalHold = out.LegalHold.Status;
    }
  }

  /**
   * One of the object's lock reads: its answer, undefined when the object has none, 'noLock'
   * when S3 says the bucket has no object lock (remembered for the run); a refusal throws.
   */
  private async read<T>(
    operation: 'GetObjectRetention' | 'GetObjectLegalHold',
    what: string,
    key: string,
    ask: { where: string; versionId: string | undefined; signal?: AbortSignal },
    send: (
      input: { Bucket: string; Key: string; VersionId: string | undefined },
      options: { abortSignal?: AbortSignal },
    ) => Promise<T>,
  ): Promise<T | 'noLock' | undefined> {
    this.count(operation);
    try {
      return await send(
        { Bucket: this.bucket, Key: key, VersionId: ask.versionId },
        ask.signal ? { abortSignal: ask.signal } : {},
      );
    } catch (err) {
      if (bucketHasNoLock(err)) {
        this.bucketLock = Promise.resolve(false);
        return 'noLock';
      }
      if (isNone(err)) return undefined;
      throw new LockUnreadableError(
        operation,
        errorCode(err),
        `${ask.where} its ${what} cannot be read (${errorCode(err)}: ${errorMessage(err)}): ` +
          `a copy could drop it; allow s3:${operation} (or s3:GetBucketObjectLockConfiguration)`,
      );
    }
  }
}
