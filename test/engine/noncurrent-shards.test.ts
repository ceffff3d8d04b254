// Counting noncurrent versions per shard (issue 20, scenario 8; safety review M6), on
// SeaweedFS through the fault proxy: each shard of a versioned bucket lists versions
// from its own lower bound (KeyMarker = the shard's startAfter) to its endAt, so four
// shards together page through the versions about once. Before, every shard listed
// from the start of the prefix: 1 + 2 + 3 + 4 quarters of the listing.
import { randomBytes } from 'node:crypto';
import { PutBucketVersioningCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine } from '../../src/engine/index.js';
import { countNoncurrent } from '../../src/engine/keys/noncurrent.js';
import { inRange, planShards, sampleKeys } from '../../src/engine/keys/shards.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 8 });
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

/** ListObjectVersions requests of `bucket` that reached the proxy. */
function versionListings(bucket: string): number {
  return proxy.requests.filter((r) => r.bucket === bucket && r.operation === 'ListObjectVersions').length;
}

describe('noncurrent versions of a sharded job (SeaweedFS through the fault proxy)', () => {
  it('scenario 8: noncurrent counting costs one listing, not one per shard: 4 shards page through the versions once, and the counts add up', async () => {
    const bucket = await createBucket(s3, 'nc-shards');
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    // 2,000 keys with one noncurrent version each: 4,000 versions, several pages of a listing.
    const keys = Array.from({ length: 2000 }, () => `nc/${randomBytes(5).toString('hex')}`);
    await putObjects(s3, bucket, keys);
    await putObjects(s3, bucket, keys);

    // What one listing of the whole prefix costs on this server (its page size is its own).
    const client = s3Client({ ...info, s3Endpoint: proxy.url });
    let oneListing = 0;
    try {
      const whole = await countNoncurrent(client, { bucket, prefix: 'nc/', onRequest: () => oneListing++ });
      expect(whole).toBe(2000);
    } finally {
      client.destroy();
    }
    expect(oneListing).toBeGreaterThanOrEqual(3);
    expect(versionListings(bucket)).toBe(oneListing);

    const sample = await sampleKeys(s3, { bucket, prefix: 'nc/', maxRequests: 10, pageSize: 1000 });
    const shards = planShards(sample.keys, 4);
    expect(shards).toHaveLength(4);
    const before = versionListings(bucket);
    let noncurrent = 0;
    for (const shard of shards) {
      // As the controller runs a shard: from its lower bound, or from a checkpoint inside it.
      const result = await runEngine(
        enginePlan(
          info,
          bucket,
          { type: 'AES256' },
          {
            prefix: 'nc/',
            connection: connectionFor(info, { endpoint: proxy.url }),
            dryRun: true,
            ...(shard.startAfter ? { startAfter: shard.startAfter, shardStartAfter: shard.startAfter } : {}),
            ...(shard.endAt !== undefined ? { endAt: shard.endAt } : {}),
          },
        ),
      );
      expect(result.status).toBe('Complete');
      expect(result.warnings).toBeUndefined();
      const own = keys.filter((k) => inRange(k, shard)).length;
      expect(result.counters.scanned).toBe(own);
      // One noncurrent version per key of the shard, none of its neighbours'.
      expect(result.noncurrentVersions).toBe(own);
      noncurrent += result.noncurrentVersions ?? 0;
    }
    expect(noncurrent).toBe(2000);
    const sharded = versionListings(bucket) - before;
    console.log(`ListObjectVersions: one listing ${oneListing} pages; 4 shards ${sharded} pages`);
    // Each shard may read one page more than its share (the page that crosses its endAt): nothing more.
    // From the start of the prefix every shard would have read all pages before its own: about 1+2+3+4 quarters.
    expect(sharded).toBeLessThanOrEqual(oneListing + shards.length);
  }, 600_000);
});
