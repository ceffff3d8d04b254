// Issue 9 scenarios 8, 9 and 10 (review #8, #11, #10): UpdateObjectEncryption
// keeps each object's bucket-key setting; Auto copies an object whose
// UpdateObjectEncryption is refused, and says why; archived objects are
// skipped as archived, or re-keyed in place without a restore where the API
// is available. Server: SeaweedFS (+ local-kms) behind the UpdateObjectEncryption
// stand-in (test/harness/uoe-standin.ts), with the fault proxy in front for
// answers the stand-in does not give (refusals, archive tiers on HEAD).
import { PutObjectCommand, S3Client, UpdateObjectEncryptionCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine, type Outcome, type Plan } from '../../src/engine/index.js';
import { createBucket, keyOf, putObjects, s3Client } from '../harness/context.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import { startUpdateObjectEncryptionStandIn, type UpdateObjectEncryptionStandIn } from '../harness/uoe-standin.js';
import { headOf, proxiedPlan, proxyFor, s3Error } from './safety-support.js';

const info = inject('seaweed');
let direct: S3Client;
let via: S3Client;
let standIn: UpdateObjectEncryptionStandIn;
/** In front of the stand-in. */
let proxy: FaultProxy;
/** In front of SeaweedFS itself (no UpdateObjectEncryption). */
let plainProxy: FaultProxy;
const keyA = () => keyOf(info, 'alias/test-key-a');
const keyB = () => keyOf(info, 'alias/test-key-b');

beforeAll(async () => {
  direct = s3Client(info);
  standIn = await startUpdateObjectEncryptionStandIn(info);
  via = s3Client({ ...info, s3Endpoint: standIn.endpoint });
  proxy = await proxyFor(standIn.endpoint);
  plainProxy = await proxyFor(info.s3Endpoint);
});
afterAll(async () => {
  direct.destroy();
  via.destroy();
  await proxy.stop();
  await plainProxy.stop();
  await standIn.stop();
});

async function run(p: Plan) {
  const outcomes = new Map<string, Outcome>();
  const result = await runEngine(p, { onOutcome: (k, o) => outcomes.set(k, o) });
  return { result, outcomes };
}

const uoePlan = (bucket: string, extra: Partial<Plan> = {}) =>
  proxiedPlan(
    info,
    proxy.url,
    bucket,
    { type: 'aws:kms', kmsKeyId: keyA().arn },
    { method: 'Auto', ...extra },
    { supportsUpdateObjectEncryption: true },
  );

const wire = (bucket: string, operation: string, key?: string) =>
  proxy.requests.filter((r) => r.bucket === bucket && r.operation === operation && (key === undefined || r.key === key))
    .length;

function expectKeyA(h: { ServerSideEncryption?: string; SSEKMSKeyId?: string }): void {
  expect(h.ServerSideEncryption).toBe('aws:kms');
  expect([keyA().arn, keyA().keyId]).toContain(h.SSEKMSKeyId);
}

describe('UpdateObjectEncryption keeps the bucket key (scenario 8)', () => {
  it('an object with the bucket key on keeps it when the job does not name one', async () => {
    const bucket = await createBucket(direct, 'uoe-bk');
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'bk', Body: 'x', ServerSideEncryption: 'AES256' }));
    await via.send(
      new UpdateObjectEncryptionCommand({
        Bucket: bucket,
        Key: 'bk',
        ObjectEncryption: { SSEKMS: { KMSKeyArn: keyB().arn, BucketKeyEnabled: true } },
      }),
    );
    expect((await headOf(via, bucket, 'bk')).BucketKeyEnabled).toBe(true);
    const { result, outcomes } = await run(uoePlan(bucket));
    expect(result.recentFailures).toEqual([]);
    expect(outcomes.get('bk')).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
    const h = await headOf(via, bucket, 'bk');
    expectKeyA(h);
    expect(h.BucketKeyEnabled).toBe(true);
  });
});

describe('Auto falls back to a copy when UpdateObjectEncryption is refused (scenario 9)', () => {
  it('AccessDenied (e.g. a key of another account): each object is copied, with the reason', async () => {
    const bucket = await createBucket(direct, 'uoe-denied');
    const keys = ['d/1', 'd/2', 'd/3'];
    await putObjects(direct, bucket, keys, { ServerSideEncryption: 'AES256' });
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'UpdateObjectEncryption',
      answer: () => s3Error(403, 'AccessDenied', 'User is not authorized to use the KMS key of another account'),
    });
    try {
      const { result, outcomes } = await run(uoePlan(bucket));
      expect(result.status).toBe('Complete');
      expect(result.counters).toMatchObject({ scanned: 3, encrypted: 3, failed: 0 });
      expect(result.requests.UpdateObjectEncryptionFallback).toBe(3);
      for (const key of keys) {
        expect(outcomes.get(key)).toMatchObject({ kind: 'encrypted', method: 'copy' });
        expect((outcomes.get(key) as { detail?: string }).detail).toMatch(
          /UpdateObjectEncryption refused \(AccessDenied/,
        );
        expectKeyA(await headOf(direct, bucket, key));
      }
    } finally {
      unhook();
    }
  });

  it('NotImplemented: the first refusal is remembered for the run; the rest are copied without asking again', async () => {
    const bucket = await createBucket(direct, 'uoe-501');
    const keys = ['n/1', 'n/2', 'n/3', 'n/4'];
    await putObjects(direct, bucket, keys, { ServerSideEncryption: 'AES256' });
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'UpdateObjectEncryption',
      answer: () =>
        s3Error(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented'),
    });
    try {
      const { result } = await run(uoePlan(bucket, { concurrency: 1 }));
      expect(result.status).toBe('Complete');
      expect(result.counters).toMatchObject({ scanned: 4, encrypted: 4, failed: 0 });
      expect(wire(bucket, 'UpdateObjectEncryption')).toBe(1);
      for (const key of keys) expectKeyA(await headOf(direct, bucket, key));
    } finally {
      unhook();
    }
  });
});

describe('archive tiers (scenario 10)', () => {
  it('Intelligent-Tiering Deep Archive Access (x-amz-archive-status on HEAD) is skipped as archived, not copied', async () => {
    const bucket = await createBucket(direct, 'it-archive');
    await putObjects(direct, bucket, ['cold', 'warm']);
    const unhook = plainProxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject' && r.key === 'cold',
      editHeaders: (h) => {
        h['x-amz-storage-class'] = 'INTELLIGENT_TIERING';
        h['x-amz-archive-status'] = 'DEEP_ARCHIVE_ACCESS';
      },
    });
    try {
      const p = proxiedPlan(info, plainProxy.url, bucket, { type: 'aws:kms', kmsKeyId: keyA().arn });
      const { result, outcomes } = await run(p);
      expect(result.counters).toMatchObject({ scanned: 2, encrypted: 1, skipped: 1, failed: 0 });
      expect(result.skippedByReason.archived).toBe(1);
      expect(outcomes.get('cold')).toMatchObject({ kind: 'skipped', reason: 'archived' });
      expect(
        plainProxy.requests.some((r) => r.bucket === bucket && r.key === 'cold' && r.operation === 'CopyObject'),
      ).toBe(false);
    } finally {
      unhook();
    }
  });

  it('GLACIER and Deep Archive Access objects eligible for UpdateObjectEncryption are re-keyed in place, no restore', async () => {
    const bucket = await createBucket(direct, 'glacier-uoe');
    await putObjects(direct, bucket, ['glacier', 'it-deep'], { ServerSideEncryption: 'AES256' });
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject',
      editHeaders: (h, r) => {
        if (r.key === 'glacier') h['x-amz-storage-class'] = 'GLACIER';
        else {
          h['x-amz-storage-class'] = 'INTELLIGENT_TIERING';
          h['x-amz-archive-status'] = 'DEEP_ARCHIVE_ACCESS';
        }
      },
    });
    try {
      const { result, outcomes } = await run(uoePlan(bucket));
      expect(result.recentFailures).toEqual([]);
      expect(outcomes.get('glacier')).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
      expect(outcomes.get('it-deep')).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
      expect(wire(bucket, 'CopyObject')).toBe(0);
      expectKeyA(await headOf(via, bucket, 'glacier'));
    } finally {
      unhook();
    }
  });
});
