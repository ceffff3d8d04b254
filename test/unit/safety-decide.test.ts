// Issue 9, per-object decisions without a server: archive tiers (#10), expired
// retention (#6), the conditions of a single copy (#1, #2), SSE-C recognised by
// its error (#4), KMS and precondition error classes (#13, #1).
import { describe, expect, it } from 'vitest';
import { copyConditions, copySource, retentionExpired } from '../../src/engine/object/copy.js';
import { decide, type DecideOptions } from '../../src/engine/object/decide.js';
import { isJobLevel, isKmsUnusable, isPreconditionFailed, isTransient } from '../../src/engine/s3/errors.js';
import { isSseCRefusal } from '../../src/engine/object/headerror.js';
import type { ObjectState } from '../../src/engine/object/inspect.js';
import type { ResolvedTarget } from '../../src/engine/s3/kms.js';

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/aaaa';
const kms: ResolvedTarget = { type: 'aws:kms', kmsKeyId: 'alias/a', kmsKeyArn: ARN, kmsKeyBareId: 'aaaa' };
const copyOnly: DecideOptions = { method: 'Auto', updateInPlaceAvailable: false, multipartThreshold: 100 };
const auto: DecideOptions = { ...copyOnly, updateInPlaceAvailable: true };
const obj = (o: Partial<ObjectState> = {}): ObjectState => ({
  key: 'k',
  size: 10,
  etag: '"e"',
  storageClass: 'STANDARD',
  metadata: {},
  ...o,
});

describe('archive tiers (issue 9 #10)', () => {
  it('skips Intelligent-Tiering objects in an archive tier as archived, not as a copy that would fail', () => {
    for (const archiveStatus of ['ARCHIVE_ACCESS', 'DEEP_ARCHIVE_ACCESS']) {
      const action = decide(obj({ storageClass: 'INTELLIGENT_TIERING', archiveStatus }), kms, copyOnly);
      expect(action).toMatchObject({ kind: 'skip', reason: 'archived' });
      expect(action.kind === 'skip' && action.detail).toContain(archiveStatus);
    }
    // Frequent/infrequent tiers (no archive status) are copied as usual; so is a finished restore.
    expect(decide(obj({ storageClass: 'INTELLIGENT_TIERING' }), kms, copyOnly).kind).toBe('copy');
    const restored = obj({
      storageClass: 'INTELLIGENT_TIERING',
      archiveStatus: 'ARCHIVE_ACCESS',
      restore: 'ongoing-request="false", expiry-date="x"',
    });
    expect(decide(restored, kms, copyOnly).kind).toBe('copy');
  });
  it('re-keys archived objects with UpdateObjectEncryption where it is available: no restore needed', () => {
    expect(decide(obj({ storageClass: 'GLACIER', sse: 'AES256' }), kms, auto).kind).toBe('update-in-place');
    expect(decide(obj({ storageClass: 'DEEP_ARCHIVE', sse: 'aws:kms', kmsKeyId: 'other' }), kms, auto).kind).toBe(
      'update-in-place',
    );
    const it = obj({ storageClass: 'INTELLIGENT_TIERING', archiveStatus: 'DEEP_ARCHIVE_ACCESS', sse: 'AES256' });
    expect(decide(it, kms, auto).kind).toBe('update-in-place');
    expect(decide(it, kms, { ...auto, method: 'UpdateObjectEncryption' }).kind).toBe('update-in-place');
    // Not eligible (unencrypted), or UpdateObjectEncryption not available: still archived.
    expect(decide(obj({ storageClass: 'GLACIER' }), kms, auto)).toMatchObject({ kind: 'skip', reason: 'archived' });
    expect(decide(obj({ storageClass: 'GLACIER', sse: 'AES256' }), kms, copyOnly)).toMatchObject({
      kind: 'skip',
      reason: 'archived',
    });
    expect(decide(obj({ storageClass: 'GLACIER', sse: 'AES256' }), kms, { ...auto, method: 'Copy' })).toMatchObject({
      kind: 'skip',
      reason: 'archived',
    });
  });
});

describe('expired retention (issue 9 #6)', () => {
  it('is expired once its date has passed; a retention in force is not', () => {
    const now = new Date('2026-12-02T12:00:00Z');
    expect(
      retentionExpired(
        obj({ objectLockMode: 'GOVERNANCE', objectLockRetainUntilDate: new Date('2026-12-01T00:00:00Z') }),
        now,
      ),
    ).toBe(true);
    expect(
      retentionExpired(
        obj({ objectLockMode: 'GOVERNANCE', objectLockRetainUntilDate: new Date('2027-01-01T00:00:00Z') }),
        now,
      ),
    ).toBe(false);
    expect(retentionExpired(obj(), now)).toBe(false);
  });
  it('an expired retention does not keep an object from UpdateObjectEncryption', () => {
    const past = obj({
      sse: 'AES256',
      objectLockMode: 'COMPLIANCE',
      objectLockRetainUntilDate: new Date(Date.now() - 1000),
    });
    expect(decide(past, kms, auto).kind).toBe('update-in-place');
  });
});

describe('single copy conditions (issue 9 #1, #2)', () => {
  const lastModified = new Date('2026-12-02T12:00:00Z');
  it('never pins the copy source to the inspected version (its conditions would always pass)', () => {
    const s = obj({ key: 'a b/c', versionId: 'v1', lastModified });
    expect(copySource('bkt', s)).toBe('bkt/a%20b/c');
    expect(copySource('bkt', s, true)).toBe('bkt/a%20b/c?versionId=v1');
  });
  it('conditions the write on the current ETag (destination If-Match) and LastModified, without if-match on the source', () => {
    // AWS: copy-source-if-match true + copy-source-if-unmodified-since false = 200 (copies); so not both.
    expect(copyConditions(obj({ lastModified }))).toEqual({
      IfMatch: '"e"',
      CopySourceIfUnmodifiedSince: lastModified,
    });
    expect(copyConditions(obj())).toEqual({ IfMatch: '"e"', CopySourceIfMatch: '"e"' });
  });
});

describe('error classes (issue 9 #1, #4, #13)', () => {
  const s3err = (name: string, status: number, message = '') =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  it('409 ConditionalRequestConflict means the object changed, like 412', () => {
    expect(isPreconditionFailed(s3err('ConditionalRequestConflict', 409))).toBe(true);
    expect(isPreconditionFailed(s3err('PreconditionFailed', 412))).toBe(true);
    expect(isPreconditionFailed(s3err('OperationAborted', 409))).toBe(false);
  });
  it('recognises S3’s SSE-C refusal, and nothing else, as SSE-C', () => {
    const aws =
      'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.';
    expect(isSseCRefusal(s3err('InvalidRequest', 400, aws))).toBe(true);
    expect(isSseCRefusal(s3err('ExpiredToken', 400, 'The provided token has expired.'))).toBe(false);
    expect(isSseCRefusal(s3err('InvalidRequest', 400, 'Missing required header for this request: Content-MD5'))).toBe(
      false,
    );
    expect(isSseCRefusal(s3err('BadRequest', 400, ''))).toBe(false);
  });
  it('expired or invalid tokens and clock skew end the job; KMS errors alone do not', () => {
    for (const code of ['ExpiredToken', 'InvalidToken', 'RequestTimeTooSkewed', 'SignatureDoesNotMatch'])
      expect(isJobLevel(s3err(code, 400)), code).toBe(true);
    expect(isJobLevel(s3err('KMS.DisabledException', 400))).toBe(false);
    expect(isKmsUnusable(s3err('KMS.DisabledException', 400))).toBe(true);
  });
  it('KMS throttling passed on by S3 is transient', () => {
    expect(isTransient(s3err('KMS.ThrottlingException', 400), 3)).toBe(true);
  });
});
