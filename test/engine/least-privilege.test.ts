// Issue 20, scenario 11 (parts b and c), on SeaweedFS through the fault proxy,
// which answers what a least-privilege identity or a server's signing quirk
// would get from S3:
// - an identity without s3:GetBucketObjectLockConfiguration, s3:GetObjectRetention
//   and s3:GetObjectLegalHold, on a bucket WITHOUT object lock (S3 answers 403
//   before it looks for a lock configuration), must not fail objects as
//   ObjectLockUnreadable, nor be told the bucket has object lock;
// - SignatureDoesNotMatch on one object's write fails that object, not the job;
//   the job fails only when another request (HeadBucket) fails too.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine, type Outcome, type Plan } from '../../src/engine/index.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import { createBucket, putObjects, s3Client } from '../harness/context.js';
import { proxiedPlan, proxyFor, versionedBucket } from './safety-support.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await proxyFor(info.s3Endpoint);
});
afterAll(async () => {
  s3?.destroy();
  await proxy?.stop();
});

async function run(bucket: string, extra: Partial<Plan> = {}) {
  const outcomes = new Map<string, Outcome>();
  const result = await runEngine(proxiedPlan(info, proxy.url, bucket, { type: 'AES256' }, extra), {
    onOutcome: (k, o) => outcomes.set(k, o),
  });
  return { result, outcomes };
}

const LOCK_READS = new Set(['GetObjectLockConfiguration', 'GetObjectRetention', 'GetObjectLegalHold']);

/** The lock reads of `bucket` are denied, as for an identity without those three permissions. */
function denyLockReads(bucket: string): void {
  proxy.setRule((r) =>
    r.bucket === bucket && LOCK_READS.has(r.operation)
      ? { status: 403, code: 'AccessDenied', message: 'Access Denied' }
      : undefined,
  );
}

async function sse(bucket: string, key: string): Promise<string | undefined> {
  return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption;
}

describe('scenario 11: least privilege and one-request errors (SeaweedFS, fault proxy)', () => {
  it('scenario 11: a least-privilege identity (lock reads denied) on a bucket without object lock: every object is encrypted, none fails ObjectLockUnreadable', async () => {
    const bucket = await createBucket(s3, 'leastpriv');
    const keys = ['a', 'b', 'c', 'd'];
    await putObjects(s3, bucket, keys);
    denyLockReads(bucket);
    let out;
    try {
      out = await run(bucket);
    } finally {
      proxy.setRule(undefined);
    }
    expect(out.result.recentFailures).toEqual([]);
    expect(out.result.status).toBe('Complete');
    expect(out.result.counters).toMatchObject({ scanned: 4, encrypted: 4, failed: 0 });
    for (const k of keys) expect(await sse(bucket, k)).toBe('AES256');
  });

  it('scenario 11: lock reads denied on a versioned bucket (lock cannot be ruled out): the object fails, and the message says the lock could not be read, not that the bucket has it', async () => {
    const bucket = await versionedBucket(s3, 'leastprivver');
    await putObjects(s3, bucket, ['v']);
    denyLockReads(bucket);
    let out;
    try {
      out = await run(bucket);
    } finally {
      proxy.setRule(undefined);
    }
    const failed = out.outcomes.get('v');
    expect(failed).toMatchObject({ kind: 'failed', failure: { code: 'ObjectLockUnreadable' } });
    const message = (failed as { failure: { message: string } }).failure.message;
    expect(message).toMatch(/may be in a bucket with object lock/);
    expect(message).not.toMatch(/is in a bucket with object lock/);
    expect(message).toMatch(/s3:GetObjectRetention/);
    expect(await sse(bucket, 'v')).toBeUndefined();
  });

  it("scenario 11: SignatureDoesNotMatch on one object's write fails that object; the job goes on and is Complete", async () => {
    const bucket = await createBucket(s3, 'onesig');
    const keys = ['odd', 'ok-1', 'ok-2', 'ok-3'];
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && r.key === 'odd'
        ? {
            status: 403,
            code: 'SignatureDoesNotMatch',
            message: 'The request signature we calculated does not match the signature you provided.',
          }
        : undefined,
    );
    let out;
    try {
      out = await run(bucket);
    } finally {
      proxy.setRule(undefined);
    }
    expect(out.result.status, out.result.message).toBe('Complete');
    expect(out.result.counters).toMatchObject({ scanned: 4, encrypted: 3, failed: 1 });
    expect(out.outcomes.get('odd')).toMatchObject({
      kind: 'failed',
      failure: { code: 'SignatureDoesNotMatch', operation: 'CopyObject' },
    });
    for (const k of keys.slice(1)) expect(await sse(bucket, k)).toBe('AES256');
  });

  it('scenario 11: SignatureDoesNotMatch on the writes and on HeadBucket too (the credentials): the job fails with the reason', async () => {
    const bucket = await createBucket(s3, 'allsig');
    await putObjects(s3, bucket, ['a', 'b', 'c']);
    const writing = () => proxy.requests.some((x) => x.bucket === bucket && x.operation === 'CopyObject');
    proxy.setRule((r) =>
      r.bucket === bucket && (r.operation === 'CopyObject' || (r.operation === 'HeadBucket' && writing()))
        ? { status: 403, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match.' }
        : undefined,
    );
    let out;
    try {
      out = await run(bucket);
    } finally {
      proxy.setRule(undefined);
    }
    expect(out.result.status).toBe('Failed');
    expect(out.result.reason).toBe('SignatureDoesNotMatch');
    expect(out.result.retryable).toBe(false);
  });
});
