// A dry run stopped mid-bucket and resumed from its checkpoint says what a real run would change
// exactly as one uninterrupted dry run does: the objects under the checkpoint carry their
// what-would-change counts (Progress.committed.planned) the way they carry their counters, so a
// controller can persist them with the checkpoint. SeaweedFS through the fault proxy (slowed HEADs
// keep the stop in the middle of the bucket).
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Plan } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), concurrency: 8, dryRun: true, ...extra },
  );
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 41 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('a resumed dry run (SeaweedFS through the fault proxy)', () => {
  it('stopped mid-bucket and resumed from its checkpoint: committed + resumed what-would-change = one uninterrupted run', async () => {
    const bucket = await createBucket(s3, 'dryresume');
    // Bodies of different lengths (the key is in the body), a quarter already at the target.
    const plain = Array.from({ length: 300 }, (_, i) => `k/${String(i).padStart(4, '0')}${'x'.repeat(i % 7)}`);
    const atTarget = Array.from({ length: 100 }, (_, i) => `k/${String(i * 3).padStart(4, '0')}-sse`);
    await putObjects(s3, bucket, plain);
    await putObjects(s3, bucket, atTarget, { ServerSideEncryption: 'AES256' });

    const whole = await runEngine(plan(bucket));
    expect(whole.status).toBe('Complete');
    expect(whole.counters.scanned).toBe(400);
    expect(whole.counters.alreadyEncrypted).toBe(100);
    expect(whole.planned.objects).toBe(300);
    expect(whole.planned.bytes).toBeGreaterThan(0);

    // The same dry run, stopped once about a third of the bucket is done.
    const stop = new AbortController();
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'HeadObject' ? { delayMs: 20 } : undefined));
    let first;
    try {
      first = await runEngine(plan(bucket), {
        signal: stop.signal,
        onProgress: (p) => {
          if (p.counters.scanned >= 130) stop.abort();
        },
      });
    } finally {
      proxy.setRule(undefined);
    }
    expect(first.status).toBe('Stopped');
    expect(first.checkpoint).toBeDefined();
    const committed = first.committed;
    expect(committed.counters.scanned).toBeGreaterThan(0);
    expect(committed.counters.scanned).toBeLessThan(400);
    expect(committed.planned.objects).toBeGreaterThan(0);
    expect(committed.planned.objects).toBeLessThanOrEqual(first.planned.objects);

    const rest = await runEngine(plan(bucket, { startAfter: first.checkpoint }));
    expect(rest.status).toBe('Complete');
    expect(committed.counters.scanned + rest.counters.scanned).toBe(whole.counters.scanned);
    expect(committed.planned.objects + rest.planned.objects).toBe(whole.planned.objects);
    expect(committed.planned.bytes + rest.planned.bytes).toBe(whole.planned.bytes);
    for (const method of Object.keys(whole.planned.byMethod))
      expect((committed.planned.byMethod[method] ?? 0) + (rest.planned.byMethod[method] ?? 0), method).toBe(
        whole.planned.byMethod[method],
      );
  }, 240_000);
});
