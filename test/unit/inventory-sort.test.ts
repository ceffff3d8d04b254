// Putting inventory rows into S3's key order with a bounded memory chunk
// (inventory-sort.ts).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sortEntries } from '../../src/engine/inventory-sort.js';
import type { InventoryEntry } from '../../src/engine/inventory.js';
import { compareKeys } from '../../src/engine/shards.js';

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
