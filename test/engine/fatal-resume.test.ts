// A run that gives up on a job-level error must not bury the objects that error
// failed under its checkpoint: after the user fixes the cause (restores the
// credentials, re-enables the key), the resumed run tries them again, and
// every object ends at the target. Objects that failed for their own reason (a
// key this identity may not write) stay failed and counted, as before. On
// SeaweedFS through the fault proxy, which answers the errors a revoked key or
// a denied object would get from S3.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addCounters, runEngine, type Outcome, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 5 });
});
afterAll(async () => {
  s3?.destroy();
  await proxy?.stop();
});

const keysOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `k/${String(i).padStart(3, '0')}`);

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), concurrency: 4, ...extra },
  );
}

async function run(p: Plan) {
  const committed = new Map<string, Outcome>();
  const result = await runEngine(p, { onOutcome: (k, o) => committed.set(k, o) });
  return { result, committed };
}

/** CopyObject requests the server answered 200, per key. */
function copies(bucket: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of proxy.requests)
    if (r.bucket === bucket && r.operation === 'CopyObject' && r.key && r.upstreamStatus === 200)
      out.set(r.key, (out.get(r.key) ?? 0) + 1);
  return out;
}

async function notAes256(bucket: string, keys: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const key of keys) {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (h.ServerSideEncryption !== 'AES256') wrong.push(key);
  }
  return wrong;
}

const denied = (message: string) => ({ status: 403, code: 'AccessDenied', message });

describe('a job-level failure keeps its objects above the checkpoint (SeaweedFS, fault proxy)', () => {
  it('credentials revoked from the 30th copy on: Failed; a resumed run after the fix brings every object to the target, none written twice; a key denied on its own stays failed', async () => {
    const bucket = await createBucket(s3, 'revoked');
    const keys = keysOf(80);
    await putObjects(s3, bucket, keys);
    const own = 'k/003';
    let accepted = 0;
    proxy.setRule((r) => {
      if (r.bucket !== bucket || r.operation !== 'CopyObject') return undefined;
      if (r.key === own) return denied('this identity may not write k/003');
      if (++accepted < 30) return undefined;
      return {
        status: 403,
        code: 'InvalidAccessKeyId',
        message: 'The AWS Access Key Id you provided does not exist in our records.',
      };
    });
    let first;
    try {
      first = await run(plan(bucket));
    } finally {
      proxy.setRule(undefined);
    }
    const { result } = first;
    expect(result.status).toBe('Failed');
    expect(result.reason).toBe('InvalidAccessKeyId');
    expect(result.retryable).toBe(false);
    // The refusals happened and are reported as this run's failures ...
    expect(result.recentFailures.some((f) => f.code === 'InvalidAccessKeyId')).toBe(true);
    // ... but none of them is under the checkpoint: a resumed run looks at them again.
    const buried = [...first.committed].filter(
      ([, o]) => o.kind === 'failed' && o.failure.code === 'InvalidAccessKeyId',
    );
    expect(buried, 'objects failed by the revoked key under the checkpoint').toEqual([]);
    expect(result.checkpoint).toBeDefined();
    expect(result.checkpoint! > own, 'the checkpoint passed the key denied on its own').toBe(true);
    // The key denied on its own is under the checkpoint, counted as failed, as before.
    expect(first.committed.get(own)).toMatchObject({ kind: 'failed', failure: { code: 'AccessDenied' } });
    expect(result.committed.counters.failed).toBe(1);

    // Fixed: the key works again (the object denied on its own still is).
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && r.key === own
        ? denied('this identity may not write k/003')
        : undefined,
    );
    let resumed;
    try {
      resumed = await run(plan(bucket, { startAfter: result.checkpoint! }));
    } finally {
      proxy.setRule(undefined);
    }
    expect(resumed.result.status).toBe('Complete');
    const total = addCounters(result.committed.counters, resumed.result.counters);
    expect(total).toMatchObject({ scanned: keys.length, failed: 1 });
    expect(total.encrypted + total.alreadyEncrypted).toBe(keys.length - 1);
    expect(await notAes256(bucket, keys)).toEqual([own]);
    const seen = copies(bucket);
    expect(
      [...seen].filter(([, n]) => n > 1),
      'keys written twice',
    ).toEqual([]);
    expect(seen.size).toBe(keys.length - 1);
  }, 300_000);

  it('the first 25 objects all denied (fail-fast): the run keeps the checkpoint it started from; after the fix the resumed run does them all', async () => {
    const bucket = await createBucket(s3, 'failfast');
    const keys = keysOf(60);
    await putObjects(s3, bucket, keys);
    const start = 'k/009'; // an earlier run finished k/000..k/009
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' ? denied('the role lost s3:PutObject') : undefined,
    );
    let first;
    try {
      first = await run(plan(bucket, { startAfter: start, concurrency: 2 }));
    } finally {
      proxy.setRule(undefined);
    }
    const { result } = first;
    expect(result.status).toBe('Failed');
    expect(result.reason).toBe('AccessDenied');
    expect(result.counters.failed).toBeGreaterThanOrEqual(25);
    expect(result.checkpoint).toBe(start);
    expect(result.committed.counters.scanned).toBe(0);
    expect(first.committed.size).toBe(0);

    const resumed = await run(plan(bucket, { startAfter: result.checkpoint! }));
    expect(resumed.result.status).toBe('Complete');
    expect(resumed.result.counters).toMatchObject({ scanned: 50, encrypted: 50, failed: 0 });
    expect(await notAes256(bucket, keys.slice(10))).toEqual([]);
  }, 300_000);

  it('a few objects denied on their own and nothing else: the run is Complete and counts them under the checkpoint', async () => {
    const bucket = await createBucket(s3, 'fewdenied');
    const keys = keysOf(6);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' ? denied('no write on these keys') : undefined,
    );
    let first;
    try {
      first = await run(plan(bucket));
    } finally {
      proxy.setRule(undefined);
    }
    // Fewer failures than the fail-fast needs and no success: they are the objects' own.
    expect(first.result.status).toBe('Complete');
    expect(first.result.checkpoint).toBe('k/005');
    expect(first.result.committed.counters).toMatchObject({ scanned: 6, failed: 6 });
    expect(first.committed.size).toBe(6);
  }, 300_000);
});
