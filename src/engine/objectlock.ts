// Object-lock state a copy must carry over, even when HEAD does not show it.
// HEAD returns the retention only with s3:GetObjectRetention and the legal hold
// only with s3:GetObjectLegalHold; without them it is silent, and a copy would
// make an unlocked current version. In a bucket with object lock, whatever HEAD
// did not show is asked for explicitly, and a refusal fails the object.
import {
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { errorCode, errorMessage, httpStatus } from './errors.js';
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

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly count: (operation: string) => void,
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
        // Denied or not implemented: cannot tell, so ask each object (a bucket without lock says so).
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
    const where = `s3://${this.bucket}/${state.key}`;
    if (!state.objectLockMode) {
      this.count('GetObjectRetention');
      try {
        const out = await this.s3.send(
          new GetObjectRetentionCommand({ Bucket: this.bucket, Key: state.key, VersionId: versionId }),
          {
            abortSignal: signal,
          },
        );
        if (out.Retention?.Mode) state.objectLockMode = out.Retention.Mode;
        if (out.Retention?.RetainUntilDate) state.objectLockRetainUntilDate = out.Retention.RetainUntilDate;
      } catch (err) {
        if (bucketHasNoLock(err)) {
          this.bucketLock = Promise.resolve(false);
          return;
        }
        if (!isNone(err)) {
          throw new LockUnreadableError(
            'GetObjectRetention',
            errorCode(err),
            `${where} is in a bucket with object lock and its retention cannot be read (${errorCode(err)}: ${errorMessage(err)}): ` +
              'a copy would drop it; allow s3:GetObjectRetention',
          );
        }
      }
    }
    if (!state.objectLockLegalHold) {
      this.count('GetObjectLegalHold');
      try {
        const out = await this.s3.send(
          new GetObjectLegalHoldCommand({ Bucket: this.bucket, Key: state.key, VersionId: versionId }),
          {
            abortSignal: signal,
          },
        );
        if (out.LegalHold?.Status) state.objectLockLegalHold = out.LegalHold.Status;
      } catch (err) {
        if (bucketHasNoLock(err)) {
          this.bucketLock = Promise.resolve(false);
          return;
        }
        if (!isNone(err)) {
          throw new LockUnreadableError(
            'GetObjectLegalHold',
            errorCode(err),
            `${where} is in a bucket with object lock and its legal hold cannot be read (${errorCode(err)}: ${errorMessage(err)}): ` +
              'a copy would drop it; allow s3:GetObjectLegalHold',
          );
        }
      }
    }
  }
}
