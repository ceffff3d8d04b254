// An operator crash (kill -9) in the middle of a dry run, then a new operator: the dry run resumes
// from its own checkpoint and its Complete status says what a real run would change exactly as an
// uninterrupted dry run of the same bucket does (objects, bytes and the estimated cost of a real run),
// unsharded and sharded. The what-would-change counts of the objects under a checkpoint, by method, are
// kept with it (dryRunCheckpoint.progress, dryRunShards[].checkpointProgress), and the estimate is made
// from those totals, not from the resumed run's part alone. Real apiserver + SeaweedFS through the fault proxy (slowed HEADs
// keep the crash in the middle of the bucket).
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  putObjects,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { applyJob, readJob, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

interface Progress {
  scanned: number;
  alreadyEncrypted: number;
  wouldEncrypt?: number;
  wouldEncryptBytes?: number;
  wouldEncryptByMethod?: Record<string, number>;
  estimatedCostUSD?: string;
}
interface Job {
  status?: {
    progress?: Progress;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    dryRunCheckpoint?: { startAfter?: string; progress?: Progress };
    dryRunShards?: { phase: string; checkpoint?: string; checkpointProgress?: Progress }[];
  };
}

function apply(name: string, bucket: string, parallelism?: number): Promise<void> {
  return applyJob(
    {
      name,
      namespace,
      bucket,
      encryption: { type: 'AES256' },
      s3: { ...info, s3Endpoint: proxy.url },
      dryRun: true,
      concurrency: 2,
    },
    parallelism !== undefined ? { parallelism } : {},
  );
}

/** The objects under the saved checkpoint(s): what a new operator resumes after. */
function checkpointed(job: Job): number {
  const s = job.status ?? {};
  const shards = s.dryRunShards ?? [];
  if (shards.length > 0) return shards.reduce((n, sh) => n + (sh.checkpointProgress?.scanned ?? 0), 0);
  return s.dryRunCheckpoint?.startAfter ? (s.dryRunCheckpoint.progress?.scanned ?? 0) : 0;
}

/**
 * A dry run of the bucket without a stop, then the same dry run with an operator crash once at
 * least 100 objects are under its checkpoint(s) (and not all of it), resumed by a new operator.
 */
async function crashAndResume(
  bucket: string,
  total: number,
  parallelism?: number,
): Promise<{ whole: Job; resumed: Job }> {
  const suffix = parallelism !== undefined ? '-sharded' : '';
  await apply(`whole${suffix}`, bucket, parallelism);
  const whole = await waitForCondition<Job>(namespace, `whole${suffix}`, 'Complete', {
    logs: () => operator.logTail(30),
  });

  proxy.setRule((r) => (r.bucket === bucket && r.operation === 'HeadObject' ? { delayMs: 100 } : undefined));
  try {
    await apply(`resumed${suffix}`, bucket, parallelism);
    const at = await waitUntil(
      'at least 100 objects under the dry run checkpoint',
      async () => {
        const n = checkpointed(await readJob<Job>(namespace, `resumed${suffix}`));
        return n >= 100 ? n : undefined;
      },
      240_000,
      () => operator.logTail(30),
    );
    await operator.kill();
    expect(at, 'the crash came before the end of the bucket').toBeLessThan(total);
  } finally {
    proxy.setRule(undefined);
  }
  operator = await startOperator({ watchNamespace: namespace });
  const resumed = await waitForCondition<Job>(namespace, `resumed${suffix}`, 'Complete', {
    logs: () => operator.logTail(30),
  });
  return { whole, resumed };
}

function expectSameCount(whole: Job, resumed: Job, total: number, wouldChange: number): void {
  const w = whole.status?.progress;
  const r = resumed.status?.progress;
  expect(w?.scanned).toBe(total);
  expect(w?.wouldEncrypt).toBe(wouldChange);
  expect(r?.scanned).toBe(total);
  expect(r?.alreadyEncrypted).toBe(w?.alreadyEncrypted);
  expect(r?.wouldEncrypt).toBe(w?.wouldEncrypt);
  expect(r?.wouldEncryptBytes).toBe(w?.wouldEncryptBytes);
  expect(w?.wouldEncryptByMethod).toEqual({ copy: wouldChange });
  expect(r?.wouldEncryptByMethod).toEqual(w?.wouldEncryptByMethod);
  // What a real run would cost: a restart in the middle changes nothing about it.
  expect(w?.estimatedCostUSD).toMatch(/^\d+\.\d{4}$/);
  expect(Number(w?.estimatedCostUSD)).toBeGreaterThan(0);
  expect(r?.estimatedCostUSD).toBe(w?.estimatedCostUSD);
  const complete = resumed.status?.conditions?.find((c) => c.type === 'Complete');
  expect(complete?.reason).toBe('DryRunCompleted');
  expect(complete?.message).toContain(
    `dry run: ${wouldChange} of ${total} objects would change (${w?.wouldEncryptBytes} bytes, about $${w?.estimatedCostUSD})`,
  );
  expect(complete?.message).toBe(whole.status?.conditions?.find((c) => c.type === 'Complete')?.message);
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 43 });
  namespace = await createNamespace('dryresume');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

/** 450 objects to change (bodies of different lengths) and 150 already at the target. */
async function bucketOf600(): Promise<string> {
  const bucket = await createBucket(s3, 'dryresume');
  await putObjects(
    s3,
    bucket,
    Array.from({ length: 450 }, (_, i) => `d${i % 5}/${String(i).padStart(4, '0')}${'x'.repeat(i % 9)}`),
  );
  await putObjects(
    s3,
    bucket,
    Array.from({ length: 150 }, (_, i) => `d${i % 5}/${String(i * 3).padStart(4, '0')}-sse`),
    { ServerSideEncryption: 'AES256' },
  );
  return bucket;
}

describe('a dry run resumed after an operator crash (SeaweedFS through the fault proxy)', () => {
  it('unsharded: the Complete status counts what would change, and estimates its cost, as an uninterrupted dry run does', async () => {
    const bucket = await bucketOf600();
    const { whole, resumed } = await crashAndResume(bucket, 600);
    expectSameCount(whole, resumed, 600, 450);
  }, 600_000);

  it('sharded (parallelism 3): the same, summed over the shards', async () => {
    const bucket = await bucketOf600();
    const { whole, resumed } = await crashAndResume(bucket, 600, 3);
    expect(resumed.status?.dryRunShards?.map((s) => s.phase)).toEqual(['Complete', 'Complete', 'Complete']);
    expectSameCount(whole, resumed, 600, 450);
  }, 600_000);
});
