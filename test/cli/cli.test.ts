// s3-encrypt as a user runs it: a separate process, flags in the AWS CLI's
// words, a JSON summary, exit codes, a resume file and a report.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createBucket, keyOf, putObjects, ROOT, s3Client } from '../harness/context.js';
import { writeInventory } from '../harness/inventory.js';

const info = inject('seaweed');
let s3: S3Client;
let dir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: info.accessKeyId,
        AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The selection a resume file records for `s3://BUCKET --sse ... conn()` (format 2). */
function selectionFor(bucket: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    bucket,
    prefix: '',
    endpoint: info.s3Endpoint,
    sse: 'AES256',
    sseKmsKeyId: '',
    bucketKeyEnabled: null,
    include: [],
    exclude: [],
    method: 'Auto',
    updateObjectEncryption: null,
    storageClass: '',
    inventoryManifest: '',
    ...extra,
  };
}

const conn = (): string[] => [
  '--endpoint-url',
  info.s3Endpoint,
  '--kms-endpoint-url',
  info.kmsEndpoint,
  '--region',
  info.region,
  '--force-path-style',
];

beforeAll(() => {
  s3 = s3Client(info);
  dir = mkdtempSync(join(inject('workDir'), 'cli-'));
});
afterAll(() => s3.destroy());

describe('s3-encrypt CLI', () => {
  it('encrypts a prefix, prints a JSON summary and exits 0', async () => {
    const bucket = await createBucket(s3, 'cli');
    await putObjects(s3, bucket, ['logs/a', 'logs/b', 'logs/c', 'other/d']);
    const run = await cli([
      `s3://${bucket}/logs/`,
      '--sse',
      'aws:kms',
      '--sse-kms-key-id',
      'alias/test-key-a',
      ...conn(),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as {
      status: string;
      counters: Record<string, number>;
      kmsKeyArn: string;
      objectsPerSecond: number;
    };
    expect(summary.status).toBe('Complete');
    expect(summary.counters).toMatchObject({ scanned: 3, encrypted: 3, failed: 0 });
    expect(summary.kmsKeyArn).toBe(keyOf(info, 'alias/test-key-a').arn);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'logs/b' }))).ServerSideEncryption).toBe(
      'aws:kms',
    );
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'other/d' }))).ServerSideEncryption,
    ).toBeUndefined();
  });

  it('--inventory-manifest takes the objects from an S3 Inventory report instead of listing the bucket', async () => {
    const bucket = await createBucket(s3, 'cliinv');
    await putObjects(s3, bucket, ['logs/a b', 'logs/c+d', 'logs/not-in-report']);
    const manifest = await writeInventory(s3, {
      inventoryBucket: bucket,
      sourceBucket: bucket,
      rows: [
        { bucket, key: 'logs/a b' },
        { bucket, key: 'logs/c+d' },
      ],
      path: 'inventory/cfg',
    });
    const run = await cli([`s3://${bucket}/logs/`, '--sse', 'AES256', '--inventory-manifest', manifest, ...conn()]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { counters: Record<string, number> };
    expect(summary.counters).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    for (const key of ['logs/a b', 'logs/c+d'])
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption).toBe('AES256');
    // Not in the report: not looked at (objects newer than the report are the bucket default encryption's).
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'logs/not-in-report' }))).ServerSideEncryption,
    ).toBeUndefined();
  });

  it('--dryrun changes nothing and reports what would change and its cost', async () => {
    const bucket = await createBucket(s3, 'clidry');
    await putObjects(s3, bucket, ['a', 'b']);
    const run = await cli([`s3://${bucket}`, '--sse', 'AES256', '--dryrun', '--json', ...conn()]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as {
      wouldEncrypt: { objects: number };
      estimate: { requests: { copy: number }; usd: number };
    };
    expect(summary.wouldEncrypt.objects).toBe(2);
    expect(summary.estimate.requests.copy).toBe(2);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'a' }))).ServerSideEncryption).toBeUndefined();
  });

  it('exits 2 with a clear message when the run cannot start', async () => {
    const badFlag = await cli(['s3://x-bucket', '--sse', 'rot13', ...conn()]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--sse/);
    const badUrl = await cli(['not-a-url', '--sse', 'AES256']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/s3:\/\/bucket/);
    const noBucket = await cli(['s3://no-such-bucket-s3eo', '--sse', 'AES256', ...conn()]);
    expect(noBucket.code).toBe(2);
    expect(noBucket.stderr).toMatch(/no-such-bucket-s3eo.*does not exist/);
    const bucket = await createBucket(s3, 'clikey');
    const badKey = await cli([
      `s3://${bucket}`,
      '--sse',
      'aws:kms',
      '--sse-kms-key-id',
      'alias/test-key-disabled',
      ...conn(),
    ]);
    expect(badKey.code).toBe(2);
    expect(JSON.parse(badKey.stdout)).toMatchObject({ status: 'Failed', reason: 'KMSKeyDisabled' });
  });

  it('exits 1 when some objects failed, and writes them to the report', async () => {
    // A real per-object failure: SeaweedFS cannot re-key SSE-KMS objects in place and
    // the engine's verification catches it (server-gaps.ts: seaweedfs-inplace-kms-rekey-is-noop).
    const bucket = await createBucket(s3, 'clifail');
    await putObjects(s3, bucket, ['ok/1', 'ok/2']);
    await putObjects(s3, bucket, ['rekey'], {
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: keyOf(info, 'alias/test-key-b').arn,
    });
    const report = join(dir, 'report.csv');
    const run = await cli([
      `s3://${bucket}`,
      '--sse',
      'aws:kms',
      '--sse-kms-key-id',
      'alias/test-key-a',
      '--report',
      report,
      ...conn(),
    ]);
    expect(run.code, run.stderr).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ counters: { scanned: 3, encrypted: 2, failed: 1 } });
    const lines = readFileSync(report, 'utf8').trim().split('\n');
    // The bucket in the last column: --retry-failed refuses a report of another bucket.
    expect(lines[0]).toBe('key,outcome,detail,operation,code,message,bytes,bucket');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^rekey,failed,,Verify,NotAtTargetAfterWrite,.*,${bucket}$`));
  });

  it('--resume continues from the checkpoint file and --report-all lists every object as JSON lines', async () => {
    const bucket = await createBucket(s3, 'cliresume');
    const keys = Array.from({ length: 20 }, (_, i) => `k/${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, keys);
    const cp = join(dir, 'cp.json');
    // A checkpoint as an interrupted run of the same selection leaves it: the first 10 keys finished.
    writeFileSync(
      cp,
      JSON.stringify({
        version: 2,
        selection: selectionFor(bucket, { sse: 'AES256' }),
        startAfter: keys[9],
        counters: { scanned: 10, encrypted: 10, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 100 },
        updatedAt: new Date().toISOString(),
      }),
    );
    const report = join(dir, 'all.jsonl');
    const run = await cli([
      `s3://${bucket}`,
      '--sse',
      'AES256',
      '--resume',
      cp,
      '--report',
      report,
      '--report-all',
      ...conn(),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { counters: Record<string, number>; checkpoint: string };
    expect(summary.counters).toMatchObject({ scanned: 20, encrypted: 20 });
    expect(summary.checkpoint).toBe(keys[19]);
    // Only the 10 after the checkpoint were touched.
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[0]! }))).ServerSideEncryption,
    ).toBeUndefined();
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[10]! }))).ServerSideEncryption).toBe(
      'AES256',
    );
    const rows = readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; outcome: string });
    expect(rows.map((r) => r.key)).toEqual(keys.slice(10));
    expect(new Set(rows.map((r) => r.outcome))).toEqual(new Set(['encrypted']));
    expect(existsSync(cp)).toBe(true);
    expect((JSON.parse(readFileSync(cp, 'utf8')) as { startAfter: string }).startAfter).toBe(keys[19]);
    // A checkpoint file for another bucket is refused.
    const other = await cli(['s3://some-other-bucket', '--sse', 'AES256', '--resume', cp, ...conn()]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--resume/);
  });

  it('scenario 4: the resume file belongs to its selection: another --sse is refused (exit 2, naming each difference); --restart starts over', async () => {
    const bucket = await createBucket(s3, 'clisel');
    const keys = Array.from({ length: 12 }, (_, i) => `s/${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, keys);
    const cp = join(dir, `${bucket}.json`);
    const first = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', cp, '--json', ...conn()]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'Complete', counters: { scanned: 12, encrypted: 12 } });

    // Today's bug: this resumed after the last key, scanned nothing and exited 0 with every object still AES256.
    const kms = ['--sse', 'aws:kms', '--sse-kms-key-id', 'alias/test-key-a'];
    const other = await cli([`s3://${bucket}/`, ...kms, '--resume', cp, '--json', ...conn()]);
    expect(other.code, other.stdout).toBe(2);
    expect(other.stderr).toMatch(/--sse: file has AES256, this run asks aws:kms/);
    expect(other.stderr).toMatch(/--sse-kms-key-id: file has \(not set\), this run asks alias\/test-key-a/);
    expect(other.stderr).toMatch(/--restart/);
    for (const key of keys)
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption).toBe('AES256');

    const restarted = await cli([`s3://${bucket}/`, ...kms, '--resume', cp, '--restart', '--json', ...conn()]);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(JSON.parse(restarted.stdout)).toMatchObject({ counters: { scanned: 12, encrypted: 12, failed: 0 } });
    for (const key of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ServerSideEncryption).toBe('aws:kms');
      expect(head.SSEKMSKeyId).toBe(keyOf(info, 'alias/test-key-a').arn);
    }
    // The file is the new selection's now: the same flags resume it (nothing left), the old ones are refused.
    const again = await cli([`s3://${bucket}/`, ...kms, '--resume', cp, '--json', ...conn()]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ counters: { scanned: 12, encrypted: 12 } });
    const back = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', cp, ...conn()]);
    expect(back.code).toBe(2);
    expect(back.stderr).toMatch(/--sse: file has aws:kms, this run asks AES256/);

    // A file of the older format records only bucket and prefix: it cannot prove what its keys were finished for.
    const old = join(dir, `${bucket}-old.json`);
    writeFileSync(
      old,
      JSON.stringify({ bucket, prefix: '', startAfter: keys[11], counters: { scanned: 12 }, updatedAt: '2026-12-01' }),
    );
    const fromOld = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', old, ...conn()]);
    expect(fromOld.code).toBe(2);
    expect(fromOld.stderr).toMatch(/older s3-encrypt .*did not record the selection.*add --restart/);
  });

  it("scenario 4: --max-objects counts over the resume file's life, not per run", async () => {
    const bucket = await createBucket(s3, 'climax');
    const keys = Array.from({ length: 20 }, (_, i) => `m/${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, keys);
    const cp = join(dir, `${bucket}.json`);
    const run = async (...extra: string[]): Promise<{ code: number; counters: Record<string, number> }> => {
      const r = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', cp, '--json', ...extra, ...conn()]);
      return { code: r.code, counters: (JSON.parse(r.stdout) as { counters: Record<string, number> }).counters };
    };
    const encrypted = async (): Promise<number> => {
      let n = 0;
      for (const key of keys)
        if ((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption === 'AES256') n++;
      return n;
    };
    expect(await run('--max-objects', '5')).toMatchObject({ code: 0, counters: { scanned: 5 } });
    // 12 over the file's life: 7 more, not 12 more.
    expect(await run('--max-objects', '12')).toMatchObject({ code: 0, counters: { scanned: 12 } });
    expect(await encrypted()).toBe(12);
    // Reached already: nothing is sent.
    const reached = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', cp, '--max-objects', '12', ...conn()]);
    expect(reached.code, reached.stderr).toBe(0);
    expect(reached.stderr).toMatch(/--max-objects 12 is reached already/);
    const nothing = JSON.parse(reached.stdout) as { counters: { scanned: number }; requests: object };
    expect(nothing.counters.scanned).toBe(12);
    expect(nothing.requests).toEqual({});
    expect(await run()).toMatchObject({ code: 0, counters: { scanned: 20, encrypted: 20 } });
    expect(await encrypted()).toBe(20);
  });

  it('scenario 4: multipart sizes S3 cannot take are refused before anything is sent (exit 2, naming the flag)', async () => {
    for (const [flag, size] of [
      ['--multipart-chunksize', '1MiB'],
      ['--multipart-chunksize', '6GiB'],
      ['--multipart-threshold', '5.5GiB'],
    ] as const) {
      const run = await cli(['s3://no-such-bucket-s3eo', '--sse', 'AES256', flag, size, ...conn()]);
      expect(run.code, `${flag} ${size}`).toBe(2);
      expect(run.stderr).toContain(flag);
      expect(run.stderr).not.toMatch(/does not exist/); // refused at parse time, not by S3
    }
  });

  it('writes a report to S3', async () => {
    const bucket = await createBucket(s3, 'clireport');
    await putObjects(s3, bucket, ['x/1']);
    const run = await cli([
      `s3://${bucket}/x/`,
      '--sse',
      'AES256',
      '--report',
      `s3://${bucket}/reports/run.jsonl`,
      '--report-all',
      ...conn(),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'reports/run.jsonl' }));
    expect(JSON.parse((await got.Body!.transformToString()).trim())).toMatchObject({
      key: 'x/1',
      outcome: 'encrypted',
    });
  });
});
