// One slow object does not freeze a job (issue 9, scenario 12; review #13), on
// SeaweedFS (+ local-kms) through the fault proxy: the copy of the first key is held
// while 5,000 small objects behind it are worked on. Progress (counters, what metrics
// and status are made of) keeps moving; the checkpoint waits for the slow key (it is
// the low watermark); listing pauses when the window of finished-but-not-checkpointed
// keys is full, so memory stays bounded; the counters saved with the checkpoint cover
// only the keys under it, so a resumed run neither misses nor double counts.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Plan, type Progress } from '../../src/engine/index.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client, sleep, waitUntil } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

const SLOW = 'a-slow';
const SMALL = 5000;
/** The engine's default window at concurrency 32: max(1000, 64 x 32). */
const WINDOW = 2048;

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'AES256' },
    { connection: connectionFor(info, { endpoint: proxy.url }), concurrency: 32, ...extra },
  );
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 17 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('one slow object among 5,000 (SeaweedFS through the fault proxy)', () => {
  it('progress keeps moving while it copies; the checkpoint waits for it; listing pauses at the window; counts add up', async () => {
    const bucket = await createBucket(s3, 'slow');
    await putObjects(s3, bucket, [SLOW, ...Array.from({ length: SMALL }, (_, i) => `k/${String(i).padStart(5, '0')}`)]);
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    proxy.setRule((r) =>
      r.bucket === bucket && r.key === SLOW && r.operation === 'CopyObject' ? { hold: held } : undefined,
    );
    let latest: Progress | undefined;
    const run = runEngine(plan(bucket), { progressIntervalMs: 200, onProgress: (p) => (latest = p) });

    // While the slow copy is held, the objects after it are finished and reported.
    const moving = await waitUntil(
      'progress while the slow object copies',
      () => ((latest?.counters.scanned ?? 0) >= WINDOW - 1 ? latest : undefined),
      300_000,
    );
    expect(moving.counters.encrypted).toBeGreaterThanOrEqual(WINDOW - 1);
    expect(moving.checkpoint).toBeUndefined();
    expect(moving.committed.counters.scanned).toBe(0);
    // The window is full: listing paused instead of running on with the slow key unfinished.
    await sleep(1500);
    const looked = new Set(
      proxy.requests.filter((r) => r.bucket === bucket && r.operation === 'HeadObject').map((r) => r.key),
    );
    expect(looked.size).toBeLessThanOrEqual(WINDOW);
    expect(latest?.counters.scanned).toBe(WINDOW - 1);
    expect(
      proxy.requests
        .filter((r) => r.bucket === bucket && r.key === SLOW && r.operation === 'CopyObject')
        .every((r) => r.doneAt === undefined),
    ).toBe(true);

    release();
    const result = await run;
    proxy.setRule(undefined);
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: SMALL + 1, encrypted: SMALL + 1, failed: 0 });
    expect(result.committed.counters).toEqual(result.counters);
    expect(result.checkpoint).toBe(`k/${String(SMALL - 1).padStart(5, '0')}`);
  }, 600_000);
});
