// A shard's listing `(startAfter, endAt]`: the lister and the count beside the
// run stop after endAt in S3's order, without reading the pages after it.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { countObjects, listObjects } from '../../src/engine/keys/lister.js';
import { compareKeys } from '../../src/engine/keys/shards.js';

/** A stand-in S3 that answers ListObjectsV2 over a fixed key set in S3's order, and counts the pages it served. */
function fakeS3(keys: string[]): { s3: S3Client; pages: () => number } {
  const sorted = [...keys].sort(compareKeys);
  let pages = 0;
  const s3 = {
    send: (cmd: unknown): Promise<unknown> => {
      if (!(cmd instanceof ListObjectsV2Command)) throw new Error('only ListObjectsV2 is faked');
      pages++;
      const input = cmd.input;
      const after = input.ContinuationToken ?? input.StartAfter ?? '';
      const max = input.MaxKeys ?? 1000;
      const rest = sorted.filter(
        (k) => k.startsWith(input.Prefix ?? '') && (after === '' || compareKeys(k, after) > 0),
      );
      const page = rest.slice(0, max);
      const truncated = rest.length > max;
      return Promise.resolve({
        Contents: page.map((k) => ({ Key: encodeURIComponent(k), Size: 1 })),
        KeyCount: page.length,
        EncodingType: 'url',
        IsTruncated: truncated,
        ...(truncated ? { NextContinuationToken: page.at(-1) } : {}),
      });
    },
  } as unknown as S3Client;
  return { s3, pages: () => pages };
}

async function list(s3: S3Client, opts: { startAfter?: string; endAt?: string; pageSize?: number }): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listObjects(s3, { bucket: 'b', prefix: 'p/', ...opts })) out.push(o.key);
  return out;
}

describe('shard listing (startAfter, endAt]', () => {
  const keys = Array.from({ length: 50 }, (_, i) => `p/${String(i).padStart(3, '0')}`);

  it('stops after endAt (inclusive) and reads no page after it', async () => {
    const { s3, pages } = fakeS3(keys);
    expect(await list(s3, { endAt: 'p/009', pageSize: 5 })).toEqual(keys.slice(0, 10));
    // Two pages of 5 hold p/000..p/009; the third page shows p/010 > endAt, and the listing ends there.
    expect(pages()).toBe(3);
  });

  it('two shards split at a key list every key once', async () => {
    const { s3 } = fakeS3(keys);
    const a = await list(s3, { endAt: 'p/023', pageSize: 7 });
    const b = await list(s3, { startAfter: 'p/023', pageSize: 7 });
    expect([...a, ...b]).toEqual(keys);
    // An endAt that is not itself a key: the cut is between the keys around it.
    const c = await list(s3, { endAt: 'p/023x', pageSize: 7 });
    const d = await list(s3, { startAfter: 'p/023x', pageSize: 7 });
    expect(c.at(-1)).toBe('p/023');
    expect([...c, ...d]).toEqual(keys);
  });

  it("uses S3's byte order: an emoji key sorts after a private-use key, so it is past an endAt there", async () => {
    // JavaScript's < puts the emoji (a surrogate pair) before U+E000; S3 (UTF-8 bytes) after it.
    const odd = ['p/a', 'p/\uE000', 'p/\u{1F600}'];
    const { s3 } = fakeS3(odd);
    expect(await list(s3, { endAt: 'p/\uE000' })).toEqual(['p/a', 'p/\uE000']);
    expect(await list(s3, { startAfter: 'p/\uE000' })).toEqual(['p/\u{1F600}']);
  });

  it('the count beside the run counts only the shard', async () => {
    const { s3 } = fakeS3(keys);
    expect(await countObjects(s3, { bucket: 'b', prefix: 'p/', endAt: 'p/009' })).toBe(10);
    expect(await countObjects(s3, { bucket: 'b', prefix: 'p/', startAfter: 'p/009', endAt: 'p/019' })).toBe(10);
    expect(await countObjects(s3, { bucket: 'b', prefix: 'p/', startAfter: 'p/019' })).toBe(30);
    expect(await countObjects(s3, { bucket: 'b', prefix: 'p/', endAt: 'p/\u{10FFFF}' })).toBe(50);
  });
});
