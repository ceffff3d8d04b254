// Review #23 (with issue 9 scenario 13): a job that names no KMS key means the
// AWS managed key aws/s3, which AWS creates on first use, so DescribeKey of
// alias/aws/s3 can answer NotFound before the first write. Verification must
// then accept the key S3 reports for the written object, not fail every one.
// Server: moto, with fault proxies scripting what AWS does and moto does not:
// KMS answers NotFound for alias/aws/s3, and HEAD reports the managed key's
// ARN (moto returns no key id for aws:kms without one: moto-sse-kms-key-id-as-sent).
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine } from '../../src/engine/index.js';
import { createBucket, s3Client } from '../harness/context.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { proxiedPlan, proxyFor } from './safety-support.js';

const info = inject('moto');
const MANAGED = 'arn:aws:kms:us-east-1:123456789012:key/0000aaaa-managed-aws-s3';
let s3: S3Client;
let s3Proxy: FaultProxy;
let kmsProxy: FaultProxy;

beforeAll(async () => {
  s3 = s3Client(info);
  s3Proxy = await proxyFor(info.s3Endpoint);
  kmsProxy = await startFaultProxy({ target: info.kmsEndpoint, protocol: 'kms', seed: 1 });
});
afterAll(async () => {
  s3.destroy();
  await s3Proxy.stop();
  await kmsProxy.stop();
});

describe('the AWS managed key before its first use (moto)', () => {
  it('verification accepts the key S3 used and remembers it', async () => {
    const bucket = await createBucket(s3, 'managed');
    for (const key of ['a', 'b']) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    kmsProxy.hook({
      match: (r) => r.operation === 'DescribeKey',
      answer: () => ({
        status: 400,
        headers: { 'content-type': 'application/x-amz-json-1.1' },
        body: JSON.stringify({ __type: 'NotFoundException', message: "Alias 'alias/aws/s3' is not found." }),
      }),
    });
    s3Proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'HeadObject',
      editHeaders: (h) => {
        if (h['x-amz-server-side-encryption'] === 'aws:kms') h['x-amz-server-side-encryption-aws-kms-key-id'] = MANAGED;
      },
    });
    const plan = proxiedPlan(
      info,
      s3Proxy.url,
      bucket,
      { type: 'aws:kms' },
      { concurrency: 1 },
      { kmsEndpoint: kmsProxy.url },
    );
    const result = await runEngine(plan);
    expect(result.recentFailures).toEqual([]);
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    expect(result.resolvedKmsKeyArn).toBe(MANAGED);
  });
});
