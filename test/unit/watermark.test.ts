import { describe, expect, it } from 'vitest';
import { Watermark } from '../../src/engine/bookkeeping/watermark.js';

describe('Watermark', () => {
  it('advances only over a finished prefix and commits in listing order', () => {
    const committed: string[] = [];
    const w = new Watermark<number>('a', (k) => committed.push(k));
    const b = w.begin('b');
    const c = w.begin('c');
    const d = w.begin('d');
    w.finish(c, 1);
    expect(w.value).toBe('a');
    expect(committed).toEqual([]);
    w.finish(b, 1);
    expect(w.value).toBe('c');
    expect(committed).toEqual(['b', 'c']);
    expect(w.pending).toBe(1);
    w.finish(d, 1);
    expect(w.value).toBe('d');
    expect(w.pending).toBe(0);
  });
  it('keeps memory bounded over many keys', () => {
    let n = 0;
    const w = new Watermark<number>(undefined, () => n++);
    for (let i = 0; i < 100_000; i++) w.finish(w.begin(String(i).padStart(6, '0')), i);
    expect(n).toBe(100_000);
    expect(w.pending).toBe(0);
    expect((w as unknown as { slots: unknown[] }).slots.length).toBeLessThan(2100);
  });
});
