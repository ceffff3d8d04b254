// The checkpoint belongs to the spec that made it (issue 9 scenario 7, review
// #7, #28, #29): widening the selection after Complete lists from the
// beginning (objects already at the target counted, not rewritten); a change
// that does not touch the selection keeps the checkpoint; maxObjects counts
// over the job's life; a dry run in between keeps the real checkpoint; fields of
// an earlier run do not linger in status. SeaweedFS + kube-apiserver, operator
// under its least-privilege identity.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { applyJob } from '../harness/jobs.js';
import type { EncryptionJobSpec } from '../../src/controller/api.js';
import { selectionFingerprintV1 } from '../../src/controller/checkpoint.js';

const info = inject('seaweed');
let s3: S3Client;
let namespace: string;
let operator: OperatorProcess;

const keys = (n: number, p: string): string[] =>
  Array.from({ length: n }, (_, i) => `${p}${String(i).padStart(5, '0')}`);
type Progress = Record<string, number | string | undefined>;
type Status = {
  phase?: string;
  observedGeneration?: number;
  progress?: Progress;
  checkpoint?: { startAfter?: string; spec?: string };
  dryRunCheckpoint?: { startAfter?: string } | null;
  conditions?: { type: string; status: string; reason: string; message: string }[];
};
const statusOf = async (name: string): Promise<Status> => (await getJob(namespace, name)).status as Status;
const patch = (name: string, spec: object): Promise<unknown> =>
  kubectl(['patch', 'ej', name, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec })]);

function apply(name: string, bucket: string, extra: Record<string, unknown> = {}): Promise<void> {
  return applyJob({ name, namespace, bucket, encryption: { type: 'AES256' }, s3: info }, extra);
}

/** Complete for generation `gen` (the status of an older generation does not count). */
function complete(name: string, gen: number, timeoutMs = 90_000): Promise<Status> {
  return waitUntil(
    `${name} Complete for generation ${gen}`,
    async () => {
      const s = await statusOf(name);
      return s.phase === 'Complete' && s.observedGeneration === gen ? s : undefined;
    },
    timeoutMs,
    () => operator.logTail(30),
  );
}

const lastModified = async (bucket: string, key: string): Promise<string> =>
  (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).LastModified?.toISOString() ?? '';

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('cpspec');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});

afterAll(async () => {
  await operator?.stop();
  s3?.destroy();
});

describe('the checkpoint belongs to the spec that made it', () => {
  it('widening exclude after Complete lists from the beginning; a concurrency change keeps the checkpoint', async () => {
    const bucket = await createBucket(s3, 'widen');
    await putObjects(s3, bucket, [...keys(10, 'a/'), ...keys(10, 'b/')]);
    await apply('widen', bucket, { exclude: ['b/*'] });
    const first = await complete('widen', 1);
    expect(first.progress).toMatchObject({ scanned: 20, encrypted: 10, skipped: 10 });
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'b/00000' }))).ServerSideEncryption,
    ).toBeUndefined();
    const aBefore = await lastModified(bucket, 'a/00003');

    await patch('widen', { exclude: null });
    const second = await complete('widen', 2);
    // b/ is now eligible and done; a/ was already at the target: counted, not rewritten.
    expect(second.progress).toMatchObject({ scanned: 20, encrypted: 10, alreadyEncrypted: 10, skipped: 0, failed: 0 });
    for (const k of keys(10, 'b/'))
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ServerSideEncryption).toBe('AES256');
    expect(await lastModified(bucket, 'a/00003')).toBe(aBefore);
    const started = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=widen,reason=Started',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(started.stdout).toMatch(/selection or the target changed/);

    // Concurrency does not change what a finished key means: resume after the last key, nothing redone.
    await patch('widen', { concurrency: 5 });
    const third = await complete('widen', 3);
    expect(third.progress).toMatchObject({ scanned: 20, encrypted: 10, alreadyEncrypted: 10 });
    expect(third.checkpoint?.startAfter).toBe('b/00009');
    const events = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=widen',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.stdout).toContain('Resumed');
  });

  it('changing the storage class after Complete lists from the beginning and copies every object', async () => {
    const bucket = await createBucket(s3, 'sclass');
    await putObjects(s3, bucket, keys(8, 's/'));
    await apply('sclass', bucket);
    expect((await complete('sclass', 1)).progress).toMatchObject({ scanned: 8, encrypted: 8 });
    await patch('sclass', { storageClass: 'STANDARD_IA' });
    const second = await complete('sclass', 2);
    expect(second.progress?.scanned).toBe(8);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 's/00000' }))).StorageClass).toBe('STANDARD_IA');
  });

  it('maxObjects counts over the job: suspended at some, resumed, it stops at maxObjects in total', async () => {
    const bucket = await createBucket(s3, 'maxobj');
    const all = keys(300, 'm/');
    await putObjects(s3, bucket, all);
    await apply('maxobj', bucket, { maxObjects: 100, concurrency: 1, maxRequestsPerSecond: 15 });
    await waitUntil(
      'some progress',
      async () => {
        const s = await statusOf('maxobj');
        return Number(s.progress?.scanned ?? 0) >= 30 ? s : undefined;
      },
      60_000,
      () => operator.logTail(20),
    );
    await patch('maxobj', { suspend: true });
    const paused = await waitUntil(
      'Suspended',
      async () => {
        const s = await statusOf('maxobj');
        return s.phase === 'Suspended' ? s : undefined;
      },
      60_000,
      () => operator.logTail(20),
    );
    const pausedAt = Number(paused.progress?.scanned ?? 0);
    expect(pausedAt).toBeGreaterThan(0);
    expect(pausedAt).toBeLessThan(100);
    await patch('maxobj', { suspend: false, maxRequestsPerSecond: 1000 });
    const done = await complete('maxobj', 3);
    expect(done.progress?.scanned).toBe(100);
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: all[99]! }))).ServerSideEncryption).toBe(
      'AES256',
    );
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: all[100]! }))).ServerSideEncryption,
    ).toBeUndefined();
  });

  it('a dry run in the middle keeps the real checkpoint; the real run resumes from it; no dry-run field lingers', async () => {
    const bucket = await createBucket(s3, 'dryback');
    const all = keys(400, 'd/');
    await putObjects(s3, bucket, all);
    await apply('dryback', bucket, { concurrency: 2, maxRequestsPerSecond: 20 });
    await waitUntil(
      'some progress',
      async () => {
        const s = await statusOf('dryback');
        return Number(s.progress?.scanned ?? 0) >= 40 ? s : undefined;
      },
      60_000,
      () => operator.logTail(20),
    );

    await patch('dryback', { dryRun: true, maxRequestsPerSecond: 1000 });
    const dry = await complete('dryback', 2);
    expect(dry.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('DryRunCompleted');
    const realCheckpoint = dry.checkpoint?.startAfter;
    expect(realCheckpoint).toMatch(/^d\//);
    const doneBefore = all.indexOf(realCheckpoint!) + 1;
    expect(dry.progress).toMatchObject({
      scanned: 400,
      wouldEncrypt: 400 - Number(dry.progress?.alreadyEncrypted ?? 0),
    });
    expect(Number(dry.progress?.alreadyEncrypted)).toBeGreaterThanOrEqual(doneBefore);
    expect(dry.dryRunCheckpoint?.startAfter).toBe('d/00399');

    await patch('dryback', { dryRun: false });
    const real = await complete('dryback', 3);
    expect(real.progress?.scanned).toBe(400);
    expect(Number(real.progress?.encrypted) + Number(real.progress?.alreadyEncrypted)).toBe(400);
    // Resumed at the real checkpoint: at most the objects in flight at the switch are looked at twice.
    expect(Number(real.progress?.alreadyEncrypted)).toBeLessThanOrEqual(4);
    expect(real.conditions?.find((c) => c.type === 'Progressing')?.message ?? '').not.toMatch(/beginning/);
    // Nothing of the dry run is left in status (merge patch writes null for fields a run does not set).
    expect(real.progress?.wouldEncrypt).toBeUndefined();
    expect(real.progress?.wouldEncryptBytes).toBeUndefined();
    expect(real.progress?.estimatedCostUSD).toBeUndefined();
    expect(real.dryRunCheckpoint ?? undefined).toBeUndefined();
    const events = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=dryback',
      '-o',
      'json',
    ]);
    expect(events.stdout).toContain(`after \\"${realCheckpoint}\\"`);
  }, 180_000);

  it('scenario 1: a finished job edited beyond its pace (another Secret) lists from the beginning; a change of pace alone resumes', async () => {
    const bucket = await createBucket(s3, 'finished');
    const all = keys(10, 'f/');
    await putObjects(s3, bucket, all);
    await apply('finished', bucket);
    expect((await complete('finished', 1)).checkpoint?.startAfter).toBe('f/00009');
    // Written after the run, below its checkpoint.
    await putObjects(s3, bucket, ['f/00003a']);
    const sse = async (k: string): Promise<string | undefined> =>
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ServerSideEncryption;

    // Pace only: resumed after the last key (what a finished key means did not change).
    await patch('finished', { concurrency: 7 });
    expect((await complete('finished', 2)).progress?.scanned).toBe(10);
    expect(await sse('f/00003a')).toBeUndefined();

    // Another identity: a request to look again, so from the beginning.
    await createCredentialsSecret(namespace, info, 's3-credentials-2');
    await patch('finished', { connection: { credentialsSecretRef: { name: 's3-credentials-2' } } });
    const third = await complete('finished', 3);
    expect(await sse('f/00003a')).toBe('AES256');
    expect(third.progress).toMatchObject({ scanned: 11, encrypted: 1, alreadyEncrypted: 10, failed: 0 });
    const started = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=finished,reason=Started',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(started.stdout).toMatch(/the job had finished and the spec changed/);
  }, 180_000);

  it('upgrade: a checkpoint saved by an operator before fingerprint versions (v1) is resumed when the spec is unchanged', async () => {
    const bucket = await createBucket(s3, 'upgrade');
    const all = keys(30, 'u/');
    await putObjects(s3, bucket, all);
    await apply('upgrade', bucket, { suspend: true });
    await waitUntil(
      'Suspended',
      async () => ((await statusOf('upgrade')).phase === 'Suspended' ? true : undefined),
      60_000,
      () => operator.logTail(20),
    );
    // What an operator at 0f098c3 left: a checkpoint at u/00009 with its unversioned fingerprint.
    const job = await getJob(namespace, 'upgrade');
    const v1 = selectionFingerprintV1((job as unknown as { spec: EncryptionJobSpec }).spec);
    expect(v1).toMatch(/^[0-9a-f]{16}$/);
    const progress = { scanned: 10, encrypted: 10, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 100 };
    await kubectl([
      'patch',
      'ej',
      'upgrade',
      '-n',
      namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { checkpoint: { startAfter: 'u/00009', spec: v1, progress } } }),
    ]);
    await patch('upgrade', { suspend: false });
    const done = await complete('upgrade', 2);
    // Resumed after u/00009: the keys the checkpoint holds finished are not looked at again.
    expect(done.progress).toMatchObject({ scanned: 30, encrypted: 30, failed: 0 });
    expect(done.checkpoint?.spec).toMatch(/^v2:/);
    for (const k of all.slice(0, 10))
      expect(
        (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ServerSideEncryption,
        k,
      ).toBeUndefined();
    for (const k of all.slice(10))
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ServerSideEncryption, k).toBe('AES256');
  }, 180_000);
});
