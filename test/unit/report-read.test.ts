// Reading a report back for --retry-failed (issue 20, scenario 3): what
// ReportWriter writes comes back key for key, whatever the key holds; a later
// row of a key wins; anything that is not a report is refused with a reason.
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ReportWriter } from '../../src/engine/bookkeeping/report.js';
import { NotAReportError, reportFailures, reportRows } from '../../src/engine/bookkeeping/report-read.js';
import type { Outcome } from '../../src/engine/index.js';

const dir = mkdtempSync(join(tmpdir(), 'report-read-'));
const failed = (key: string): Outcome => ({
  kind: 'failed',
  failure: { key, operation: 'CopyObject', code: 'AccessDenied', message: 'denied, "really"\nsecond line' },
});
const KEYS = ['plain', 'a,b', 'quote"d', 'new\nline', 'cr\rkey', 'ü/日本/🙂', ' lead space', '"', ',', 'x\r\n'];

async function read(path: string): Promise<Awaited<ReturnType<typeof reportFailures>>> {
  return reportFailures(reportRows(createReadStream(path, { highWaterMark: 7 }) as AsyncIterable<Uint8Array>));
}

describe('reading a report back', () => {
  for (const ext of ['csv', 'jsonl']) {
    it(`${ext}: every failed key comes back as written, split across small chunks; the bucket column too`, async () => {
      const path = join(dir, `r.${ext}`);
      const w = new ReportWriter({ destination: path, all: true, bucket: 'bkt' });
      for (const k of KEYS) w.add(k, failed(k));
      w.add('ok', { kind: 'encrypted', method: 'copy', bytes: 1 });
      await w.close();
      const got = await read(path);
      expect(got.keys).toEqual(KEYS);
      expect(got.rows).toBe(KEYS.length + 1);
      expect(got.buckets).toEqual(['bkt']);
    });
  }

  it("a key's last row wins: failed then encrypted (a resumed run) is not retried; encrypted then failed is", async () => {
    const path = join(dir, 'last.jsonl');
    const w = new ReportWriter({ destination: path, all: true });
    w.add('fixed', failed('fixed'));
    w.add('broke', { kind: 'encrypted', method: 'copy', bytes: 1 });
    w.add('fixed', { kind: 'encrypted', method: 'copy', bytes: 1 });
    w.add('broke', failed('broke'));
    w.add('twice', failed('twice'));
    w.add('twice', failed('twice'));
    await w.close();
    const got = await read(path);
    expect(got.keys.sort()).toEqual(['broke', 'twice']);
    expect(got.buckets).toEqual([]); // written without a bucket: the reader cannot tell
  });

  it('an empty failures-only report has no failures', async () => {
    const path = join(dir, 'empty.jsonl');
    writeFileSync(path, '');
    expect(await read(path)).toEqual({ keys: [], rows: 0, buckets: [] });
  });

  it('anything else is not a report', async () => {
    const cases: [string, string | Buffer, RegExp][] = [
      ['notes.txt', 'hello world\n', /header/],
      ['other.csv', 'name,size\na,1\n', /header/],
      ['badoutcome.csv', 'key,outcome\na,exploded\n', /row 2: outcome "exploded"/],
      ['nokey.jsonl', '{"outcome":"failed"}\n', /line 1 has no key/],
      ['broken.jsonl', '{"key":"a","outcome":"failed"}\n{"key":\n', /line 2 is not JSON/],
      ['array.jsonl', '{"key":"a","outcome":"failed"}\n[1,2]\n', /line 2 is not a JSON object/],
      ['r.csv.gz', gzipSync('key,outcome\na,failed\n'), /not UTF-8/],
      ['open.csv', 'key,outcome\n"a,failed\n', /quoted field is not closed/],
    ];
    for (const [name, body, why] of cases) {
      const path = join(dir, name);
      writeFileSync(path, body);
      const p = read(path);
      await expect(p, name).rejects.toThrow(NotAReportError);
      await expect(read(path), name).rejects.toThrow(why);
    }
  });
});
