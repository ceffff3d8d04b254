// The engine against a real S3 server with real SSE-KMS (SeaweedFS + local-kms):
// keys that are hard to list, prefix boundaries, idempotence, resume, dry run
// and job-level errors.
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Plan } from '../../src/engine/index.js';
import { connectionFor, createBucket, keyOf, putObjects, s3Client, enginePlan } from '../harness/context.js';
import { proxyFor } from './safety-support.js';

const info = inject('seaweed');
let s3: S3Client;

function plan(bucket: string, extra: Partial<Plan> = {}): Plan {
  return enginePlan(info, bucket, { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' }, extra);
}

async function head(bucket: string, key: string): Promise<HeadObjectCommandOutput> {
  return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

function comparable(h: HeadObjectCommandOutput): Record<string, unknown> {
  const { $metadata: _m, ...rest } = h;
  return rest;
}

beforeAll(() => {
  s3 = s3Client(info);
});
afterAll(() => s3.destroy());

describe('engine on SeaweedFS', () => {
  const keyA = () => keyOf(info, 'alias/test-key-a');

  it('round-trips keys with spaces, +, %, unicode; zero-byte objects', async () => {
    const bucket = await createBucket(s3, 'keys');
    const keys = ['a b.txt', 'a+b.txt', 'pct%20sign', 'ünïcødé/файл', 'q?x=1&y', 'empty'];
    for (const key of keys) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key === 'empty' ? '' : key }));
    }
    const result = await runEngine(plan(bucket));
    expect(result.status).toBe('Complete');
    expect(result.recentFailures).toEqual([]);
    expect(result.counters).toMatchObject({ scanned: keys.length, encrypted: keys.length, failed: 0 });
    for (const key of keys) {
      const h = await head(bucket, key);
      expect(h.ServerSideEncryption, key).toBe('aws:kms');
      expect([keyA().arn, keyA().keyId], key).toContain(h.SSEKMSKeyId);
    }
  });

  it('SeaweedFS gap: control characters in keys and dir/ markers cannot be copied in place; they fail visibly, never silently', async () => {
    // SeaweedFS answers CopyObject of a key with a tab or newline with 500 InternalError, and
    // treats "dir/" as a directory that CopyObject cannot find. AWS copies both (see the moto test).
    const bucket = await createBucket(s3, 'ctrl');
    const keys = ['tab\there', 'nl\nkey', 'dir/'];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '' }));
    const result = await runEngine(plan(bucket));
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 3, failed: 3, encrypted: 0 });
    expect(result.recentFailures.map((f) => f.key).sort()).toEqual([...keys].sort());
  });

  it('SeaweedFS gap: an in-place KMS re-key answers 200 but changes nothing; verification fails the object instead of counting it', async () => {
    // test/harness/server-gaps.ts: seaweedfs-inplace-kms-rekey-is-noop. On AWS (and moto) the copy re-keys.
    const bucket = await createBucket(s3, 'rekey');
    const keyB = keyOf(info, 'alias/test-key-b');
    await putObjects(s3, bucket, ['r/1', 'r/2'], { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyB.arn });
    const result = await runEngine(plan(bucket));
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 0, failed: 2 });
    expect(result.recentFailures[0]).toMatchObject({ operation: 'Verify', code: 'NotAtTargetAfterWrite' });
    expect(result.recentFailures[0]?.message).toContain(keyB.arn);
    expect((await head(bucket, 'r/1')).SSEKMSKeyId).toBe(keyB.arn);
  });

  it('never replaces a concurrent overwrite with stale data: the copy is conditional, the new object is looked at again', async () => {
    // SeaweedFS honours x-amz-copy-source-if-match (moto ignores it: server-gaps.ts).
    const bucket = await createBucket(s3, 'race');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'hot', Body: 'old data', Metadata: { v: '1' } }));
    // The writer's PUT lands exactly between our HEAD and our copy: the fault proxy
    // runs it just before it forwards the copy.
    const proxy = await proxyFor(info.s3Endpoint);
    let overwritten = false;
    proxy.hook({
      match: (r) => r.operation === 'CopyObject' && r.key === 'hot',
      times: 1,
      before: async () => {
        overwritten = true;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'hot', Body: 'new data', Metadata: { v: '2' } }));
      },
    });
    const result = await runEngine({
      ...plan(bucket),
      connection: connectionFor(info, { endpoint: proxy.url }),
    }).finally(() => proxy.stop());
    expect(overwritten).toBe(true);
    expect(result.counters).toMatchObject({ scanned: 1, encrypted: 1, failed: 0 });
    expect(result.requests.HeadObject).toBeGreaterThanOrEqual(2);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'hot' }));
    expect(await got.Body?.transformToString()).toBe('new data');
    expect(got.Metadata).toEqual({ v: '2' });
    expect(got.ServerSideEncryption).toBe('aws:kms');
  });

  it('honours the prefix boundary: data/ never touches data-old/', async () => {
    const bucket = await createBucket(s3, 'prefix');
    await putObjects(s3, bucket, ['data/1', 'data/2', 'data-old/1', 'dat', 'data']);
    const result = await runEngine(plan(bucket, { prefix: 'data/' }));
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 2 });
    for (const key of ['data-old/1', 'dat', 'data']) expect((await head(bucket, key)).SSEKMSKeyId, key).toBeUndefined();
  });

  it('does not rewrite objects already at the target (LastModified and ETag unchanged)', async () => {
    const bucket = await createBucket(s3, 'idem');
    await putObjects(s3, bucket, ['x/1', 'x/2', 'x/3'], { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA().arn });
    await putObjects(s3, bucket, ['x/4']);
    const before = await Promise.all(['x/1', 'x/2', 'x/3'].map((k) => head(bucket, k)));
    await new Promise((r) => setTimeout(r, 1100));
    const result = await runEngine(plan(bucket));
    expect(result.counters).toMatchObject({ scanned: 4, encrypted: 1, alreadyEncrypted: 3 });
    const after = await Promise.all(['x/1', 'x/2', 'x/3'].map((k) => head(bucket, k)));
    after.forEach((h, i) => {
      expect(h.LastModified).toEqual(before[i]?.LastModified);
      expect(h.ETag).toBe(before[i]?.ETag);
    });
    // A second run finds nothing to do.
    const again = await runEngine(plan(bucket));
    expect(again.counters).toMatchObject({ scanned: 4, encrypted: 0, alreadyEncrypted: 4 });
  });

  it('resumes from the checkpoint of an aborted run: every object encrypted exactly once, counters add up', async () => {
    const bucket = await createBucket(s3, 'resume');
    const keys = Array.from({ length: 300 }, (_, i) => `r/${String(i).padStart(4, '0')}`);
    await putObjects(s3, bucket, keys);
    const stop = new AbortController();
    let copies = 0;
    const first = await runEngine(plan(bucket, { concurrency: 4 }), {
      signal: stop.signal,
      observer: (e) => {
        if (e.operation === 'CopyObject' && !e.error && ++copies === 120) stop.abort();
      },
    });
    expect(first.status).toBe('Stopped');
    expect(first.checkpoint).toBeDefined();
    // The counters under the checkpoint (saved with it); progress also counts the objects finished after it.
    const done = first.committed.counters.scanned;
    expect(first.counters.scanned).toBeGreaterThanOrEqual(done);
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(keys.length);
    // Every key up to the checkpoint is finished.
    expect(first.checkpoint).toBe(keys[done - 1]);

    let resumedCopies = 0;
    const second = await runEngine(plan(bucket, { startAfter: first.checkpoint }), {
      observer: (e) => {
        if (e.operation === 'CopyObject' && !e.error) resumedCopies++;
      },
    });
    expect(second.status).toBe('Complete');
    expect(first.committed.counters.scanned + second.counters.scanned).toBe(keys.length);
    // Copies beyond the checkpoint that finished before the stop are found at the target, not redone.
    expect(copies + resumedCopies).toBe(keys.length);
    expect(second.counters.encrypted + second.counters.alreadyEncrypted).toBe(second.counters.scanned);
    for (const key of keys) expect((await head(bucket, key)).ServerSideEncryption, key).toBe('aws:kms');
  });

  it('a dry run changes nothing and counts what would change', async () => {
    const bucket = await createBucket(s3, 'dry');
    await putObjects(s3, bucket, ['d/1', 'd/2']);
    await putObjects(s3, bucket, ['d/3'], { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyA().arn });
    const before = await Promise.all(['d/1', 'd/2', 'd/3'].map((k) => head(bucket, k)));
    const result = await runEngine(plan(bucket, { dryRun: true }));
    expect(result.status).toBe('Complete');
    expect(result.planned.objects).toBe(2);
    expect(result.counters).toMatchObject({ scanned: 3, encrypted: 0, alreadyEncrypted: 1 });
    expect(result.estimate?.requests.copy).toBe(2);
    const after = await Promise.all(['d/1', 'd/2', 'd/3'].map((k) => head(bucket, k)));
    after.forEach((h, i) => expect(comparable(h)).toEqual(comparable(before[i]!)));
  });

  it('include/exclude globs and maxObjects limit what is touched', async () => {
    const bucket = await createBucket(s3, 'glob');
    await putObjects(s3, bucket, ['g/a.json', 'g/b.json', 'g/c.txt', 'g/tmp/d.json']);
    const result = await runEngine(plan(bucket, { prefix: 'g/', include: ['*.json'], exclude: ['tmp/*'] }));
    expect(result.counters).toMatchObject({ scanned: 4, encrypted: 2, skipped: 2 });
    expect(result.skippedByReason.filtered).toBe(2);
    expect((await head(bucket, 'g/c.txt')).SSEKMSKeyId).toBeUndefined();
    const limited = await runEngine(plan(bucket, { prefix: 'g/', maxObjects: 1, target: { type: 'AES256' } }));
    expect(limited.counters.scanned).toBe(1);
  });

  it('a missing bucket fails the run before any object, with a clear reason', async () => {
    const result = await runEngine(plan('no-such-bucket-s3eo'));
    expect(result).toMatchObject({ status: 'Failed', reason: 'BucketNotFound' });
    expect(result.message).toContain('no-such-bucket-s3eo');
  });

  it('a disabled or unknown KMS key stops the run before any object is touched', async () => {
    const bucket = await createBucket(s3, 'badkey');
    await putObjects(s3, bucket, ['k/1']);
    const before = await head(bucket, 'k/1');
    const disabled = await runEngine(
      plan(bucket, { target: { type: 'aws:kms', kmsKeyId: 'alias/test-key-disabled' } }),
    );
    expect(disabled).toMatchObject({ status: 'Failed', reason: 'KMSKeyDisabled' });
    expect(disabled.counters.scanned).toBe(0);
    const unknown = await runEngine(plan(bucket, { target: { type: 'aws:kms', kmsKeyId: 'alias/does-not-exist' } }));
    expect(unknown).toMatchObject({ status: 'Failed', reason: 'KMSKeyNotFound' });
    expect(comparable(await head(bucket, 'k/1'))).toEqual(comparable(before));
  });
});
