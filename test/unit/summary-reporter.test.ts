// The closing line "tests: N passed, N failed, N skipped" against vitest's own
// counts, on a run of fixtures that fail in every way a file can: a failing
// test, a file that does not load, a suite body that throws, a failing
// beforeAll, an unhandled rejection (test/unit/fixtures/summary).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'unit', 'fixtures', 'summary');

interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; status: string; assertionResults: { status: string }[] }[];
}

describe('summary reporter', () => {
  it('counts a failed test, each file that failed without one, and each unhandled error as failures', () => {
    const report = join(mkdtempSync(join(tmpdir(), 's3eo-summary-')), 'report.json');
    // A vitest of its own, not this worker's: drop the variables that tell a process it is a worker.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'TEST'),
    );
    const child = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', FIXTURES, `--outputFile.json=${report}`],
      { cwd: FIXTURES, env, encoding: 'utf8', timeout: 120_000 },
    );
    expect(child.status, child.stderr).toBe(1);
    const lines = child.stdout.split('\n').filter((l) => l.startsWith('tests: '));
    expect(lines).toHaveLength(1);

    const json = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
    const failedFilesWithoutFailedTest = json.testResults.filter(
      (f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed'),
    );
    expect(failedFilesWithoutFailedTest.map((f) => f.name.split('/').pop()).sort()).toEqual([
      'describe-error.fixture.ts',
      'hook-error.fixture.ts',
      'load-error.fixture.ts',
    ]);
    const unhandledErrors = 1; // unhandled.fixture.ts; vitest's JSON report does not count these
    const failed = json.numFailedTests + failedFilesWithoutFailedTest.length + unhandledErrors;
    const skipped = json.numPendingTests + json.numTodoTests;
    expect(lines[0]).toBe(`tests: ${json.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
    expect(lines[0]).toBe('tests: 4 passed, 5 failed, 3 skipped');
  }, 120_000);
});
