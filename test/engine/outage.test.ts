// Issue 20, scenario 2: an outage is not a verdict. On SeaweedFS through the
// fault proxy: an outage of 150 s (longer than the 120 s an object is tried
// through transient errors) mid-run must not leave objects failed under the
// checkpoint; the job ends Complete with nothing failed, in the run or through
// a run from the checkpoint, as the operator's controller does with a
// retryable end. And only a write proves that writes work: a filtered first key
// must not disable the fail-fast when every copy is denied.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addCounters, emptyCounters, runEngine, type Plan, type RunResult } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

/** The outage of the scenario, as written: longer than an object's 120 s of tries. */
const OUTAGE_MS = 150_000;
/** The outage, the tries before and after it, and 300 copies on a loaded machine. */
const SCENARIO_TIMEOUT_MS = 600_000;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 20 });
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

/**
 * Runs the job as the operator does: a run that ends Failed and retryable is
 * run again from its checkpoint (at most 6 times), its committed counters the
 * base of the next. Returns the last result, the job's totals and the runs.
 */
async function runToTheEnd(
  p: Plan,
): Promise<{ result: RunResult; total: ReturnType<typeof emptyCounters>; runs: RunResult[] }> {
  const runs: RunResult[] = [];
  let base = emptyCounters();
  let startAfter = p.startAfter;
  for (;;) {
    const result = await runEngine({ ...p, ...(startAfter ? { startAfter } : {}) });
    runs.push(result);
    if (result.status !== 'Failed' || !result.retryable || runs.length > 6) {
      return { result, total: addCounters(base, result.counters), runs };
    }
    base = addCounters(base, result.committed.counters);
    startAfter = result.checkpoint ?? startAfter;
  }
}

async function notAes256(bucket: string, keys: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const key of keys) {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (h.ServerSideEncryption !== 'AES256') wrong.push(key);
  }
  return wrong;
}

/** Copies of the bucket the server answered 200 (forwarded through the proxy). */
const copiesDone = (bucket: string): number =>
  proxy.requests.filter((r) => r.bucket === bucket && r.operation === 'CopyObject' && r.upstreamStatus === 200).length;

describe('scenario 2: an outage is not a verdict (SeaweedFS, fault proxy)', () => {
  it(
    'scenario 2: after 20 copies, HEAD and CopyObject answer 503 SlowDown for 150 s, then recover: Complete, 0 failed, every object at the target',
    async () => {
      const bucket = await createBucket(s3, 'outage503');
      const keys = keysOf(300);
      await putObjects(s3, bucket, keys);
      let outage: { from: number; to: number } | undefined;
      proxy.setRule((r) => {
        if (r.bucket !== bucket || (r.operation !== 'HeadObject' && r.operation !== 'CopyObject')) return undefined;
        if (!outage && copiesDone(bucket) >= 20) outage = { from: proxy.now(), to: proxy.now() + OUTAGE_MS };
        if (!outage || proxy.now() >= outage.to) return undefined;
        return { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
      });
      let outcome;
      try {
        outcome = await runToTheEnd(plan(bucket));
      } finally {
        proxy.setRule(undefined);
      }
      const { result, total, runs } = outcome;
      expect(outage, 'the outage happened').toBeDefined();
      const throttled = proxy.requests.filter((r) => r.bucket === bucket && r.status === 503);
      expect(throttled.length).toBeGreaterThan(0);
      expect(
        throttled.at(-1)!.at - throttled[0]!.at,
        'answered 503 for longer than an object is tried',
      ).toBeGreaterThan(120_000);
      expect(result.status, result.message).toBe('Complete');
      expect(total).toMatchObject({ scanned: 300, failed: 0 });
      expect(total.encrypted + total.alreadyEncrypted).toBe(300);
      expect(await notAes256(bucket, keys)).toEqual([]);
      console.log(`scenario 2 (503 for 150 s): ${runs.length} run(s), ${throttled.length} answers 503`);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'scenario 2: after 20 copies the server refuses every connection for 150 s, then recovers: Complete, 0 failed, every object at the target',
    async () => {
      const bucket = await createBucket(s3, 'outagerefuse');
      const keys = keysOf(300);
      await putObjects(s3, bucket, keys);
      let copies = 0;
      const over = proxy.blackoutOn(
        { mode: 'refuse', ms: OUTAGE_MS },
        (r) => r.bucket === bucket && r.operation === 'CopyObject' && ++copies === 21,
      );
      const { result, total, runs } = await runToTheEnd(plan(bucket));
      await over;
      const refused = proxy.requests.filter((r) => r.bucket === bucket && r.fault === 'blackout');
      expect(refused.length).toBeGreaterThan(0);
      expect(result.status, result.message).toBe('Complete');
      expect(total).toMatchObject({ scanned: 300, failed: 0 });
      expect(total.encrypted + total.alreadyEncrypted).toBe(300);
      expect(await notAes256(bucket, keys)).toEqual([]);
      console.log(`scenario 2 (refused for 150 s): ${runs.length} run(s), ${refused.length} requests refused`);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it('scenario 2: one key stays throttled until the window is full: the run ends retryable above it (nothing failed under the checkpoint), and a run from the checkpoint finishes', async () => {
    const bucket = await createBucket(s3, 'stuckhead');
    const keys = keysOf(60);
    await putObjects(s3, bucket, keys);
    const stuck = 'k/005';
    proxy.setRule((r) =>
      r.bucket === bucket && r.key === stuck && r.operation === 'CopyObject'
        ? { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' }
        : undefined,
    );
    let first: RunResult;
    try {
      // A short window and tries of 3 s instead of 120 s: the same rule, reached in seconds.
      first = await runEngine(plan(bucket), { maxWindow: 20, transientRetryMs: 3000 });
    } finally {
      proxy.setRule(undefined);
    }
    expect(first.status).toBe('Failed');
    expect(first.retryable).toBe(true);
    expect(first.reason).toBe('TransientFailures');
    expect(first.message).toMatch(/k\/005.*SlowDown/);
    expect(first.checkpoint).toBe('k/004');
    expect(first.counters.failed).toBe(0);
    expect(first.committed.counters).toMatchObject({ scanned: 5, failed: 0 });
    const resumed = await runEngine(plan(bucket, { startAfter: first.checkpoint! }));
    expect(resumed.status).toBe('Complete');
    expect(addCounters(first.committed.counters, resumed.counters)).toMatchObject({ scanned: 60, failed: 0 });
    expect(await notAes256(bucket, keys)).toEqual([]);
  }, 300_000);

  it('scenario 2: exclude matches the first key and every copy is denied (403): Failed fast with the reason, not 299 failures and Complete', async () => {
    const bucket = await createBucket(s3, 'filteredfirst');
    const keys = keysOf(300);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) =>
      r.bucket === bucket && (r.operation === 'CopyObject' || r.operation === 'PutObject')
        ? { status: 403, code: 'AccessDenied', message: 'the role lost s3:PutObject' }
        : undefined,
    );
    let result: RunResult;
    try {
      result = await runEngine(plan(bucket, { exclude: ['k/000'] }));
    } finally {
      proxy.setRule(undefined);
    }
    expect(result.status).toBe('Failed');
    expect(result.reason).toBe('AccessDenied');
    expect(result.retryable).toBe(false);
    expect(result.message).toMatch(/s3:PutObject/);
    expect(result.counters.failed).toBeGreaterThanOrEqual(25);
    expect(result.counters.failed).toBeLessThan(60);
    // None of the denied objects is under the checkpoint: after the fix, a run from it does them all.
    expect(result.committed.counters.failed).toBe(0);
    expect(result.checkpoint === undefined || result.checkpoint <= 'k/000').toBe(true);
  }, 300_000);
});
