import { describe, expect, it } from 'vitest';
import { parseCsvLine, parseS3Url } from '../../src/engine/keys/inventory.js';

describe('inventory parsing', () => {
  it('reads quoted CSV fields, doubled quotes and empty fields', () => {
    expect(parseCsvLine('"b","k%2C1","","say ""hi""",x')).toEqual(['b', 'k%2C1', '', 'say "hi"', 'x']);
    expect(parseCsvLine('"a,b","c"')).toEqual(['a,b', 'c']);
    expect(() => parseCsvLine('"open')).toThrow(/unterminated/);
  });

  it('splits s3:// URLs and refuses others', () => {
    expect(parseS3Url('s3://inv/src/cfg/2026-12-01T01-00Z/manifest.json')).toEqual({
      bucket: 'inv',
      key: 'src/cfg/2026-12-01T01-00Z/manifest.json',
    });
    expect(() => parseS3Url('https://inv/manifest.json')).toThrow(/s3:\/\/bucket\/key/);
  });
});
