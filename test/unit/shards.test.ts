import { describe, expect, it } from 'vitest';
import { compareKeys, inRange, KeySampler, planShards, type Shard } from '../../src/engine/keys/shards.js';

/** Seeded generator so a failing property prints a reproducible case. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

// Characters chosen to hit the orders that differ: ASCII, 2- and 3-byte UTF-8,
// the private use area (U+E000..U+F8FF, above the surrogates in UTF-16) and
// characters above U+FFFF (surrogate pairs in UTF-16, 4 bytes in UTF-8).
const ALPHABET = ['a', 'b', '/', '-', '0', '9', 'é', 'ß', '中', '\uE000', '\uFFFD', '😀', '𝄞', '\u{10FFFF}', ' '];

function randomKey(r: () => number): string {
  const len = 1 + Math.floor(r() * 6);
  let k = '';
  for (let i = 0; i < len; i++) k += ALPHABET[Math.floor(r() * ALPHABET.length)]!;
  return k;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function shardsOf(key: string, shards: Shard[]): number[] {
  return shards.filter((s) => inRange(key, s)).map((s) => s.index);
}

describe('compareKeys', () => {
  it('orders keys like S3 (UTF-8 bytes), where JavaScript string order differs', () => {
    // U+E000 is after every surrogate in UTF-16, but before U+1F600 in UTF-8.
    expect('\uE000' < '😀').toBe(false);
    expect(compareKeys('\uE000', '😀')).toBeLessThan(0);
    expect(byteOrder('\uE000', '😀')).toBeLessThan(0);
  });

  it('agrees with UTF-8 byte order on random keys', () => {
    const r = rng(7);
    const wrong: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const a = randomKey(r);
      const b = randomKey(r);
      if (Math.sign(compareKeys(a, b)) !== Math.sign(byteOrder(a, b)))
        wrong.push(`${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    expect(wrong).toEqual([]);
  }, 30_000);
});

describe('planShards', () => {
  it('partitions the key space: every key in exactly one shard (property, random keys and samples)', () => {
    const r = rng(42);
    const wrong: string[] = [];
    for (let round = 0; round < 200; round++) {
      const sample = Array.from({ length: Math.floor(r() * 50) }, () => randomKey(r));
      const n = 1 + Math.floor(r() * 8);
      const shards = planShards(sample, n);
      expect(shards.length).toBeGreaterThanOrEqual(1);
      expect(shards.length).toBeLessThanOrEqual(n);
      expect(shards[0]!.startAfter).toBe('');
      expect(shards[shards.length - 1]!.endAt).toBeUndefined();
      shards.forEach((s, i) => {
        expect(s.index).toBe(i);
        if (i > 0) expect(s.startAfter).toBe(shards[i - 1]!.endAt);
        if (s.endAt !== undefined) expect(compareKeys(s.startAfter, s.endAt)).toBeLessThan(0);
      });
      for (const key of [...sample, ...Array.from({ length: 100 }, () => randomKey(r))]) {
        if (shardsOf(key, shards).length !== 1) wrong.push(`${JSON.stringify(key)} in ${JSON.stringify(shards)}`);
      }
    }
    expect(wrong).toEqual([]);
  }, 30_000);

  it('a key in the shard by S3 order is listed by that shard: bounds compare in UTF-8 order', () => {
    // With UTF-16 order, "😀" would sort before "\uE000" and land in the first shard.
    const shards = planShards(['\uE000', '😀'], 2);
    expect(shards.map((s) => s.endAt)).toEqual(['\uE000', undefined]);
    expect(shardsOf('😀', shards)).toEqual([1]);
    expect(shardsOf('\uE001', shards)).toEqual([1]);
    expect(shardsOf('\uE000', shards)).toEqual([0]);
  });

  it('balances a skewed key set (90% under one date prefix)', () => {
    const keys: string[] = [];
    for (let d = 1; d <= 30; d++) {
      const day = `logs/2026-11-${String(d).padStart(2, '0')}/`;
      const count = d === 17 ? 90_000 : 345;
      for (let i = 0; i < count; i++) keys.push(`${day}${String(i).padStart(6, '0')}.json`);
    }
    const sampler = new KeySampler(20_000);
    for (const k of keys) sampler.add(k);
    expect(sampler.count).toBe(keys.length);
    const shards = planShards(sampler.sample(), 16);
    expect(shards).toHaveLength(16);
    const sizes = shards.map((s) => keys.filter((k) => inRange(k, s)).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length);
    const mean = keys.length / shards.length;
    expect(Math.max(...sizes) / mean).toBeLessThanOrEqual(1.15);
  }, 30_000);

  it('starts the first shard at the given lower bound and ignores sample keys at or below it', () => {
    const shards = planShards(['a', 'b', 'c', 'd', 'e', 'f'], 2, { startAfter: 'b' });
    expect(shards[0]!.startAfter).toBe('b');
    expect(shards.map((s) => s.endAt)).toEqual(['d', undefined]);
  });

  it('gives fewer shards when the sample has too few keys, and one shard for no sample', () => {
    expect(planShards([], 4)).toEqual([{ index: 0, startAfter: '' }]);
    expect(planShards(['k'], 4)).toEqual([{ index: 0, startAfter: '' }]);
    expect(planShards(['k', 'm'], 4)).toHaveLength(2);
    expect(() => planShards(['a'], 0)).toThrow(RangeError);
  });

  it('weights: a sample key standing for many keys pulls the cuts towards it', () => {
    const shards = planShards(
      [
        { key: 'a', weight: 1 },
        { key: 'b', weight: 100 },
        { key: 'c', weight: 1 },
        { key: 'd', weight: 100 },
      ],
      2,
    );
    expect(shards.map((s) => s.endAt)).toEqual(['b', undefined]);
  });
});
