// Shard planning when the prefix holds many sub-prefixes (30 dates, 90% of the
// keys under the last one): the operator's base budget for 4 shards (32 LIST
// requests) is about spent probing the dates, so the budget grows with the
// sub-prefixes found and the hot date is explored like in the 10-date case.
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SAMPLE_REQUESTS_PER_SUB_PREFIX } from '../../src/controller/shardplan.js';
import { inRange, planShards, sampleKeys } from '../../src/engine/keys/shards.js';
import { createBucket, putObjects, s3Client } from '../harness/context.js';

describe('shard planning over many sub-prefixes (SeaweedFS)', () => {
  let s3: S3Client;
  let bucket: string;
  const keys: string[] = [];

  beforeAll(async () => {
    s3 = s3Client(inject('seaweed'));
    bucket = await createBucket(s3, 'shards30');
    for (let i = 0; i < 3000; i++) {
      const day = i % 10 === 0 ? 1 + (Math.floor(i / 10) % 29) : 30;
      keys.push(`logs/2026-11-${String(day).padStart(2, '0')}/${randomBytes(5).toString('hex')}.json`);
    }
    await putObjects(s3, bucket, keys);
  }, 300_000);

  function spread(shards: ReturnType<typeof planShards>): number {
    const sizes = shards.map((shard) => keys.filter((k) => inRange(k, shard)).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
    return Math.max(...sizes) / (keys.length / shards.length);
  }

  it.each([
    ['the dates at the top of the prefix', 'logs/'],
    ['the dates one level down', ''],
  ])('4 shards from the base budget grown per sub-prefix are balanced (max/mean <= 1.2): %s', async (_, prefix) => {
    const fixed = await sampleKeys(s3, { bucket, prefix, maxRequests: 32 });
    const grown = await sampleKeys(s3, {
      bucket,
      prefix,
      maxRequests: 32,
      requestsPerSubPrefix: SAMPLE_REQUESTS_PER_SUB_PREFIX,
    });
    const before = spread(planShards(fixed.keys, 4));
    const after = spread(planShards(grown.keys, 4));
    console.log(
      `prefix "${prefix}": fixed budget: ${fixed.requests} requests, max/mean ${before.toFixed(2)}; ` +
        `grown: ${grown.requests} requests, max/mean ${after.toFixed(2)}`,
    );
    expect(fixed.requests).toBeLessThanOrEqual(32);
    expect(grown.requests).toBeLessThanOrEqual(32 + SAMPLE_REQUESTS_PER_SUB_PREFIX * 31);
    // The fixed budget gives 1.5-1.7 here (the hot date barely explored); grown, the cut points fall inside it.
    expect(after).toBeLessThanOrEqual(1.2);
  });
});
