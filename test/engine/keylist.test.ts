// Plan.keys, a run over named keys (issue 20, scenario 3: a retry of a finished
// run's failures), on SeaweedFS (+ local-kms) through the fault proxy: only the
// named keys are looked at (counted at the proxy, no listing), a named key that
// is gone is skipped as vanished, keys outside the prefix are ignored, and the
// include/exclude filters still apply.
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Outcome, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

function plan(bucket: string, extra: Partial<Plan>): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), ...extra },
  );
}

function keysSeen(bucket: string, operation: string, from: number): string[] {
  const seen = proxy.requests
    .slice(from)
    .filter((r) => r.bucket === bucket && r.operation === operation && r.key !== undefined)
    .map((r) => r.key!);
  return [...new Set(seen)].sort();
}

const sseOf = async (bucket: string, key: string): Promise<string | undefined> =>
  (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 33 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('Plan.keys: a run over named keys (SeaweedFS through the fault proxy)', () => {
  it('scenario 3: only the named keys are looked at; a deleted one is vanished; keys outside the prefix are ignored', async () => {
    const bucket = await createBucket(s3, 'keys');
    const all = ['p/a', 'p/b', 'p/c', 'p/d', 'p/e b+c', 'p/gone', 'q/x'];
    await putObjects(s3, bucket, all);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'p/gone' }));
    const from = proxy.requests.length;
    const outcomes = new Map<string, Outcome>();
    const result = await runEngine(
      plan(bucket, {
        prefix: 'p/',
        // Unsorted, a duplicate, a key outside the prefix, a key the filter leaves alone.
        keys: ['p/d', 'p/gone', 'q/x', 'p/b', 'p/e b+c', 'p/d', 'p/c'],
        exclude: ['c'],
      }),
      { onOutcome: (key, outcome) => outcomes.set(key, outcome) },
    );
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 5, encrypted: 3, skipped: 2, failed: 0 });
    expect(result.skippedByReason).toMatchObject({ vanished: 1, filtered: 1 });
    expect(outcomes.get('p/gone')).toMatchObject({ kind: 'skipped', reason: 'vanished' });
    expect(outcomes.get('p/c')).toMatchObject({ kind: 'skipped', reason: 'filtered' });
    expect([...outcomes.keys()].sort()).toEqual(['p/b', 'p/c', 'p/d', 'p/e b+c', 'p/gone']);
    // The named keys in the prefix and nothing else: no listing, no HEAD of another key.
    expect(keysSeen(bucket, 'HeadObject', from)).toEqual(['p/b', 'p/d', 'p/e b+c', 'p/gone']);
    expect(
      proxy.requests.slice(from).filter((r) => r.bucket === bucket && r.operation.startsWith('ListObjects')),
    ).toEqual([]);
    for (const key of ['p/b', 'p/d', 'p/e b+c']) expect(await sseOf(bucket, key)).toBe('AES256');
    for (const key of ['p/a', 'p/c', 'q/x']) expect(await sseOf(bucket, key)).toBeUndefined();
    // The checkpoint works as for a listing: at the last named key.
    expect(result.checkpoint).toBe('p/gone');
  });

  it('Plan.keys with an inventory is refused before any request', async () => {
    const from = proxy.requests.length;
    const result = await runEngine(plan('any-bucket', { keys: ['a'], inventoryManifest: 's3://i/manifest.json' }));
    expect(result).toMatchObject({ status: 'Failed', reason: 'InvalidSpec' });
    expect(result.message).toMatch(/keys/);
    expect(proxy.requests.length).toBe(from);
  });
});
