// The report's file: a write error (disk full) is an error of close(), never an
// unhandled 'error' event that ends the process; temporary files do not stay.
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ReportWriter } from '../../src/engine/bookkeeping/report.js';

describe('report file', () => {
  it('a full disk fails close() with the path, and nothing is thrown at the process', async () => {
    if (!existsSync('/dev/full')) throw new Error('this test needs /dev/full (Linux) to simulate a full disk');
    const report = new ReportWriter({ destination: '/dev/full', all: true, format: 'jsonl' });
    for (let i = 0; i < 2000; i++) report.add(`k/${i}`, { kind: 'encrypted', method: 'copy', bytes: 1 });
    await new Promise((r) => setTimeout(r, 50)); // let the write fail while the run goes on
    await expect(report.close()).rejects.toThrow(/\/dev\/full.*(ENOSPC|no space)/i);
  });

  it('an s3:// report given up (dispose) leaves no temporary directory', () => {
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith('s3eo-report-')).length;
    const report = new ReportWriter({ destination: 's3://bucket/report.csv', all: true });
    report.add('k', { kind: 'alreadyEncrypted' });
    report.dispose();
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('s3eo-report-')).length).toBe(before);
  });
});
