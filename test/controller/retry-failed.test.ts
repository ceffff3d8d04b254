// Issue 20, scenario 3: retry the failures of a finished job. A job whose copies of
// some keys were refused (the fault proxy answers 403 AccessDenied to their
// CopyObject) ends Complete with failures and keeps those keys in its status; once
// the cause is gone, a new value of the annotation s3encryption.dev/retry-failed
// makes the operator look at exactly those keys again (HEAD of each, no listing):
// they reach the target, one deleted meanwhile counts as gone, and the job is
// Complete with 0 failed, its counters moved from failed to what the retry found.
// A sharded job keeps no failed keys: its retry looks at the whole selection
// again, and says so. SeaweedFS through the fault proxy + kube-apiserver; the
// operator under its least-privilege identity.
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { applyJob, readJob } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

const ANNOTATION = 's3encryption.dev/retry-failed';
type Status = {
  phase?: string;
  progress?: Record<string, number | string | Record<string, number> | undefined>;
  conditions?: { type: string; status: string; reason: string; message: string }[];
  failedKeys?: { keys: string[]; overflow?: boolean } | null;
  retryFailed?: { handled: string; message?: string } | null;
};
const statusOf = async (name: string): Promise<Status> =>
  (await readJob<{ status?: Status }>(namespace, name)).status ?? {};
const condition = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);
const annotate = (name: string, value: string): Promise<unknown> =>
  kubectl(['annotate', 'ej', name, '-n', namespace, `${ANNOTATION}=${value}`, '--overwrite']);

function waitFor(name: string, what: string, test: (s: Status) => boolean, timeoutMs = 120_000): Promise<Status> {
  return waitUntil(
    `${name}: ${what}`,
    async () => {
      const s = await statusOf(name);
      return test(s) ? s : undefined;
    },
    timeoutMs,
    () => operator.logTail(40),
  );
}
const handled = (name: string, value: string): Promise<Status> =>
  waitFor(name, `retry-failed ${value} handled`, (s) => s.retryFailed?.handled === value && s.phase === 'Complete');

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 3 });
  namespace = await createNamespace('retryfailed');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

/** CopyObject of these keys of the bucket is refused with 403 AccessDenied until the rule is removed. */
function refuseCopies(bucket: string, keys: string[]): void {
  proxy.setRule((r) =>
    r.bucket === bucket && r.operation === 'CopyObject' && keys.includes(r.key ?? '')
      ? { status: 403, code: 'AccessDenied', message: 'injected: copy refused' }
      : undefined,
  );
}

describe('retry the failures of a finished job (SeaweedFS + kube-apiserver)', () => {
  it('scenario 3: a new retry-failed value looks at exactly the failed keys again; the job ends Complete with 0 failed', async () => {
    const bucket = await createBucket(s3, 'retryf');
    const keys = Array.from({ length: 30 }, (_, i) => `k/${String(i).padStart(2, '0')}`);
    await putObjects(s3, bucket, keys);
    const failing = ['k/03', 'k/11', 'k/17', 'k/25'];
    refuseCopies(bucket, failing);
    const name = 'retryf';
    await applyJob(
      { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
      { concurrency: 4 },
    );
    const first = await waitFor(name, 'Complete with failures', (s) => s.phase === 'Complete');
    expect(condition(first, 'Complete')?.reason).toBe('CompletedWithFailures');
    expect(first.progress).toMatchObject({ scanned: 30, encrypted: 26, failed: 4 });
    expect(first.failedKeys).toEqual({ keys: failing });

    // The cause is gone; one of the failed objects is deleted meanwhile.
    proxy.setRule(undefined);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k/17' }));
    const mark = proxy.requests.length;
    await annotate(name, 'try-1');
    const after = await handled(name, 'try-1');

    expect(after.retryFailed?.message).toBe('retry of 4 failed keys: 3 encrypted, 1 gone');
    expect(condition(after, 'Complete')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(condition(after, 'Complete')?.message).toContain('retry of 4 failed keys');
    expect(after.progress).toMatchObject({ scanned: 30, encrypted: 29, skipped: 1, failed: 0, total: 30 });
    expect(after.failedKeys).toEqual({ keys: [] });
    for (const key of keys.filter((k) => k !== 'k/17')) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ServerSideEncryption, key).toBe('AES256');
    }
    // Only the failed keys were looked at: HEADs of exactly them, no listing.
    const retried = proxy.requests.slice(mark).filter((r) => r.bucket === bucket);
    expect(new Set(retried.filter((r) => r.operation === 'HeadObject').map((r) => r.key))).toEqual(new Set(failing));
    expect(retried.filter((r) => r.operation === 'ListObjectsV2')).toEqual([]);
    expect(new Set(retried.filter((r) => r.operation === 'CopyObject').map((r) => r.key))).toEqual(
      new Set(['k/03', 'k/11', 'k/25']),
    );
    const events = await kubectl(['get', 'events', '-n', namespace, '-o', 'json']);
    expect(events.stdout).toContain('retry of 4 failed keys: 3 encrypted, 1 gone');

    // The value handled is not acted on again; a new value with nothing failed is answered, not run.
    const mark2 = proxy.requests.length;
    await annotate(name, 'try-2');
    const nothing = await handled(name, 'try-2');
    expect(nothing.retryFailed?.message).toContain('no failed keys');
    expect(proxy.requests.slice(mark2).filter((r) => r.bucket === bucket)).toEqual([]);
  }, 240_000);

  it('scenario 3: failed keys beyond the status budget (32 KiB) are not kept: the retry looks at the whole selection again, and says so', async () => {
    const bucket = await createBucket(s3, 'retryo');
    // 60 keys of about 610 bytes (segments of 200: SeaweedFS refuses longer ones): more than the 32 KiB a status keeps.
    const segment = (c: string): string => c.repeat(200);
    const long = (i: number): string =>
      `o/${String(i).padStart(2, '0')}/${segment('x')}/${segment('y')}/${segment('z')}`;
    const failing = Array.from({ length: 60 }, (_, i) => long(i));
    // The keys that copy sort first: a run whose first 25 objects fail stops (fail-fast) instead.
    await putObjects(s3, bucket, [...failing, 'o/!ok-1', 'o/!ok-2']);
    refuseCopies(bucket, failing);
    const name = 'retryo';
    await applyJob(
      { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
      { concurrency: 2 },
    );
    const first = await waitFor(name, 'Complete with failures', (s) => s.phase === 'Complete');
    expect(first.progress).toMatchObject({ scanned: 62, encrypted: 2, failed: 60 });
    expect(first.failedKeys).toEqual({ keys: [], overflow: true });
    proxy.setRule(undefined);
    const mark = proxy.requests.length;
    await annotate(name, 'all');
    const after = await waitFor(
      name,
      'Complete again after the re-scan',
      (s) => s.retryFailed?.handled === 'all' && condition(s, 'Complete')?.status === 'True' && s.phase === 'Complete',
      180_000,
    );
    expect(after.retryFailed?.message).toContain('more failed keys than fit in status');
    expect(after.retryFailed?.message).toContain('the whole selection is looked at again from the start');
    expect(after.progress).toMatchObject({ scanned: 62, encrypted: 60, alreadyEncrypted: 2, failed: 0 });
    expect(after.failedKeys ?? null).toBeNull();
    const listed = proxy.requests.slice(mark).filter((r) => r.bucket === bucket && r.operation === 'ListObjectsV2');
    expect(listed.length).toBeGreaterThan(0);
  }, 300_000);

  it('scenario 3: a sharded job keeps no failed keys: its retry looks at the whole selection again, and says so', async () => {
    const bucket = await createBucket(s3, 'retrys');
    const keys = Array.from({ length: 40 }, (_, i) => `s/${String(i).padStart(2, '0')}`);
    await putObjects(s3, bucket, keys);
    refuseCopies(bucket, ['s/05', 's/33']);
    const name = 'retrys';
    await applyJob(
      { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
      { concurrency: 4, parallelism: 2 },
    );
    const first = await waitFor(name, 'Complete with failures', (s) => s.phase === 'Complete');
    expect(first.progress).toMatchObject({ scanned: 40, failed: 2 });
    proxy.setRule(undefined);
    const mark = proxy.requests.length;
    await annotate(name, 'again');
    const after = await waitFor(
      name,
      'Complete again after the re-scan',
      (s) =>
        s.retryFailed?.handled === 'again' && condition(s, 'Complete')?.status === 'True' && s.phase === 'Complete',
      180_000,
    );
    expect(after.retryFailed?.message).toContain('the whole selection is looked at again from the start');
    expect(after.progress).toMatchObject({ scanned: 40, encrypted: 2, alreadyEncrypted: 38, failed: 0 });
    expect(condition(after, 'Complete')?.reason).toBe('Completed');
    const listed = proxy.requests.slice(mark).filter((r) => r.bucket === bucket && r.operation === 'ListObjectsV2');
    expect(listed.length).toBeGreaterThan(0);
    for (const key of ['s/05', 's/33']) {
      expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ServerSideEncryption).toBe('AES256');
    }
  }, 300_000);
});
