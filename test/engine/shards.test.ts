// Shard planning from a cheap sampling pass over a real S3 server: on a skewed
// key set (90% under one date prefix), with a request budget too small to list
// every key, the planned shards partition the keys and are balanced.
import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { compareKeys, inRange, planShards, sampleKeys } from '../../src/engine/keys/shards.js';
import { listObjects } from '../../src/engine/keys/lister.js';
import { runEngine } from '../../src/engine/run.js';
import { createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

describe('shard planning from S3 sampling (SeaweedFS)', () => {
  let s3: S3Client;
  let bucket: string;
  const keys: string[] = [];

  beforeAll(async () => {
    s3 = s3Client(inject('seaweed'));
    bucket = await createBucket(s3, 'shards');
    // 2,000 keys: 1,800 under one day, 200 over nine other days, random (hash-like) names.
    for (let d = 1; d <= 10; d++) {
      const day = `data/2026-11-${String(d).padStart(2, '0')}/`;
      const count = d === 5 ? 1800 : d <= 2 ? 23 : 22;
      for (let i = 0; i < count; i++) keys.push(`${day}${randomBytes(5).toString('hex')}.json`);
    }
    keys.push('outside/not-in-prefix.json');
    await putObjects(s3, bucket, keys);
  }, 300_000);

  it('plans 4 balanced shards (max/mean <= 1.5) from 30 requests of 50 keys', async () => {
    const sample = await sampleKeys(s3, { bucket, prefix: 'data/', maxRequests: 30, pageSize: 50 });
    expect(sample.requests).toBeLessThanOrEqual(30);
    // 30 x 50 < 2,000: the planner had to estimate what it did not list.
    expect(sample.exact).toBe(false);
    expect(sample.estimatedCount).toBeGreaterThan(1500);
    expect(sample.estimatedCount).toBeLessThan(2500);

    const shards = planShards(sample.keys, 4);
    expect(shards).toHaveLength(4);
    const listed: string[] = [];
    for await (const o of listObjects(s3, { bucket, prefix: 'data/' })) listed.push(o.key);
    expect(listed).toHaveLength(2000);

    // Every key in exactly one shard; each shard listed with its bounds gives exactly its keys.
    const sizes: number[] = [];
    for (const shard of shards) {
      const got: string[] = [];
      for await (const o of listObjects(s3, { bucket, prefix: 'data/', startAfter: shard.startAfter })) {
        if (shard.endAt !== undefined && compareKeys(o.key, shard.endAt) > 0) break;
        got.push(o.key);
      }
      expect(got).toEqual(listed.filter((k) => inRange(k, shard)));
      sizes.push(got.length);
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2000);
    const ratio = Math.max(...sizes) / (2000 / shards.length);
    console.log(`shard sizes ${sizes.join(', ')}; max/mean ${ratio.toFixed(2)}; ${sample.requests} requests`);
    expect(ratio).toBeLessThanOrEqual(1.5);
  });

  it('lists everything (exact) when the budget allows', async () => {
    const sample = await sampleKeys(s3, { bucket, prefix: 'data/', maxRequests: 200, pageSize: 1000 });
    expect(sample.exact).toBe(true);
    expect(sample.estimatedCount).toBe(2000);
    expect(sample.keys.map((k) => k.key).sort(compareKeys)).toEqual(
      [...keys].filter((k) => k.startsWith('data/')).sort(compareKeys),
    );
  });
});

describe('shard runs (SeaweedFS)', () => {
  it('two shard runs (startAfter, endAt] over the same prefix process every key exactly once', async () => {
    const info = inject('seaweed');
    const s3 = s3Client(info);
    try {
      const bucket = await createBucket(s3, 'shardrun');
      const keys = Array.from({ length: 300 }, (_, i) => `p/${i % 3}/${randomBytes(4).toString('hex')}`);
      await putObjects(s3, bucket, [...keys, 'q/outside']);
      const sample = await sampleKeys(s3, { bucket, prefix: 'p/', maxRequests: 10, pageSize: 100 });
      const shards = planShards(sample.keys, 2);
      expect(shards).toHaveLength(2);
      const seen = new Map<string, number>();
      let scanned = 0;
      for (const shard of shards) {
        const result = await runEngine(
          enginePlan(
            info,
            bucket,
            { type: 'AES256' },
            {
              prefix: 'p/',
              ...(shard.startAfter ? { startAfter: shard.startAfter } : {}),
              ...(shard.endAt !== undefined ? { endAt: shard.endAt } : {}),
              concurrency: 8,
            },
          ),
          { onOutcome: (key) => seen.set(key, (seen.get(key) ?? 0) + 1) },
        );
        expect(result.status).toBe('Complete');
        // The count beside the run counted the shard, not the prefix.
        expect(result.counters.scanned).toBe(keys.filter((k) => inRange(k, shard)).length);
        // The last checkpoint is the shard's last key: a resumed shard run lists nothing more.
        expect(result.checkpoint).toBe(
          keys
            .filter((k) => inRange(k, shard))
            .sort(compareKeys)
            .at(-1),
        );
        scanned += result.counters.scanned;
      }
      expect(scanned).toBe(300);
      expect([...seen.keys()].sort(compareKeys)).toEqual([...keys].sort(compareKeys));
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      for (const key of keys) {
        const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        expect(h.ServerSideEncryption, key).toBe('AES256');
      }
    } finally {
      s3.destroy();
    }
  }, 300_000);
});
