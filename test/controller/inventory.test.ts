// spec.source.inventory end to end (issue 11): the operator takes a job's objects
// from an S3 Inventory report instead of listing the bucket, plans its shards from
// the report, and fails clearly on a bad report. The S3 traffic goes through the
// fault proxy, so "no ListObjectsV2" and "no HEAD" are counted on the wire.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  kubectl,
  putObjects,
  s3Client,
  type OperatorProcess,
  startOperator,
  waitUntil,
} from '../harness/context.js';
import { writeInventory, type InventoryRow } from '../harness/inventory.js';
import { applyJob, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;
let inv: string;

interface Job {
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    progress?: Record<string, number>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    shards?: { index: number; phase: string; progress?: Record<string, number> }[];
    shardPlan?: { sampleRequests?: number; estimatedObjects?: number };
    inventory?: { manifest: string; createdAt?: string; objects?: number } | null;
  };
}

const waitFor = (name: string, condition: string, timeout = 240): Promise<Job> =>
  waitForCondition<Job>(namespace, name, condition, { timeoutS: timeout, logs: () => operator.logTail(40) });

function apply(name: string, bucket: string, spec: Record<string, unknown>): Promise<void> {
  return applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { ...spec },
  );
}

/** Requests of one operation on the bucket that reached the server. */
function seen(bucket: string, operation: string): string[] {
  return proxy.requests
    .filter((r) => r.bucket === bucket && r.operation === operation && r.upstreamStatus !== undefined)
    .map((r) => r.key ?? '');
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 17 });
  namespace = await createNamespace('inventory');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
  inv = await createBucket(s3, 'invreports');
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('spec.source.inventory (SeaweedFS through the fault proxy)', () => {
  it('a 2-shard job from a CSV inventory completes with every object at the target and no ListObjectsV2 at all', async () => {
    const bucket = await createBucket(s3, 'invjob');
    // Skewed: most keys under one day. Some already SSE-S3 (and the report says so).
    const plain = Array.from(
      { length: 300 },
      (_, i) => `logs/2026-11-${i < 240 ? '05' : '0' + String(1 + (i % 4))}/${randomBytes(4).toString('hex')} x+y.json`,
    );
    const sse = Array.from({ length: 60 }, (_, i) => `logs/2026-11-06/${String(i).padStart(3, '0')}.json`);
    await putObjects(s3, bucket, [...plain, 'outside/o.json', 'logs/zz-other-bucket-row.json']);
    await putObjects(s3, bucket, sse, { ServerSideEncryption: 'AES256' });
    const rows: InventoryRow[] = [
      ...plain.map((key) => ({ bucket, key })),
      ...sse.map((key) => ({ bucket, key, encryptionStatus: 'SSE-S3' })),
      { bucket, key: 'outside/o.json' },
      { bucket: 'some-other-bucket', key: 'logs/zz-other-bucket-row.json' },
    ];
    const manifest = await writeInventory(s3, { inventoryBucket: inv, sourceBucket: bucket, rows, files: 3 });

    await apply('inv2', bucket, { prefix: 'logs/', parallelism: 2, source: { inventory: { manifest } } });
    const j = await waitFor('inv2', 'Complete');
    const total = plain.length + sse.length;
    expect(j.status?.shards?.map((s) => s.phase)).toEqual(['Complete', 'Complete']);
    expect(j.status?.progress).toMatchObject({
      scanned: total,
      encrypted: plain.length,
      alreadyEncrypted: sse.length,
      failed: 0,
    });
    for (const c of ['scanned', 'encrypted', 'alreadyEncrypted'])
      expect(j.status?.shards?.reduce((a, s) => a + (s.progress?.[c] ?? 0), 0)).toBe(j.status?.progress?.[c]);
    // Balanced from the report's keys (no sampling LIST).
    const sizes = (j.status?.shards ?? []).map((s) => s.progress?.scanned ?? 0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1.5 * (total / 2));
    expect(j.status?.inventory).toEqual({ manifest, createdAt: '2026-12-01T01:00:00.000Z', objects: total });
    const complete = j.status?.conditions?.find((c) => c.type === 'Complete');
    expect(complete?.message).toContain('made 2026-12-01T01:00:00.000Z');

    expect(seen(bucket, 'ListObjectsV2'), 'ListObjectsV2 on the source bucket').toEqual([]);
    expect(seen(bucket, 'ListObjects')).toEqual([]);
    // A row proves nothing on its own (issue 20 scenario 11a): SSE-S3 rows are HEADed too.
    const heads = new Set(seen(bucket, 'HeadObject'));
    expect(
      sse.filter((k) => !heads.has(k)),
      'SSE-S3 rows not HEADed',
    ).toEqual([]);
    const copies = seen(bucket, 'CopyObject');
    expect(copies.length).toBe(plain.length);
    expect(new Set(copies)).toEqual(new Set(plain));
    // Rows of another bucket and outside the prefix: never touched.
    const touched = new Set(proxy.requests.filter((r) => r.bucket === bucket).map((r) => r.key));
    expect(touched.has('outside/o.json')).toBe(false);
    expect(touched.has('logs/zz-other-bucket-row.json')).toBe(false);
    for (const key of [...plain, ...sse]) {
      const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(h.ServerSideEncryption, key).toBe('AES256');
    }
  }, 600_000);

  it.each([
    [1, 'a missing manifest', 'missing', 'InventoryUnreadable'],
    [2, 'a missing manifest', 'missing', 'InventoryUnreadable'],
    [1, 'a data file that does not match its MD5', 'md5', 'InvalidInventory'],
    [2, 'a Parquet report', 'parquet', 'InvalidInventory'],
    [1, 'scenario 5: an inventory of another bucket', 'otherbucket', 'InvalidInventory'],
    [2, 'scenario 5: an inventory of another bucket', 'otherbucket', 'InvalidInventory'],
  ])(
    'parallelism %i, %s: Failed with a reason naming the report, no object touched',
    async (parallelism, _what, kind, reason) => {
      const bucket = await createBucket(s3, 'invbad');
      const keys = Array.from({ length: 20 }, (_, i) => `logs/${i}.json`);
      await putObjects(s3, bucket, keys);
      const rows = keys.map((key) => ({ bucket, key }));
      let manifest = `s3://${inv}/${bucket}/not-there/manifest.json`;
      let names = manifest;
      if (kind === 'md5') {
        manifest = await writeInventory(s3, {
          inventoryBucket: inv,
          sourceBucket: bucket,
          rows,
          path: `${bucket}/md5`,
          files: 1,
          manifest: { files: [{ key: `${bucket}/config/data/md5-0.csv.gz`, MD5checksum: 'f'.repeat(32) }] },
        });
        names = `s3://${inv}/${bucket}/config/data/md5-0.csv.gz`;
      }
      if (kind === 'parquet') {
        manifest = await writeInventory(s3, {
          inventoryBucket: inv,
          sourceBucket: bucket,
          rows,
          path: `${bucket}/parquet`,
          manifest: { fileFormat: 'Parquet' },
        });
        names = manifest;
      }
      if (kind === 'otherbucket') {
        // The report of another bucket (a replica's) listing the same keys: named, with both buckets.
        manifest = await writeInventory(s3, {
          inventoryBucket: inv,
          sourceBucket: `${bucket}-replica`,
          rows: keys.map((key) => ({ bucket: `${bucket}-replica`, key })),
          path: `${bucket}/replica`,
        });
        names = `${manifest} is a report of bucket ${bucket}-replica, not of the job's bucket ${bucket}`;
      }
      const name = `bad-${kind}-${parallelism}`;
      await apply(name, bucket, { prefix: 'logs/', parallelism, source: { inventory: { manifest } } });
      const j = await waitFor(name, 'Failed');
      const failed = j.status?.conditions?.find((c) => c.type === 'Failed');
      expect(failed?.reason).toBe(reason);
      expect(failed?.message).toContain(names);
      const touched = proxy.requests.filter(
        (r) => r.bucket === bucket && ['HeadObject', 'CopyObject', 'GetObject', 'ListObjectsV2'].includes(r.operation),
      );
      expect(touched).toEqual([]);
      expect(j.status?.progress?.scanned ?? 0).toBe(0);
    },
    300_000,
  );
});

describe('scenario 1: a new or removed inventory is a new selection (SeaweedFS through the fault proxy)', () => {
  /** The job once Complete for generation `gen` (a Complete condition of an older generation does not count). */
  const completeAt = (name: string, gen: number): Promise<Job & { metadata?: { generation?: number } }> =>
    waitUntil(
      `${name} Complete for generation ${gen}`,
      async () => {
        const j = (await getJob(namespace, name)) as unknown as Job & { status?: { observedGeneration?: number } };
        return j.status?.phase === 'Complete' && j.status.observedGeneration === gen ? j : undefined;
      },
      180_000,
      () => operator.logTail(40),
    );
  const patch = (name: string, spec: object): Promise<unknown> =>
    kubectl(['patch', 'ej', name, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec })]);
  const sseOf = async (bucket: string, key: string): Promise<string | undefined> =>
    (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption;

  it.each([1, 2])(
    'scenario 1: parallelism %i: a key added to a newer report, then a key below the checkpoint with the report removed, each ends at the target',
    async (parallelism) => {
      const bucket = await createBucket(s3, 'invnew');
      const keys = 'abcdefghij'.split('').map((c) => `logs/${c}`);
      await putObjects(s3, bucket, keys);
      const rowsOf = (ks: string[]): InventoryRow[] => ks.map((key) => ({ bucket, key }));
      const m1 = await writeInventory(s3, {
        inventoryBucket: inv,
        sourceBucket: bucket,
        rows: rowsOf(keys),
        path: `${bucket}/m1`,
      });
      const name = `newinv-${parallelism}`;
      await apply(name, bucket, { prefix: 'logs/', parallelism, source: { inventory: { manifest: m1 } } });
      const first = await completeAt(name, 1);
      expect(first.status?.progress).toMatchObject({ scanned: 10, encrypted: 10, failed: 0 });

      // b2 sorts below the last key the first run finished; only the newer report lists it.
      await putObjects(s3, bucket, ['logs/b2']);
      const m2 = await writeInventory(s3, {
        inventoryBucket: inv,
        sourceBucket: bucket,
        rows: rowsOf([...keys, 'logs/b2']),
        path: `${bucket}/m2`,
      });
      await patch(name, { source: { inventory: { manifest: m2 } } });
      const second = await completeAt(name, 2);
      expect(await sseOf(bucket, 'logs/b2')).toBe('AES256');
      expect(second.status?.inventory?.manifest).toBe(m2);
      // Looked at again from the beginning: the ten are counted at the target, not rewritten.
      expect(second.status?.progress).toMatchObject({ scanned: 11, encrypted: 1, alreadyEncrypted: 10, failed: 0 });

      // No report at all now: a LIST finds b3, which no report lists.
      await putObjects(s3, bucket, ['logs/b3']);
      await patch(name, { source: null });
      const third = await completeAt(name, 3);
      expect(await sseOf(bucket, 'logs/b3')).toBe('AES256');
      expect(third.status?.progress).toMatchObject({ scanned: 12, encrypted: 1, alreadyEncrypted: 11, failed: 0 });
      expect(third.status?.inventory ?? undefined).toBeUndefined();
    },
    600_000,
  );
});
