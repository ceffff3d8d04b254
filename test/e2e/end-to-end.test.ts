// The whole product once, as a user drives it: the CRD installed with kubectl,
// the operator running as its own process with its least-privilege identity,
// a job applied with kubectl, `kubectl wait --for=condition=Complete`, and
// every object HEADed afterwards. Runs on SeaweedFS + local-kms (real SSE-KMS).
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  jobYaml,
  keyOf,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  type OperatorProcess,
} from '../harness/context.js';

describe('EncryptionJob end to end on SeaweedFS', () => {
  const s3info = inject('seaweed');
  let s3: S3Client;
  let namespace: string;
  let operator: OperatorProcess;

  beforeAll(async () => {
    s3 = s3Client(s3info);
    namespace = await createNamespace('e2e');
    await createCredentialsSecret(namespace, s3info);
    operator = await startOperator({ watchNamespace: namespace });
  });

  afterAll(async () => {
    await operator?.stop();
    s3?.destroy();
  });

  it('encrypts every object under the prefix with the job key and reports Complete', async () => {
    const bucket = await createBucket(s3, 'e2e');
    const keys = Array.from({ length: 50 }, (_, i) => `logs/2024/${String(i).padStart(3, '0')}.json`);
    await putObjects(s3, bucket, keys, { ContentType: 'application/json' });
    await putObjects(s3, bucket, ['other/untouched.txt']);
    const key = keyOf(s3info, 'alias/test-key-a');

    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name: 'encrypt-logs',
        namespace,
        bucket,
        prefix: 'logs/',
        encryption: { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' },
        s3: s3info,
      }),
    });
    const wait = await kubectl(
      ['wait', '--for=condition=Complete', '--timeout=90s', '-n', namespace, 'encryptionjob/encrypt-logs'],
      { allowFailure: true },
    );
    if (wait.code !== 0) {
      const job = await getJob(namespace, 'encrypt-logs');
      throw new Error(`job did not complete: ${JSON.stringify(job.status)}\noperator log:\n${operator.logTail(60)}`);
    }

    const job = await getJob(namespace, 'encrypt-logs');
    expect(job.status?.phase).toBe('Complete');
    expect(job.status?.progress).toMatchObject({
      scanned: 50,
      encrypted: 50,
      alreadyEncrypted: 0,
      skipped: 0,
      failed: 0,
    });
    expect(job.status?.checkpoint?.startAfter).toBe(keys[keys.length - 1]);

    for (const k of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
      expect(head.ServerSideEncryption, k).toBe('aws:kms');
      expect([key.arn, key.keyId], k).toContain(head.SSEKMSKeyId);
      expect(head.ContentType, k).toBe('application/json');
    }
    const other = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'other/untouched.txt' }));
    expect(other.SSEKMSKeyId).toBeUndefined();

    // kubectl shows it the way a user reads it.
    const table = await kubectl(['get', 'ej', '-n', namespace]);
    expect(table.stdout).toMatch(/NAME\s+STATUS\s+PROGRESS\s+ENCRYPTED\s+FAILED\s+AGE/);
    expect(table.stdout).toMatch(/encrypt-logs\s+Complete\s+50\/50\s+50\s+0\s/);
  });
});
