// The CLI's --resume file belongs to its selection (issue 20, scenario 4): which
// differences refuse it and how they are named, what an older file gets, what
// --restart keeps (the open uploads in the same bucket), and the parse-time
// refusal of multipart sizes S3 cannot take. No server needed.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs, type CliArgs } from '../../src/cli/args.js';
import { readResumeFile, ResumeFile, ResumeFileError } from '../../src/cli/resume-file.js';
import { selectionDifferences, selectionOf } from '../../src/cli/selection.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-resume-'));
let n = 0;

function args(...argv: string[]): CliArgs {
  const parsed = parseArgs(argv);
  if (typeof parsed === 'number') throw new Error(`parseArgs(${argv.join(' ')}) exited ${parsed}`);
  return parsed;
}

/** A resume file as `argv` would leave it after a checkpoint at k/0009. */
function fileFor(...argv: string[]): string {
  const path = join(dir, `cp-${n++}.json`);
  const a = args(...argv);
  const f = new ResumeFile(path, selectionOf(a), { abandonedUploads: [], notes: [] });
  f.state = {
    startAfter: 'k/0009',
    counters: { scanned: 10, encrypted: 10, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 1 },
    openUploads: [{ key: 'k/big', uploadId: 'u-1' }],
  };
  f.save();
  return path;
}

describe('the --resume file belongs to its selection', () => {
  it('resumes with the same selection, whatever the pace flags and the order of the globs', () => {
    const path = fileFor('s3://b/p/', '--sse', 'AES256', '--include', '*.log', '--include', '*.txt');
    const start = readResumeFile(
      path,
      selectionOf(
        args('s3://b/p/', '--sse', 'AES256', '--include', '*.txt', '--include', '*.log', '--concurrency', '7'),
      ),
      false,
    );
    expect(start.from?.startAfter).toBe('k/0009');
    expect(start.from?.counters.scanned).toBe(10);
    expect(start.abandonedUploads).toEqual([{ key: 'k/big', uploadId: 'u-1' }]);
  });

  it('refuses another target, key, filter, method, storage class, inventory or endpoint, naming each flag', () => {
    const path = fileFor('s3://b/p/', '--sse', 'AES256', '--exclude', 'tmp/*');
    const cases: [string[], RegExp][] = [
      [['--sse', 'aws:kms'], /--sse: file has AES256, this run asks aws:kms/],
      [
        ['--sse', 'aws:kms', '--sse-kms-key-id', 'alias/k'],
        /--sse-kms-key-id: file has \(not set\), this run asks alias\/k/,
      ],
      [['--sse', 'AES256', '--bucket-key-enabled'], /--bucket-key-enabled: file has \(not set\), this run asks true/],
      [
        ['--sse', 'AES256', '--exclude', 'tmp/*', '--include', 'a*'],
        /--include: file has \(none\), this run asks "a\*"/,
      ],
      [['--sse', 'AES256', '--method', 'Copy'], /--method: file has Auto, this run asks Copy/],
      [
        ['--sse', 'AES256', '--storage-class', 'GLACIER_IR'],
        /--storage-class: file has \(not set\), this run asks GLACIER_IR/,
      ],
      [
        ['--sse', 'AES256', '--inventory-manifest', 's3://i/m.json'],
        /--inventory-manifest: .*this run asks s3:\/\/i\/m\.json/,
      ],
      [
        ['--sse', 'AES256', '--endpoint-url', 'http://127.0.0.1:1'],
        /--endpoint-url: .*this run asks http:\/\/127\.0\.0\.1:1/,
      ],
    ];
    for (const [flags, message] of cases) {
      const run = selectionOf(args('s3://b/p/', ...flags));
      expect(() => readResumeFile(path, run, false), flags.join(' ')).toThrow(ResumeFileError);
      expect(() => readResumeFile(path, run, false), flags.join(' ')).toThrow(message);
      expect(() => readResumeFile(path, run, false)).toThrow(/--restart/);
    }
    // --exclude removed: named too (the file's keys were finished without the excluded ones).
    expect(() => readResumeFile(path, selectionOf(args('s3://b/p/', '--sse', 'AES256')), false)).toThrow(
      /--exclude: file has "tmp\/\*", this run asks \(none\)/,
    );
  });

  it('names every difference at once', () => {
    const file = selectionOf(args('s3://b/p/', '--sse', 'AES256'));
    const run = selectionOf(args('s3://c/q/', '--sse', 'aws:kms', '--exclude', 'x'));
    expect(selectionDifferences(file, run)).toEqual([
      'bucket (s3://BUCKET/…): file has b, this run asks c',
      'prefix (s3://…/PREFIX): file has p/, this run asks q/',
      '--sse: file has AES256, this run asks aws:kms',
      '--exclude: file has (none), this run asks "x"',
    ]);
  });

  it('--restart starts over from the first key, and still aborts the uploads the file left open in this bucket', () => {
    const path = fileFor('s3://b/p/', '--sse', 'AES256');
    const same = readResumeFile(path, selectionOf(args('s3://b/p/', '--sse', 'aws:kms')), true);
    expect(same.from).toBeUndefined();
    expect(same.abandonedUploads).toEqual([{ key: 'k/big', uploadId: 'u-1' }]);
    expect(same.notes.join('\n')).toMatch(/first key/);
    // Another bucket: its uploads cannot be aborted here, and the user is told which they are.
    const other = readResumeFile(path, selectionOf(args('s3://c/p/', '--sse', 'AES256')), true);
    expect(other.abandonedUploads).toEqual([]);
    expect(other.notes.join('\n')).toMatch(/bucket b .*k\/big \(upload id u-1\)/);
    // The same selection: --restart still starts over.
    expect(readResumeFile(path, selectionOf(args('s3://b/p/', '--sse', 'AES256')), true).from).toBeUndefined();
  });

  it('a file of the older format (bucket and prefix only) cannot prove its selection: refused, --restart starts over', () => {
    const path = join(dir, 'old.json');
    writeFileSync(
      path,
      JSON.stringify({
        bucket: 'b',
        prefix: 'p/',
        startAfter: 'k/0009',
        counters: { scanned: 10, encrypted: 10, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 1 },
        updatedAt: '2026-12-01T00:00:00Z',
      }),
    );
    const run = selectionOf(args('s3://b/p/', '--sse', 'AES256'));
    expect(() => readResumeFile(path, run, false)).toThrow(/older s3-encrypt.*did not record the selection.*--restart/);
    expect(readResumeFile(path, run, true).from).toBeUndefined();
  });

  it('a file that is not a resume file is never overwritten, not even with --restart', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'my notes');
    const run = selectionOf(args('s3://b/p/', '--sse', 'AES256'));
    expect(() => readResumeFile(path, run, true)).toThrow(/cannot be read as a resume file/);
    writeFileSync(path, '{"some": "json"}');
    expect(() => readResumeFile(path, run, true)).toThrow(/not an s3-encrypt resume file/);
    expect(readFileSync(path, 'utf8')).toBe('{"some": "json"}');
  });
});

describe('flags refused at parse time (exit 2, naming the flag)', () => {
  const refused = (...argv: string[]): number | CliArgs => parseArgs(['s3://b/p/', '--sse', 'AES256', ...argv]);

  it('multipart sizes S3 cannot take', () => {
    for (const bad of [
      ['--multipart-chunksize', '1MiB'],
      ['--multipart-chunksize', '6GiB'],
      ['--multipart-threshold', '6GiB'],
    ])
      expect(refused(...bad), bad.join(' ')).toBe(2);
    const ok = refused('--multipart-chunksize', '5MiB', '--multipart-threshold', '5GiB');
    expect(typeof ok === 'object' && ok.flags.multipartChunksize).toBe(5 * 1024 ** 2);
  });

  it('combinations: --restart without --resume, --retry-failed with --resume or an inventory', () => {
    expect(refused('--restart')).toBe(2);
    expect(refused('--retry-failed', 'r.csv', '--resume', 'cp.json')).toBe(2);
    expect(refused('--retry-failed', 'r.csv', '--inventory-manifest', 's3://i/m.json')).toBe(2);
  });
});
