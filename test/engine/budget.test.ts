// Several runs sharing one in-flight budget (as the operator's jobs do) never
// have more objects in flight together than the budget, counted at the server
// side of the client: the requests actually outstanding.
import { describe, expect, it, inject } from 'vitest';
import { Budget, createClients, runEngine } from '../../src/engine/index.js';
import { createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

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
    let outstanding = 0;
    let peak = 0;
    const results = await Promise.all(
      buckets.map((bucket) => {
        const plan = enginePlan(info, bucket, { type: 'AES256' }, { concurrency: 16 });
        const clients = createClients(plan.connection);
        clients.s3.middlewareStack.add(
          (next, ctx) => async (args) => {
            const write = ctx.commandName === 'CopyObjectCommand';
            if (write) peak = Math.max(peak, ++outstanding);
            try {
              return await next(args);
            } finally {
              if (write) outstanding--;
            }
          },
          { step: 'initialize', name: 'countOutstanding' },
        );
        return runEngine(plan, { clients, budget }).finally(() => clients.destroy());
      }),
    );
    s3.destroy();
    for (const r of results) expect(r.counters).toMatchObject({ scanned: 40, encrypted: 40 });
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });
});
