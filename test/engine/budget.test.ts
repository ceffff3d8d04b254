// Several runs sharing one in-flight budget (as the operator's jobs do) never
// have more objects in flight together than the budget, counted at the server
// side of the client: the requests actually outstanding.
import { describe, expect, it, inject } from 'vitest';
import { Budget, runEngine } from '../../src/engine/index.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';
import { proxyFor } from './safety-support.js';

describe('shared in-flight budget', () => {
  it('bounds the writes outstanding across concurrent runs', async () => {
    const info = inject('seaweed');
    const s3 = s3Client(info);
    const buckets = await Promise.all([0, 1, 2].map(() => createBucket(s3, 'budget')));
    await Promise.all(
      buckets.map((b) =>
        putObjects(
          s3,
          b,
          Array.from({ length: 40 }, (_, i) => `o/${i}`),
        ),
      ),
    );
    const budget = new Budget(3);
    // Counted where the requests arrive (the fault proxy), from each copy's arrival to its answer.
    const proxy = await proxyFor(info.s3Endpoint);
    const results = await Promise.all(
      buckets.map((bucket) => {
        const plan = enginePlan(info, bucket, { type: 'AES256' }, { concurrency: 16 });
        return runEngine({ ...plan, connection: connectionFor(info, { endpoint: proxy.url }) }, { budget });
      }),
    ).finally(() => proxy.stop());
    const events = proxy.requests
      .filter((r) => r.operation === 'CopyObject')
      .flatMap((r) => [
        { at: r.at, d: 1 },
        { at: r.doneAt ?? Infinity, d: -1 },
      ])
      .sort((a, b) => a.at - b.at || a.d - b.d);
    let outstanding = 0;
    let peak = 0;
    for (const e of events) peak = Math.max(peak, (outstanding += e.d));
    s3.destroy();
    for (const r of results) expect(r.counters).toMatchObject({ scanned: 40, encrypted: 40 });
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });
});
