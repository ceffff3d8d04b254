// Finishing work is not undone by bookkeeping, and a listing never ends silently
// (issue 9, scenario 13; review #14, #24), on SeaweedFS (+ local-kms) through the fault
// proxy: counting noncurrent versions that is denied, flaky or broken leaves a Complete
// run with a warning (never Failed, never an endless loop); a ListObjectsV2 page that
// says "truncated" without a continuation token fails the run instead of passing a
// partial listing off as the whole prefix.
import { PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client, within } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), ...extra },
  );
}

async function versionedBucket(): Promise<string> {
  const bucket = await createBucket(s3, 'vers');
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  for (const k of ['v/1', 'v/2', 'v/3']) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'first' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'second' }));
  }
  return bucket;
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 13 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('bookkeeping after the work (SeaweedFS through the fault proxy)', () => {
  it('ListObjectVersions denied (no s3:ListBucketVersions): Complete with a warning, not Failed', async () => {
    const bucket = await versionedBucket();
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'ListObjectVersions'
        ? { status: 403, code: 'AccessDenied', message: 'Access Denied' }
        : undefined,
    );
    const result = await runEngine(plan(bucket));
    proxy.setRule(undefined);
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 3, encrypted: 3, failed: 0 });
    expect(result.noncurrentVersions).toBeUndefined();
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings?.[0]).toMatch(/noncurrent versions were not counted.*AccessDenied/);
  }, 120_000);

  it("a flaky ListObjectVersions (503s beyond the SDK's own retries) is tried again: Complete with the count, no warning", async () => {
    const bucket = await versionedBucket();
    let refused = 0;
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'ListObjectVersions' && refused++ < 10
        ? { status: 503, code: 'ServiceUnavailable' }
        : undefined,
    );
    const result = await runEngine(plan(bucket));
    proxy.setRule(undefined);
    expect(refused).toBeGreaterThan(10);
    expect(result.status).toBe('Complete');
    expect(result.warnings).toBeUndefined();
    // At least the 3 first versions; SeaweedFS's in-place copy in a versioned bucket adds a version per key.
    expect(result.noncurrentVersions).toBeGreaterThanOrEqual(3);
  }, 180_000);

  it('ListObjectVersions truncated without NextKeyMarker: a warning, not an endless loop', async () => {
    const bucket = await versionedBucket();
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'ListObjectVersions'
        ? {
            rewriteBody: (b) =>
              b
                .replace(/<IsTruncated>\w+<\/IsTruncated>/, '<IsTruncated>true</IsTruncated>')
                .replace(/<Next(KeyMarker|VersionIdMarker)>[^<]*<\/Next\1>/g, ''),
          }
        : undefined,
    );
    const result = await within(runEngine(plan(bucket)), 60_000);
    proxy.setRule(undefined);
    expect(result, 'the run never returned (the version listing looped)').not.toBe('hung');
    if (result === 'hung') return;
    expect(result.status).toBe('Complete');
    expect(result.warnings?.[0]).toMatch(/NextKeyMarker/);
  }, 120_000);

  it('ListObjectsV2 truncated without NextContinuationToken: the run fails with ListingTruncated, not Complete on a partial listing', async () => {
    const bucket = await createBucket(s3, 'trunc');
    await putObjects(s3, bucket, ['a/1', 'a/2', 'a/3']);
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'ListObjectsV2'
        ? {
            rewriteBody: (b) =>
              b
                .replace(/<IsTruncated>\w+<\/IsTruncated>/, '<IsTruncated>true</IsTruncated>')
                .replace(/<NextContinuationToken>[^<]*<\/NextContinuationToken>/, ''),
          }
        : undefined,
    );
    const result = await runEngine(plan(bucket));
    proxy.setRule(undefined);
    expect(result.status).toBe('Failed');
    expect(result.reason).toBe('ListingTruncated');
    expect(result.message).toContain(bucket);
    expect(result.message).toContain('a/3');
  }, 120_000);
});
