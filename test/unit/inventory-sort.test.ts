// Putting inventory rows into S3's key order with a bounded memory chunk
// (inventory-sort.ts), and a spill that would not fit its directory failing
// with a clear reason (issue 20 scenario 7).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobError } from '../../src/engine/s3/errors.js';
import { sortEntries, spillLimitBytes } from '../../src/engine/keys/inventory-sort.js';
import type { InventoryEntry } from '../../src/engine/keys/inventory.js';
import { compareKeys } from '../../src/engine/keys/shards.js';

const tmp = mkdtempSync(join(tmpdir(), 'inv-sort-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// eslint-disable-next-line @typescript-eslint/require-await -- an in-memory stream
async function* stream(entries: InventoryEntry[]): AsyncGenerator<InventoryEntry> {
  yield* entries;
}

async function collect(it: AsyncIterable<InventoryEntry>): Promise<InventoryEntry[]> {
  const out: InventoryEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Keys where JavaScript's `<` and S3's byte order disagree (U+FFFD vs an emoji), and plain ones. */
function keys(n: number, seed: number): string[] {
  let x = seed;
  const rnd = (): number => (x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const alphabet = ['a', 'b', 'Z', '/', ' ', '+', '\u00e9', '\ufffd', '\u{1F600}', '0'];
  return Array.from({ length: n }, () =>
    Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
  );
}

describe('sortEntries', () => {
  it('sorts in S3 order across spilled chunks, each key once, and removes its files', async () => {
    const input = keys(2000, 42).map((key, i) => ({ key, size: i }));
    const sorted = await sortEntries(stream(input), { chunkSize: 97, tmp });
    const spilled = readdirSync(tmp);
    expect(spilled.length, 'chunks were spilled to disk').toBe(1);
    const out = await collect(sorted.entries());
    const distinct = [...new Set(input.map((e) => e.key))].sort(compareKeys);
    expect(out.map((e) => e.key)).toEqual(distinct);
    // The row kept for a repeated key is one of its rows, with its fields.
    for (const e of out) expect(input.some((i) => i.key === e.key && i.size === e.size)).toBe(true);
    sorted.dispose();
    expect(existsSync(join(tmp, spilled[0]!))).toBe(false);
  });

  it('keeps a small report in memory with an exact count', async () => {
    const sorted = await sortEntries(
      stream([{ key: 'b' }, { key: 'a' }, { key: 'b' }, { key: '\u{1F600}' }, { key: '\ufffd' }]),
      { tmp },
    );
    expect(sorted.count).toBe(4);
    expect((await collect(sorted.entries())).map((e) => e.key)).toEqual(['a', 'b', '\ufffd', '\u{1F600}']);
    sorted.dispose();
  });

  it('a failing input leaves no spilled files behind', async () => {
    // eslint-disable-next-line @typescript-eslint/require-await -- an in-memory stream
    async function* failing(): AsyncGenerator<InventoryEntry> {
      for (let i = 0; i < 50; i++) yield { key: `k${i}` };
      throw new Error('MD5 mismatch');
    }
    const before = readdirSync(tmp).length;
    await expect(sortEntries(failing(), { chunkSize: 10, tmp })).rejects.toThrow('MD5 mismatch');
    expect(readdirSync(tmp).length).toBe(before);
  });
});

describe('scenario 7: inventory runs fit their pod', () => {
  const rows = (n: number): InventoryEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      key: `logs/2026/11/${String((i * 7919) % n).padStart(7, '0')}.json.gz`,
      size: i,
      encryptionStatus: 'SSE-KMS',
      bucketKeyStatus: 'ENABLED',
      storageClass: 'STANDARD',
    }));

  it('spills compact rows, every field kept, and counts the bytes', async () => {
    const input = [...rows(500), { key: 'bare' }, { key: 'with "quotes"\nand a newline', size: 0 }];
    const sorted = await sortEntries(stream(input), { chunkSize: 50, tmp, limitBytes: 64 * 1024 * 1024 });
    // A JSON array per row, not an object: under 90 bytes for a 34-character key with every column.
    expect(sorted.spilledBytes / input.length).toBeLessThan(90);
    const out = await collect(sorted.entries());
    expect(out).toEqual([...input].sort((a, b) => compareKeys(a.key, b.key)));
    sorted.dispose();
  });

  it('a sort that would not fit the spill budget fails SpillSpaceExhausted at its first chunk, naming what it needs, and leaves nothing', async () => {
    const input = rows(10_000);
    let read = 0;
    // eslint-disable-next-line @typescript-eslint/require-await -- an in-memory stream
    async function* reading(): AsyncGenerator<InventoryEntry> {
      for (const e of input) {
        read++;
        yield e;
      }
    }
    const before = readdirSync(tmp).length;
    const error = await sortEntries(reading(), {
      chunkSize: 1000,
      tmp,
      // The budget of a 256 KiB volume; the whole report needs about 3 times that.
      limitBytes: 256 * 1024,
      readFraction: () => read / input.length,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    expect(error).toMatchObject({ reason: 'SpillSpaceExhausted' });
    const message = (error as Error).message;
    expect(message).toMatch(/needs about [0-9.]+ MiB of spill space in /);
    expect(message).toContain(tmp);
    expect(message).toContain('1000 rows so far, 10.0% of the report read');
    expect(message).toContain('S3EO_SPILL_LIMIT_MIB=0.25');
    expect(message).toContain('inventorySpill.sizeMiB');
    expect(read, 'failed at the first chunk, not after reading everything').toBe(1000);
    expect(readdirSync(tmp).length).toBe(before);
  });

  it('the free space statfs reports counts too (a TMPDIR volume with no budget set)', async () => {
    const error = await sortEntries(stream(rows(3000)), {
      chunkSize: 1000,
      tmp,
      freeBytes: () => Promise.resolve(10_000),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'SpillSpaceExhausted' });
    expect((error as Error).message).toContain('only 0.0 MiB are left there (no S3EO_SPILL_LIMIT_MIB set)');
  });

  it('S3EO_SPILL_LIMIT_MIB sets the budget', () => {
    expect(spillLimitBytes({ S3EO_SPILL_LIMIT_MIB: '2048' })).toBe(2048 * 1024 * 1024);
    expect(spillLimitBytes({})).toBeUndefined();
    expect(spillLimitBytes({ S3EO_SPILL_LIMIT_MIB: 'lots' })).toBeUndefined();
  });
});
