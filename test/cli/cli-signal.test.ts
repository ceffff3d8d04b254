// s3-encrypt stopped from outside (issue 9, scenarios 11 and 13; review #12, #21), on
// SeaweedFS (+ local-kms) through the fault proxy: SIGINT/SIGTERM end the run with
// exit code 3 (not done; a script must not take the prefix for finished), and a
// process killed with SIGKILL in the middle of a multipart copy leaves its upload
// recorded in the --resume file, so the next run aborts it (and only it).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { createBucket, putObjects, ROOT, s3Client, sleep, waitUntil } from '../harness/context.js';

const info = inject('seaweed');
const MiB = 1024 * 1024;
let s3: S3Client;
let proxy: FaultProxy;
let dir: string;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: info.accessKeyId,
      AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
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
const requestsFor = (bucket: string, operation: string): number =>
  proxy.requests.filter((r) => r.bucket === bucket && r.operation === operation).length;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 21 });
  dir = mkdtempSync(join(inject('workDir'), 'cli-signal-'));
});
afterAll(async () => {
  await proxy?.stop();
  s3?.destroy();
});

describe('s3-encrypt stopped by a signal (SeaweedFS through the fault proxy)', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} mid-run: status Stopped, exit code 3, and the resume file lets the next run finish`, async () => {
      const bucket = await createBucket(s3, 'sig');
      const keys = Array.from({ length: 200 }, (_, i) => `p/${String(i).padStart(4, '0')}`);
      await putObjects(s3, bucket, keys);
      // Every HEAD takes 100 ms: the run lasts several seconds, the signal comes in the middle.
      proxy.setRule((r) => (r.bucket === bucket && r.operation === 'HeadObject' ? { delayMs: 100 } : undefined));
      const resume = join(dir, `${bucket}.json`);
      const run = cli([
        `s3://${bucket}/`,
        '--sse',
        'AES256',
        '--concurrency',
        '2',
        '--resume',
        resume,
        '--json',
        ...conn(),
      ]);
      await waitUntil(
        'the run to start working',
        () => (requestsFor(bucket, 'CopyObject') >= 5 ? true : undefined),
        60_000,
      );
      run.child.kill(signal);
      const stopped = await run.done;
      proxy.setRule(undefined);
      expect(stopped.code, stopped.stderr).toBe(3);
      const summary = JSON.parse(stopped.stdout) as { status: string; counters: { scanned: number } };
      expect(summary.status).toBe('Stopped');
      expect(summary.counters.scanned).toBeLessThan(keys.length);

      const again = await cli([`s3://${bucket}/`, '--sse', 'AES256', '--resume', resume, '--json', ...conn()]).done;
      expect(again.code, again.stderr).toBe(0);
      const final = JSON.parse(again.stdout) as {
        status: string;
        counters: { scanned: number; encrypted: number; alreadyEncrypted: number };
      };
      expect(final.status).toBe('Complete');
      // Counted once each: the resume file's counters cover the keys up to its checkpoint only.
      expect(final.counters.scanned).toBe(keys.length);
      expect(final.counters.encrypted + final.counters.alreadyEncrypted).toBe(keys.length);
    }, 180_000);
  }

  it('kill -9 in the middle of a multipart copy: the next run with the same --resume file aborts the upload it left, and no other', async () => {
    const bucket = await createBucket(s3, 'kill');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: Buffer.alloc(15 * MiB + 1, 5) }));
    await putObjects(s3, bucket, ['small/1', 'small/2']);
    // Another client's upload of the same key: never ours to abort.
    const theirs = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'big' }));
    // The first part copy is held until the process is dead (the proxy then drops it).
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'UploadPartCopy' ? { hold: held } : undefined));
    const resume = join(dir, `${bucket}.json`);
    const args = [
      `s3://${bucket}/`,
      '--sse',
      'AES256',
      '--multipart-threshold',
      '8MiB',
      '--multipart-chunksize',
      '5MiB',
      '--resume',
      resume,
      '--json',
      ...conn(),
    ];
    const first = cli(args);
    await waitUntil(
      'the first part copy',
      () => (requestsFor(bucket, 'UploadPartCopy') > 0 ? true : undefined),
      60_000,
    );
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    release();
    proxy.setRule(undefined);
    const recorded =
      (JSON.parse(readFileSync(resume, 'utf8')) as { openUploads?: { key: string; uploadId: string }[] }).openUploads ??
      [];
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.key).toBe('big');
    const before = (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    expect(before.map((u) => u.UploadId).sort()).toEqual([recorded[0]?.uploadId, theirs.UploadId].sort());

    const again = await cli(args).done;
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as {
      status: string;
      abortedUploads?: number;
      counters: { scanned: number; failed: number };
    };
    expect(summary.status).toBe('Complete');
    expect(summary.abortedUploads).toBe(1);
    expect(summary.counters).toMatchObject({ scanned: 3, failed: 0 });
    await sleep(500);
    const after = (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    expect(after.map((u) => u.UploadId)).toEqual([theirs.UploadId]);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }))).ServerSideEncryption).toBe('AES256');
    expect((JSON.parse(readFileSync(resume, 'utf8')) as { openUploads?: unknown[] }).openUploads ?? []).toEqual([]);
  }, 180_000);
});
