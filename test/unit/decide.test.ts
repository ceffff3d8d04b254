import { describe, expect, it } from 'vitest';
import { decide, isAtTarget, type DecideOptions } from '../../src/engine/object/decide.js';
import type { ObjectState } from '../../src/engine/object/inspect.js';
import type { ResolvedTarget } from '../../src/engine/s3/kms.js';

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/aaaa';
const kms: ResolvedTarget = { type: 'aws:kms', kmsKeyId: 'alias/a', kmsKeyArn: ARN, kmsKeyBareId: 'aaaa' };
const opts: DecideOptions = { method: 'Auto', updateInPlaceAvailable: false, multipartThreshold: 100 };
const obj = (o: Partial<ObjectState> = {}): ObjectState => ({
  key: 'k',
  size: 10,
  etag: '"e"',
  storageClass: 'STANDARD',
  metadata: {},
  ...o,
});

describe('decide', () => {
  it('leaves an object that already has the target key alone, by ARN or bare id', () => {
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: ARN }), kms, opts)).toEqual({ kind: 'already' });
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: 'aaaa' }), kms, opts)).toEqual({ kind: 'already' });
  });
  it('copies an object under another key, or unencrypted, or SSE-S3', () => {
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: 'other' }), kms, opts).kind).toBe('copy');
    expect(decide(obj(), kms, opts).kind).toBe('copy');
    expect(decide(obj({ sse: 'AES256' }), kms, opts).kind).toBe('copy');
  });
  it('compares the bucket key only when the job names it', () => {
    const withBk = { ...kms, bucketKeyEnabled: true };
    expect(isAtTarget(obj({ sse: 'aws:kms', kmsKeyId: ARN }), withBk)).toBe(false);
    expect(isAtTarget(obj({ sse: 'aws:kms', kmsKeyId: ARN, bucketKeyEnabled: true }), withBk)).toBe(true);
  });
  it('SSE-S3 target: any AES256 object is done', () => {
    expect(decide(obj({ sse: 'AES256' }), { type: 'AES256' }, opts)).toEqual({ kind: 'already' });
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: ARN }), { type: 'AES256' }, opts).kind).toBe('copy');
  });
  it('skips archived objects unless restored', () => {
    expect(decide(obj({ storageClass: 'GLACIER' }), kms, opts)).toMatchObject({ kind: 'skip', reason: 'archived' });
    expect(decide(obj({ storageClass: 'DEEP_ARCHIVE', restore: 'ongoing-request="true"' }), kms, opts)).toMatchObject({
      kind: 'skip',
      reason: 'archived',
    });
    expect(
      decide(obj({ storageClass: 'GLACIER', restore: 'ongoing-request="false", expiry-date="x"' }), kms, opts).kind,
    ).toBe('copy');
    expect(decide(obj({ storageClass: 'GLACIER_IR' }), kms, opts).kind).toBe('copy');
  });
  it('uses multipart copy above the threshold', () => {
    expect(decide(obj({ size: 101 }), kms, opts).kind).toBe('multipart-copy');
    expect(decide(obj({ size: 100 }), kms, opts).kind).toBe('copy');
  });
  it('updates in place only where eligible and allowed', () => {
    const auto = { ...opts, updateInPlaceAvailable: true };
    expect(decide(obj({ sse: 'AES256' }), kms, auto).kind).toBe('update-in-place');
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: 'other' }), kms, auto).kind).toBe('update-in-place');
    expect(decide(obj(), kms, auto).kind).toBe('copy'); // unencrypted
    expect(decide(obj({ sse: 'aws:kms:dsse' }), kms, auto).kind).toBe('copy');
    expect(decide(obj({ sse: 'AES256', objectLockLegalHold: 'ON' }), kms, auto).kind).toBe('copy');
    expect(
      decide(obj({ sse: 'AES256', objectLockRetainUntilDate: new Date(Date.now() + 86400e3) }), kms, auto).kind,
    ).toBe('copy');
    expect(decide(obj({ sse: 'AES256' }), { type: 'aws:kms' }, auto).kind).toBe('copy'); // no ARN
    // Never on an endpoint that has not said it implements the API.
    expect(decide(obj({ sse: 'AES256' }), kms, opts).kind).toBe('copy');
    // Method UpdateObjectEncryption never falls back to a copy.
    expect(decide(obj(), kms, { ...opts, method: 'UpdateObjectEncryption' })).toMatchObject({
      kind: 'skip',
      reason: 'unsupported',
    });
    expect(decide(obj({ sse: 'AES256' }), kms, { ...auto, method: 'Copy' }).kind).toBe('copy');
  });
  it('refuses SSE-C objects instead of guessing', () => {
    expect(decide(obj({ sseCustomerAlgorithm: 'AES256' }), kms, opts)).toMatchObject({
      kind: 'skip',
      reason: 'unsupported',
    });
  });
  it('a storage-class override rewrites objects already at the target encryption', () => {
    expect(decide(obj({ sse: 'aws:kms', kmsKeyId: ARN }), kms, { ...opts, storageClass: 'STANDARD_IA' }).kind).toBe(
      'copy',
    );
  });
});
