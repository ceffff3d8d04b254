// A job whose credentials stop working mid-run ends Failed with the reason, and
// the objects the refusal failed are not buried under its checkpoint: once the
// key works again and the user edits the spec (docs/runbooks/job-failed.md), the
// resumed run does them, and the job ends Complete with nothing failed, every
// object at the target and none written twice. Operator on the real apiserver,
// SeaweedFS behind the fault proxy (which answers as S3 does for a revoked key).
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  type OperatorProcess,
} from '../harness/context.js';
import { applyJob, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

interface Job {
  status?: {
    progress?: Record<string, number>;
    checkpoint?: { startAfter?: string; progress?: Record<string, number> } | null;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

const waitFor = (name: string, condition: string): Promise<Job> =>
  waitForCondition<Job>(namespace, name, condition, { logs: () => operator.logTail(40) });

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 12 });
  namespace = await createNamespace('fatalres');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('a job-level failure mid-run, then the fix (operator, SeaweedFS through the fault proxy)', () => {
  it('credentials refused from the 100th copy on: Failed InvalidAccessKeyId; after the fix and a spec edit: Complete, 0 failed, every object at the target once', async () => {
    const bucket = await createBucket(s3, 'fatalres');
    const keys = Array.from({ length: 300 }, (_, i) => `data/${String(i).padStart(4, '0')}.json`);
    await putObjects(s3, bucket, keys);
    let accepted = 0;
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && ++accepted >= 100
        ? {
            status: 403,
            code: 'InvalidAccessKeyId',
            message: 'The AWS Access Key Id you provided does not exist in our records.',
          }
        : undefined,
    );
    try {
      await applyJob({
        name: 'revoked',
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        s3: { ...info, s3Endpoint: proxy.url },
        concurrency: 4,
      });
      const failed = await waitFor('revoked', 'Failed');
      expect(failed.status?.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('InvalidAccessKeyId');
      // The run says what it saw fail, but its checkpoint's counters hold no failure: the refused
      // objects are above the checkpoint, for the next run.
      expect(failed.status?.progress?.failed ?? 0).toBeGreaterThan(0);
      expect(failed.status?.checkpoint?.progress?.failed ?? 0).toBe(0);
      const mark = failed.status?.checkpoint?.startAfter ?? '';
      const refused = proxy.requests.filter(
        (r) => r.bucket === bucket && r.operation === 'CopyObject' && r.status === 403 && r.key !== undefined,
      );
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r.key! > mark, `${r.key} under the checkpoint ${mark}`).toBe(true);
    } finally {
      proxy.setRule(undefined);
    }

    // The key works again; any spec change starts a new run from the checkpoint.
    await kubectl(['patch', 'ej', 'revoked', '-n', namespace, '--type=merge', '-p', '{"spec":{"concurrency":5}}']);
    const done = await waitFor('revoked', 'Complete');
    expect(done.status?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('Completed');
    expect(done.status?.progress).toMatchObject({ scanned: keys.length, failed: 0 });
    expect((done.status?.progress?.encrypted ?? 0) + (done.status?.progress?.alreadyEncrypted ?? 0)).toBe(keys.length);
    const wrong: string[] = [];
    for (const key of keys) {
      const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      if (h.ServerSideEncryption !== 'AES256') wrong.push(key);
    }
    expect(wrong).toEqual([]);
    const written = new Map<string, number>();
    for (const r of proxy.requests)
      if (r.bucket === bucket && r.operation === 'CopyObject' && r.key && r.upstreamStatus === 200)
        written.set(r.key, (written.get(r.key) ?? 0) + 1);
    expect(
      [...written].filter(([, n]) => n > 1),
      'keys written twice',
    ).toEqual([]);
    expect(written.size).toBe(keys.length);
  }, 600_000);
});
