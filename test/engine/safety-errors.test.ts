// Issue 9 scenario 4 (review #3): an error is never counted as a skip. HEAD
// answers errors without a body, so a 400/403 looks the same for an SSE-C
// object and for an expired token; only a real SSE-C object is skipped.
// And scenario 13, part (review #22): a KMS error from the source object's
// old key fails that object, not the job. Servers: SeaweedFS (+ local-kms)
// for real SSE-C objects; answers no local server gives (expired tokens, a
// disabled source key: SeaweedFS turns KMS errors into 500s, moto does not
// check keys) are scripted by the fault proxy in front of SeaweedFS.
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine, type Outcome } from '../../src/engine/index.js';
import { createBucket, keyOf, putObjects, s3Client } from '../harness/context.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import { headOf, proxiedPlan, proxyFor, s3Error } from './safety-support.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
const target = () => ({ type: 'aws:kms' as const, kmsKeyId: keyOf(info, 'alias/test-key-a').arn });

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await proxyFor(info.s3Endpoint);
});
afterAll(async () => {
  s3.destroy();
  await proxy.stop();
});

async function run(bucket: string) {
  const outcomes = new Map<string, Outcome>();
  const result = await runEngine(proxiedPlan(info, proxy.url, bucket, target()), {
    onOutcome: (k, o) => outcomes.set(k, o),
  });
  return { result, outcomes };
}

describe('HEAD errors on SeaweedFS', () => {
  it('a real SSE-C object is skipped as unsupported (recognised by the GET error), its neighbours are encrypted', async () => {
    const bucket = await createBucket(s3, 'ssec');
    const customerKey = Buffer.alloc(32, 9);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'secret',
        Body: 'customer keyed',
        SSECustomerAlgorithm: 'AES256',
        SSECustomerKey: customerKey.toString('base64'),
        SSECustomerKeyMD5: createHash('md5').update(customerKey).digest('base64'),
      }),
    );
    await putObjects(s3, bucket, ['plain-1', 'plain-2']);
    const { result, outcomes } = await run(bucket);
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 3, encrypted: 2, skipped: 1, failed: 0 });
    expect(result.skippedByReason.unsupported).toBe(1);
    expect(outcomes.get('secret')).toMatchObject({ kind: 'skipped', reason: 'unsupported' });
    expect((outcomes.get('secret') as { detail: string }).detail).toMatch(/SSE-C/);
  });

  it('expired session token (HEAD 400 without a body, GET says ExpiredToken): the job fails with the reason, nothing is skipped', async () => {
    const bucket = await createBucket(s3, 'expired');
    await putObjects(s3, bucket, ['a', 'b', 'c']);
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && (r.operation === 'HeadObject' || r.operation === 'GetObject'),
      answer: (r) =>
        r.operation === 'HeadObject'
          ? { status: 400 }
          : s3Error(400, 'ExpiredToken', 'The provided token has expired.'),
    });
    try {
      const { result } = await run(bucket);
      expect(result.status).toBe('Failed');
      expect(result.reason).toBe('ExpiredToken');
      expect(result.counters.skipped).toBe(0);
      expect(result.skippedByReason.unsupported).toBe(0);
    } finally {
      unhook();
    }
  });

  it('bad signature (HEAD 403 without a body, GET says SignatureDoesNotMatch): the job fails with the reason', async () => {
    const bucket = await createBucket(s3, 'badsig');
    await putObjects(s3, bucket, ['a', 'b']);
    // A wrong secret fails every request once the run is going: HeadBucket too, which the engine asks
    // before it takes a signature mismatch for the job's (scenario 11: one request's own mismatch is not).
    const started = () => proxy.requests.some((x) => x.bucket === bucket && x.operation === 'HeadObject');
    const unhook = proxy.hook({
      match: (r) =>
        r.bucket === bucket &&
        (r.operation === 'HeadObject' || r.operation === 'GetObject' || (r.operation === 'HeadBucket' && started())),
      answer: (r) =>
        r.operation === 'HeadObject' || r.operation === 'HeadBucket'
          ? { status: 403 }
          : s3Error(
              403,
              'SignatureDoesNotMatch',
              'The request signature we calculated does not match the signature you provided.',
            ),
    });
    try {
      const { result } = await run(bucket);
      expect(result.status).toBe('Failed');
      expect(result.reason).toBe('SignatureDoesNotMatch');
      expect(result.counters.skipped).toBe(0);
    } finally {
      unhook();
    }
  });

  it('a HEAD 400 that is not SSE-C (the GET works) fails that object with a reason; the rest of the job goes on', async () => {
    const bucket = await createBucket(s3, 'head400');
    await putObjects(s3, bucket, ['odd', 'ok-1', 'ok-2']);
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject' && r.key === 'odd',
      answer: () => ({ status: 400 }),
    });
    try {
      const { result, outcomes } = await run(bucket);
      expect(result.status).toBe('Complete');
      expect(result.counters).toMatchObject({ scanned: 3, encrypted: 2, failed: 1, skipped: 0 });
      expect(outcomes.get('odd')).toMatchObject({ kind: 'failed', failure: { operation: 'HeadObject' } });
    } finally {
      unhook();
    }
  });
});

describe('KMS errors of the source object’s key (fault proxy on SeaweedFS)', () => {
  it('KMS.DisabledException on one object’s copy fails that object; the target key is fine, so the job goes on', async () => {
    const bucket = await createBucket(s3, 'srckey');
    await putObjects(s3, bucket, ['old-key', 'fine-1', 'fine-2']);
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'CopyObject' && r.key === 'old-key',
      answer: () => s3Error(400, 'KMS.DisabledException', 'arn:aws:kms:us-east-1:111122223333:key/old is disabled.'),
    });
    try {
      const { result, outcomes } = await run(bucket);
      expect(result.status).toBe('Complete');
      expect(result.counters).toMatchObject({ scanned: 3, encrypted: 2, failed: 1 });
      expect(outcomes.get('old-key')).toMatchObject({
        kind: 'failed',
        failure: { code: 'KMS.DisabledException', operation: 'CopyObject' },
      });
      expect((await headOf(s3, bucket, 'fine-1')).ServerSideEncryption).toBe('aws:kms');
    } finally {
      unhook();
    }
  });
});
