// An engine run whose objects come from an S3 Inventory report (Plan.inventoryManifest)
// on SeaweedFS and on moto, each through the fault proxy so that what reached the server is counted:
// no ListObjectsV2 at all, every row HEADed (a row proves nothing alone), rows of other buckets
// or outside the prefix never touched, the job's filters applied, the watermark
// checkpoint working on a report whose files are in no key order, and a bad report
// failing the run before any object is touched.
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEngine } from '../../src/engine/run.js';
import type { Plan } from '../../src/engine/types.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { connectionFor, createBucket, enginePlan, putObjects, s3Client } from '../harness/context.js';
import { writeInventory, type InventoryRow } from '../harness/inventory.js';

describe.each([
  ['SeaweedFS', 'seaweed'],
  ['moto', 'moto'],
] as const)('an engine run from an S3 Inventory report (%s through the fault proxy)', (_server, which) => {
  const info = inject(which);
  let s3: S3Client;
  let proxy: FaultProxy;
  let inv: string;

  beforeAll(async () => {
    s3 = s3Client(info);
    proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 7 });
    inv = await createBucket(s3, 'invstore');
  });
  afterAll(async () => {
    await proxy?.stop();
    s3?.destroy();
  });

  /** Requests of one operation on the bucket that reached the server, by key. */
  function seen(bucket: string, operation: string): string[] {
    return proxy.requests
      .filter((r) => r.bucket === bucket && r.operation === operation && r.upstreamStatus !== undefined)
      .map((r) => r.key ?? '');
  }

  function plan(bucket: string, extra: Partial<Plan>): Plan {
    return enginePlan(
      info,
      bucket,
      { type: 'AES256' },
      { connection: connectionFor(info, { endpoint: proxy.url }), ...extra },
    );
  }

  async function sse(bucket: string, key: string): Promise<string | undefined> {
    return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption;
  }

  describe('objects from the report', () => {
    let bucket: string;
    let manifest: string;
    const plain = Array.from({ length: 120 }, (_, i) => `data/${String(i).padStart(3, '0')} plain+x €.json`);
    const sseS3 = Array.from({ length: 80 }, (_, i) => `data/${String(i).padStart(3, '0')}-sse.json`);
    const filtered = ['data/tmp/skip-me.json'];

    beforeAll(async () => {
      bucket = await createBucket(s3, 'invrun');
      await putObjects(s3, bucket, [...plain, ...filtered, 'outside/x.json', 'data/not-in-report.json']);
      await putObjects(s3, bucket, sseS3, { ServerSideEncryption: 'AES256' });
      const rows: InventoryRow[] = [
        ...plain.map((key) => ({ bucket, key, encryptionStatus: 'NOT-SSE' })),
        ...sseS3.map((key) => ({ bucket, key, encryptionStatus: 'SSE-S3' })),
        ...filtered.map((key) => ({ bucket, key })),
        { bucket, key: 'outside/x.json' }, // outside the prefix
        { bucket: 'another-bucket', key: 'data/not-in-report.json' }, // the same key, another bucket's row
      ];
      manifest = await writeInventory(s3, { inventoryBucket: inv, sourceBucket: bucket, rows, files: 3 });
    }, 120_000);

    it('takes the objects from the report: no LIST, every row HEADed, filters apply, other rows untouched', async () => {
      const result = await runEngine(
        plan(bucket, { prefix: 'data/', inventoryManifest: manifest, exclude: ['tmp/*'] }),
      );
      expect(result.status, result.message).toBe('Complete');
      expect(result.counters).toMatchObject({
        scanned: plain.length + sseS3.length + filtered.length,
        skipped: 1,
        failed: 0,
      });
      expect(result.counters.encrypted + result.counters.alreadyEncrypted).toBe(plain.length + sseS3.length);
      expect(result.counters.alreadyEncrypted).toBe(sseS3.length);
      expect(result.inventory).toMatchObject({ manifest, createdAt: '2026-12-01T01:00:00.000Z', objects: 201 });
      expect(result.warnings?.join(' ')).toContain('made 2026-12-01T01:00:00.000Z');
      expect(seen(bucket, 'ListObjectsV2'), 'ListObjectsV2 requests').toEqual([]);
      expect(seen(bucket, 'ListObjects')).toEqual([]);
      // A row proves nothing on its own (scenario 11a): SSE-S3 rows are HEADed too.
      const heads = new Set(seen(bucket, 'HeadObject'));
      expect(
        sseS3.filter((k) => !heads.has(k)),
        'SSE-S3 rows not HEADed',
      ).toEqual([]);
      // Rows of another bucket, outside the prefix or filtered out: never touched.
      const touched = new Set(proxy.requests.filter((r) => r.bucket === bucket).map((r) => r.key));
      for (const k of ['outside/x.json', 'data/not-in-report.json', ...filtered]) expect(touched.has(k), k).toBe(false);
      for (const k of plain) expect(await sse(bucket, k), k).toBe('AES256');
    }, 120_000);

    it('scenario 11a: stale inventory rows never prove encryption on their own: an SSE-S3 row overwritten since is HEADed and encrypted', async () => {
      const b = await createBucket(s3, 'invstale');
      const keys = ['k', 'm'];
      await putObjects(s3, b, keys, { ServerSideEncryption: 'AES256' });
      const m = await writeInventory(s3, {
        inventoryBucket: inv,
        sourceBucket: b,
        rows: keys.map((key) => ({ bucket: b, key, encryptionStatus: 'SSE-S3' })),
        path: `${b}/stale`,
      });
      // After the report: k is overwritten without encryption; its row still says SSE-S3.
      await s3.send(new PutObjectCommand({ Bucket: b, Key: 'k', Body: 'newer' }));
      expect(await sse(b, 'k')).toBeUndefined();
      const result = await runEngine(plan(b, { inventoryManifest: m }));
      expect(result.status, result.message).toBe('Complete');
      expect(await sse(b, 'k')).toBe('AES256');
      expect(result.counters).toMatchObject({ scanned: 2, encrypted: 1, alreadyEncrypted: 1, failed: 0 });
      expect(seen(b, 'HeadObject')).toEqual(expect.arrayContaining(keys));
    }, 120_000);

    it('the watermark checkpoint works on a report in no key order: stopped at maxObjects, resumed, each object copied once', async () => {
      const b = await createBucket(s3, 'invresume');
      const keys = Array.from({ length: 150 }, (_, i) => `k/${(i * 7919) % 1000}-${i}`);
      await putObjects(s3, b, keys);
      const m = await writeInventory(s3, {
        inventoryBucket: inv,
        sourceBucket: b,
        rows: keys.map((key) => ({ bucket: b, key })),
        files: 4,
        path: `${b}/resume`,
      });
      const first = await runEngine(plan(b, { inventoryManifest: m, maxObjects: 60, concurrency: 4 }));
      expect(first.status, first.message).toBe('Complete');
      expect(first.checkpoint).toBeDefined();
      const sorted = [...keys].sort();
      // The 60 first keys in S3's order are done, whatever order the report had them in.
      expect(first.checkpoint).toBe(sorted[59]);
      const second = await runEngine(plan(b, { inventoryManifest: m, startAfter: first.checkpoint, concurrency: 4 }));
      expect(second.status, second.message).toBe('Complete');
      expect(first.counters.scanned + second.counters.scanned).toBe(keys.length);
      const copies = seen(b, 'CopyObject');
      expect(copies.length).toBe(keys.length);
      expect(new Set(copies).size).toBe(keys.length);
    }, 120_000);

    it.each([
      ['a missing manifest', 'missing', 'InventoryUnreadable'],
      ['a data file whose MD5 does not match', 'md5', 'InvalidInventory'],
      ['an ORC report', 'orc', 'InvalidInventory'],
      ['a manifest that is not JSON', 'notjson', 'InvalidInventory'],
      ['scenario 5: an inventory of another bucket', 'otherbucket', 'InvalidInventory'],
    ])(
      '%s fails the run with a reason naming the report, no object touched',
      async (_what, kind, reason) => {
        const b = await createBucket(s3, 'invbad');
        const keys = ['a.json', 'b.json'];
        await putObjects(s3, b, keys);
        const rows = keys.map((key) => ({ bucket: b, key }));
        let url = `s3://${inv}/${b}/nothing-here/manifest.json`;
        if (kind === 'md5')
          url = await writeInventory(s3, {
            inventoryBucket: inv,
            sourceBucket: b,
            rows,
            path: `${b}/md5`,
            manifest: { files: [{ key: `${b}/config/data/md5-0.csv.gz`, MD5checksum: '0'.repeat(32) }] },
          });
        if (kind === 'orc')
          url = await writeInventory(s3, {
            inventoryBucket: inv,
            sourceBucket: b,
            rows,
            path: `${b}/orc`,
            manifest: { fileFormat: 'ORC' },
          });
        if (kind === 'notjson') {
          url = `s3://${inv}/${b}/notjson/manifest.json`;
          await s3.send(new PutObjectCommand({ Bucket: inv, Key: `${b}/notjson/manifest.json`, Body: '<xml/>' }));
        }
        if (kind === 'otherbucket')
          // The report of another bucket (a typo in the path, a replica's report) that lists the same keys.
          url = await writeInventory(s3, {
            inventoryBucket: inv,
            sourceBucket: `${b}-replica`,
            rows: keys.map((key) => ({ bucket: `${b}-replica`, key })),
            path: `${b}/replica`,
          });
        const result = await runEngine(plan(b, { inventoryManifest: url }));
        expect(result.status).toBe('Failed');
        if (kind === 'otherbucket')
          expect(result.message).toContain(`bucket ${b}-replica, not of the job's bucket ${b}`);
        expect(result.reason).toBe(reason);
        expect(result.retryable).toBe(false);
        expect(result.message).toContain(kind === 'md5' ? `s3://${inv}/${b}/config/data/md5-0.csv.gz` : url);
        const touched = proxy.requests.filter(
          (r) =>
            r.bucket === b && r.key !== undefined && ['HeadObject', 'CopyObject', 'GetObject'].includes(r.operation),
        );
        expect(touched).toEqual([]);
        expect(result.counters.scanned).toBe(0);
      },
      120_000,
    );
  });
});
