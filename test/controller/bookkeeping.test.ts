// Finishing work is not undone by bookkeeping, at the operator's level (issue 9,
// scenario 13; review #14): a versioned bucket whose ListObjectVersions is denied
// (fault proxy in front of SeaweedFS, as for an identity without
// s3:ListBucketVersions) ends Complete, with the warning in the Complete condition's
// message and a CompletedWithWarning event; not Retrying, not Failed.
import { PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  jobYaml,
  kubectl,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 3 });
  namespace = await createNamespace('bookkeep');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('counting noncurrent versions is denied (operator, SeaweedFS through the fault proxy)', () => {
  it('the job ends Complete with the warning in its condition and an event', async () => {
    const bucket = await createBucket(s3, 'bookkeep');
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    for (const k of ['v/1', 'v/2']) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'first' }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'second' }));
    }
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'ListObjectVersions'
        ? { status: 403, code: 'AccessDenied', message: 'Access Denied' }
        : undefined,
    );
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name: 'vers',
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        s3: { ...info, s3Endpoint: proxy.url },
      }),
    });
    const waited = await kubectl(['wait', '--for=condition=Complete', '--timeout=90s', '-n', namespace, 'ej/vers'], {
      allowFailure: true,
    });
    const job = await getJob(namespace, 'vers');
    expect(waited.code, `${JSON.stringify(job.status)}\n${operator.logTail(30)}`).toBe(0);
    expect(job.status?.phase).toBe('Complete');
    expect(job.status?.progress).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    const complete = job.status?.conditions?.find((c) => c.type === 'Complete');
    expect(complete?.message).toMatch(/warning: noncurrent versions were not counted.*AccessDenied/);
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')?.status).toBe('False');
    const reasons = await waitUntil(
      'the CompletedWithWarning event',
      async () => {
        const events = await kubectl([
          'get',
          'events',
          '-n',
          namespace,
          '--field-selector',
          'involvedObject.name=vers',
          '-o',
          'jsonpath={.items[*].reason}',
        ]);
        return events.stdout.includes('CompletedWithWarning') ? events.stdout : undefined;
      },
      30_000,
    );
    expect(reasons).not.toContain('Retrying');
    proxy.setRule(undefined);
  }, 180_000);
});
