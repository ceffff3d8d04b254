import { describe, expect, it } from 'vitest';
import { choosePartSize, copySource } from '../../src/engine/object/copy.js';
import { keyFilter } from '../../src/engine/keys/filter.js';
import { decodeS3Url } from '../../src/engine/keys/lister.js';
import { validatePlan } from '../../src/engine/validate.js';
import { setCondition } from '../../src/controller/conditions.js';
import { WorkQueue } from '../../src/controller/workqueue.js';
import type { ObjectState } from '../../src/engine/object/inspect.js';

describe('keys and filters', () => {
  it('decodes EncodingType=url keys (space as +)', () => {
    expect(decodeS3Url('a+b%2Bc%25d%0Ae%C3%A9')).toBe('a b+c%d\ne\u00e9');
  });
  it('builds a copy source with the key encoded per segment, the version pinned only when asked (multipart parts)', () => {
    const s: ObjectState = {
      key: 'a b/c+d%/é',
      size: 1,
      etag: '',
      storageClass: 'STANDARD',
      metadata: {},
      versionId: 'v1',
    };
    expect(copySource('bkt', s, true)).toBe('bkt/a%20b/c%2Bd%25/%C3%A9?versionId=v1');
    expect(copySource('bkt', s)).toBe('bkt/a%20b/c%2Bd%25/%C3%A9');
  });
  it('matches include/exclude globs relative to the prefix, * crossing /', () => {
    const f = keyFilter('logs/', ['*.json'], ['tmp/*']);
    expect(f('logs/a/b.json')).toBe(true);
    expect(f('logs/a/b.txt')).toBe(false);
    expect(f('logs/tmp/b.json')).toBe(false);
    expect(keyFilter('', [], [])('anything')).toBe(true);
  });
});

describe('part size', () => {
  it("keeps the writer's part size and respects S3's limits", () => {
    expect(choosePartSize(100 * 2 ** 20, 8 * 2 ** 20, 64 * 2 ** 20)).toBe(8 * 2 ** 20);
    expect(choosePartSize(100 * 2 ** 20, undefined, 64 * 2 ** 20)).toBe(64 * 2 ** 20);
    expect(choosePartSize(10_000 * 2 ** 30, 8 * 2 ** 20, 64 * 2 ** 20)).toBe(Math.ceil((10_000 * 2 ** 30) / 10_000));
  });
});

describe('validatePlan', () => {
  const base = { bucket: 'my-bucket', prefix: '', target: { type: 'aws:kms' as const }, connection: {} };
  it('accepts a good plan', () => expect(() => validatePlan(base)).not.toThrow());
  it.each([
    [{ bucket: 'A_B' }, /bucket/],
    [{ target: { type: 'AES256' as const, kmsKeyId: 'k' } }, /kmsKeyId/],
    [{ target: { type: 'aws:foo' as 'AES256' } }, /encryption.type/],
    [{ concurrency: 0 }, /concurrency/],
    [{ connection: { endpoint: 'ftp://x' } }, /connection.endpoint/],
    [{ connection: { endpoint: 'not a url' } }, /connection.endpoint/],
  ])('refuses %j naming the field', (patch, re) => {
    expect(() => validatePlan({ ...base, ...patch })).toThrow(re);
  });
});

describe('conditions', () => {
  it('moves lastTransitionTime only when the status flips', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    let c = setCondition(undefined, { type: 'Progressing', status: 'True', reason: 'A', message: '' }, t1);
    c = setCondition(c, { type: 'Progressing', status: 'True', reason: 'B', message: 'x' }, t2);
    expect(c[0]).toMatchObject({ reason: 'B', lastTransitionTime: '2026-01-01T00:00:00Z' });
    c = setCondition(c, { type: 'Progressing', status: 'False', reason: 'C', message: '' }, t2);
    expect(c[0]?.lastTransitionTime).toBe('2026-01-01T00:01:00Z');
  });
});

describe('WorkQueue', () => {
  it('de-duplicates keys and never hands one key to two workers', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.depth).toBe(2);
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a'); // while processing: marked dirty, not queued twice
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('b');
    q.done('a');
    expect(await q.get()).toBe('a');
    q.shutdown();
    expect(await q.get()).toBeUndefined();
  });
});

describe('Budget', () => {
  it('caps objects in flight across users and hands slots on in order', async () => {
    const { Budget } = await import('../../src/engine/bookkeeping/budget.js');
    const b = new Budget(2);
    await b.acquire();
    await b.acquire();
    const order: number[] = [];
    const third = b.acquire().then(() => order.push(3));
    const fourth = b.acquire().then(() => order.push(4));
    await Promise.resolve();
    expect(order).toEqual([]);
    b.release();
    await third;
    expect(order).toEqual([3]);
    expect(b.inFlight).toBe(2);
    b.release();
    await fourth;
    b.release();
    b.release();
    expect(b.inFlight).toBe(0);
    expect(() => new Budget(0)).toThrow(/at least 1/);
  });
});

describe('isAwsEndpoint', () => {
  it('knows AWS endpoints and nothing else', async () => {
    const { isAwsEndpoint } = await import('../../src/engine/validate.js');
    expect(isAwsEndpoint(undefined)).toBe(true);
    expect(isAwsEndpoint('https://s3.eu-west-1.amazonaws.com')).toBe(true);
    expect(isAwsEndpoint('https://s3.cn-north-1.amazonaws.com.cn')).toBe(true);
    expect(isAwsEndpoint('http://127.0.0.1:8333')).toBe(false);
    expect(isAwsEndpoint('https://amazonaws.com.evil.example')).toBe(false);
    expect(isAwsEndpoint('https://notamazonaws.com')).toBe(false);
  });
});
