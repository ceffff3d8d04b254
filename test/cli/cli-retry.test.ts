// s3-encrypt --retry-failed (issue 20, scenario 3, CLI part), on SeaweedFS through
// the fault proxy: a run whose CopyObject is refused for some keys ends with a
// report; a retry from that report looks at exactly those keys (counted at the
// proxy) and says what changed; a report that is missing, unreadable, not a
// report or of another bucket ends the run before any object (exit 2).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { createBucket, putObjects, ROOT, s3Client } from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let dir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: info.accessKeyId, AWS_SECRET_ACCESS_KEY: info.secretAccessKey },
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

const conn = (): string[] => [
  '--endpoint-url',
  proxy.url,
  '--kms-endpoint-url',
  info.kmsEndpoint,
  '--region',
  info.region,
  '--force-path-style',
];

/** Keys of `bucket` the proxy saw `operation` for, from request number `from` on. */
function keysSeen(bucket: string, operation: string, from: number): string[] {
  return [
    ...new Set(
      proxy.requests
        .slice(from)
        .filter((r) => r.bucket === bucket && r.operation === operation && r.key !== undefined)
        .map((r) => r.key!),
    ),
  ].sort();
}

const sseOf = async (bucket: string, key: string): Promise<string | undefined> =>
  (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption;

interface Summary {
  status: string;
  counters: Record<string, number>;
  retry?: Record<string, unknown>;
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 20 });
  dir = mkdtempSync(join(inject('workDir'), 'cli-retry-'));
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('s3-encrypt --retry-failed (SeaweedFS through the fault proxy)', () => {
  it('scenario 3: --retry-failed looks again at exactly the failed keys of a report and says what the retry changed', async () => {
    const bucket = await createBucket(s3, 'retry');
    const keys = Array.from({ length: 30 }, (_, i) => `r/${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, [...keys, 'outside/x']);
    const refused = new Set(['r/004', 'r/013', 'r/021', 'r/027']);
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && refused.has(r.key ?? '')
        ? { status: 403, code: 'AccessDenied', message: 'denied by a test policy' }
        : undefined,
    );
    const report = join(dir, `${bucket}.csv`);
    const first = await cli([`s3://${bucket}/r/`, '--sse', 'AES256', '--report', report, '--json', ...conn()]);
    expect(first.code, first.stderr).toBe(1);
    expect(JSON.parse(first.stdout)).toMatchObject({ counters: { scanned: 30, encrypted: 26, failed: 4 } });

    // Between the runs: r/013 is deleted, r/027 stays refused, the policy lets r/004 and r/021 through.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'r/013' }));
    refused.delete('r/004');
    refused.delete('r/021');
    const from = proxy.requests.length;
    const retryReport = `s3://${bucket}/reports/retry-1.jsonl`;
    const retry = await cli([
      `s3://${bucket}/r/`,
      '--sse',
      'AES256',
      '--retry-failed',
      report,
      '--report',
      retryReport,
      ...conn(),
    ]);
    expect(retry.code, retry.stderr).toBe(1); // r/027 still fails
    const summary = JSON.parse(retry.stdout) as Summary;
    expect(summary.retry).toEqual({
      report,
      failedKeys: 4,
      nowAtTarget: 2,
      stillFailed: 1,
      gone: 1,
      skipped: 0,
      notLookedAt: 0,
    });
    expect(retry.stderr).toMatch(/retried 4 failed keys of .*: 2 now at the target, 1 still failed, 1 gone/);
    // Exactly the failed keys were looked at: no listing, no other key HEADed or copied.
    expect(keysSeen(bucket, 'HeadObject', from)).toEqual(['r/004', 'r/013', 'r/021', 'r/027']);
    expect(keysSeen(bucket, 'CopyObject', from)).toEqual(['r/004', 'r/021', 'r/027']);
    expect(proxy.requests.slice(from).filter((r) => r.bucket === bucket && r.operation === 'ListObjectsV2')).toEqual(
      [],
    );
    expect(await sseOf(bucket, 'r/004')).toBe('AES256');
    expect(await sseOf(bucket, 'r/021')).toBe('AES256');
    expect(await sseOf(bucket, 'r/027')).toBeUndefined();
    expect(await sseOf(bucket, 'outside/x')).toBeUndefined();

    // The retry wrote its own report (to S3): retrying that one after the policy is fixed finishes the job. Given
    // as an operator's report manifest listing it as its one part (what a job's report.destination holds).
    refused.clear();
    const manifest = `reports/job.manifest-0001.json`;
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: manifest,
        Body: JSON.stringify({ job: 'ns/job', parts: [retryReport], writtenAt: new Date().toISOString() }),
      }),
    );
    const last = await cli([
      `s3://${bucket}/r/`,
      '--sse',
      'AES256',
      '--retry-failed',
      `s3://${bucket}/${manifest}`,
      '--json',
      ...conn(),
    ]);
    expect(last.code, last.stderr).toBe(0);
    expect((JSON.parse(last.stdout) as Summary).retry).toMatchObject({ failedKeys: 1, nowAtTarget: 1, stillFailed: 0 });
    expect(await sseOf(bucket, 'r/027')).toBe('AES256');
    proxy.setRule(undefined);
  });

  it('scenario 3: a report that is missing, unreadable, not a report or of another bucket ends the run before any object (exit 2)', async () => {
    const bucket = await createBucket(s3, 'retrybad');
    await putObjects(s3, bucket, ['a']);
    const otherReport = join(dir, 'other-bucket.jsonl');
    writeFileSync(otherReport, `${JSON.stringify({ key: 'a', outcome: 'failed', bucket: 'some-other-bucket' })}\n`);
    const notReport = join(dir, 'notes.txt');
    writeFileSync(notReport, 'remember the milk\n');
    const aDirectory = join(dir, 'a-directory');
    mkdirSync(aDirectory, { recursive: true });
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.csv'), /missing\.csv: no such file/],
      [aDirectory, /a-directory cannot be read: .*EISDIR/],
      [notReport, /notes\.txt is not an s3-encrypt report: its first line is not a report's header/],
      [otherReport, new RegExp(`is a report of bucket some-other-bucket; this run is for bucket ${bucket}`)],
      [`s3://${bucket}/no/such/report.csv`, /GetObject failed: NoSuchKey/],
    ];
    const from = proxy.requests.length;
    for (const [source, message] of cases) {
      const run = await cli([`s3://${bucket}`, '--sse', 'AES256', '--retry-failed', source, ...conn()]);
      expect(run.code, source).toBe(2);
      expect(run.stderr, source).toMatch(message);
      expect(run.stdout, source).toBe('');
    }
    // Not one object was looked at.
    expect(keysSeen(bucket, 'HeadObject', from)).toEqual([]);
    expect(await sseOf(bucket, 'a')).toBeUndefined();
    // Refused combinations, said in --help.
    const withResume = await cli([
      `s3://${bucket}`,
      '--sse',
      'AES256',
      '--retry-failed',
      otherReport,
      '--resume',
      join(dir, 'cp.json'),
      ...conn(),
    ]);
    expect(withResume.code).toBe(2);
    expect(withResume.stderr).toMatch(/--retry-failed cannot be combined with --resume/);
    const help = await cli(['--help']);
    expect(help.stdout).toMatch(/--retry-failed <report>[\s\S]*not\s+with\s+--resume\s+or\s+--inventory-manifest/);
    expect(readFileSync(otherReport, 'utf8')).toContain('some-other-bucket'); // read, never changed
  });
});
