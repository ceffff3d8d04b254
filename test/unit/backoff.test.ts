import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/controller/backoff.js';

describe('Backoff', () => {
  it('doubles from the first delay up to the cap, and starts again after reset()', () => {
    const b = new Backoff(1000, 30_000);
    expect(Array.from({ length: 7 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });
});
