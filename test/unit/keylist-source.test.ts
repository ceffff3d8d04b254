import { describe, expect, it } from 'vitest';
import { keysOfRun } from '../../src/engine/keys/keylist-source.js';

describe('keysOfRun (the keys of a retry)', () => {
  it('sorts in S3 order, drops duplicates and keys outside the prefix and the shard', () => {
    const keys = ['p/b', 'p/a', 'q/x', 'p/b', 'p/\u{1F600}', 'p/\uE000', 'p/z'];
    expect(keysOfRun({ keys, prefix: 'p/' })).toEqual(['p/a', 'p/b', 'p/z', 'p/\uE000', 'p/\u{1F600}']);
    expect(keysOfRun({ keys, prefix: 'p/', startAfter: 'p/a', endAt: 'p/z' })).toEqual(['p/b', 'p/z']);
  });
  it('an empty list is an empty run', () => {
    expect(keysOfRun({ keys: [], prefix: '' })).toEqual([]);
  });
});
