// Shards as worker pods (spec.workers, issue 11): the operator plans through a
// worker pod, runs a real batch/v1 Indexed Job (the real Job controller of
// kube-controller-manager, pods run by the test's kubelet stand-in as local
// `node dist/worker.js` processes under the marked ServiceAccount's token), and
// sums what the workers write. Every CopyObject goes through the fault proxy,
// so "no key was written twice" is counted on the wire.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { compareKeys } from '../../src/engine/keys/shards.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  ROOT,
  s3Client,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { writeInventory } from '../harness/inventory.js';
import type { PodRunner } from '../harness/pod-runner.js';
import { startWorkerStack } from '../harness/worker-stack.js';
import { allowWorkerPods, applyWorkerServiceAccount } from '../harness/worker-rbac.js';
import type { ManagedProcess } from '../harness/process.js';
import { applyJob, copiesAt, expectEachKeyCopiedOnce, readJob, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;
let kcm: ManagedProcess;
let runner: PodRunner;

const COUNTERS = ['scanned', 'encrypted', 'alreadyEncrypted', 'skipped', 'failed', 'bytesEncrypted'] as const;
const SA = 's3-encryption-worker';

interface Shard {
  index: number;
  startAfter: string;
  endAt?: string;
  phase: string;
  checkpoint?: string;
  progress?: Record<string, number>;
}
interface Job {
  spec: Record<string, unknown>;
  status?: {
    phase?: string;
    progress?: Record<string, number>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    shards?: Shard[];
  };
}

const job = (name: string): Promise<Job> => readJob<Job>(namespace, name);

function logs(): string {
  return `${operator.logTail(40)}\n--- kube-controller-manager\n${kcm.logTail(10)}`;
}

const waitFor = (name: string, condition: string, timeout = 300): Promise<Job> =>
  waitForCondition<Job>(namespace, name, condition, { timeoutS: timeout, logs });

function apply(name: string, bucket: string, spec: Record<string, unknown>): Promise<void> {
  return applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { workers: { serviceAccountName: SA }, ...spec },
  );
}

/** `count` keys, most under one day (skewed), hash-like names. */
function skewedKeys(count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const day = i % 10 === 0 ? `0${(i / 10) % 9}` : '05';
    keys.push(`logs/2026-11-${day}/${randomBytes(5).toString('hex')}.json`);
  }
  return keys;
}

const copies = (bucket: string): Map<string, number> => copiesAt(proxy, bucket);

const expectEveryKeyCopiedOnce = (bucket: string, keys: string[]): void => expectEachKeyCopiedOnce(proxy, bucket, keys);

function expectShardsAddUp(j: Job, shards: number, objects: number): void {
  const list = j.status?.shards ?? [];
  expect(list.map((s) => s.index)).toEqual(Array.from({ length: shards }, (_, i) => i));
  expect(list.map((s) => s.phase)).toEqual(Array.from({ length: shards }, () => 'Complete'));
  expect(list[0]?.startAfter).toBe('');
  for (let i = 1; i < list.length; i++) expect(list[i]?.startAfter).toBe(list[i - 1]?.endAt);
  expect(list.at(-1)?.endAt).toBeUndefined();
  for (const c of COUNTERS) {
    const sum = list.reduce((a, s) => a + (s.progress?.[c] ?? 0), 0);
    expect(sum, `sum of shards' ${c}`).toBe(j.status?.progress?.[c]);
  }
  expect(j.status?.progress?.scanned).toBe(objects);
  expect((j.status?.progress?.encrypted ?? 0) + (j.status?.progress?.alreadyEncrypted ?? 0)).toBe(objects);
}

async function expectAllAes256(bucket: string, keys: string[]): Promise<void> {
  const queue = [...keys];
  const wrong: string[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
        const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        if (h.ServerSideEncryption !== 'AES256') wrong.push(key);
      }
    }),
  );
  expect(wrong).toEqual([]);
}

/** The worker RBAC of deploy/workers (what a namespace's admins apply), in the test's namespace. */
async function applyWorkerRbac(ns: string): Promise<void> {
  await applyWorkerServiceAccount(ns);
  await allowWorkerPods(ns);
}

/** The batch Jobs the operator made for an EncryptionJob. */
async function batchJobs(name: string): Promise<{ metadata: { name: string }; spec: Record<string, unknown> }[]> {
  const out = await kubectl(['get', 'jobs', '-n', namespace, '-l', `s3encryption.dev/job=${name}`, '-o', 'json']);
  return (JSON.parse(out.stdout) as { items: { metadata: { name: string }; spec: Record<string, unknown> }[] }).items;
}

/** Running worker pods of the shard Job, by completion index. */
async function workerPods(name: string): Promise<Map<number, string>> {
  const out = await kubectl(['get', 'pods', '-n', namespace, '-l', `job-name=${name}-workers`, '-o', 'json']);
  const pods = JSON.parse(out.stdout) as {
    items: {
      metadata: { name: string; annotations?: Record<string, string>; deletionTimestamp?: string };
      status?: { phase?: string };
    }[];
  };
  const byIndex = new Map<number, string>();
  for (const p of pods.items) {
    if (p.status?.phase !== 'Running' || p.metadata.deletionTimestamp) continue;
    byIndex.set(Number(p.metadata.annotations?.['batch.kubernetes.io/job-completion-index']), p.metadata.name);
  }
  return byIndex;
}

function shardOf(shards: Shard[], key: string): number | undefined {
  return shards.find(
    (s) => compareKeys(key, s.startAfter) > 0 && (s.endAt === undefined || compareKeys(key, s.endAt) <= 0),
  )?.index;
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 11 });
  namespace = await createNamespace('workers');
  await createCredentialsSecret(namespace, info);
  await applyWorkerRbac(namespace);
  ({ kcm, runner, operator } = await startWorkerStack(namespace));
}, 180_000);
afterAll(async () => {
  await operator?.stop();
  await runner?.stop();
  await kcm?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('shards as worker pods (spec.workers; real Job controller, SeaweedFS through the fault proxy)', () => {
  it('a 4-shard job with workers completes: the shards add up, every object once at the target', async () => {
    const bucket = await createBucket(s3, 'work4');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, [...keys, 'other/outside.json']);
    const started = runner.started.length;
    await apply('w4', bucket, { prefix: 'logs/', parallelism: 4, concurrency: 8 });
    const j = await waitFor('w4', 'Complete');
    expect(j.status?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('Completed');
    expectShardsAddUp(j, 4, keys.length);
    await expectAllAes256(bucket, keys);
    expectEveryKeyCopiedOnce(bucket, keys);
    expect(copies(bucket).has('other/outside.json')).toBe(false);
    // One planning pod and one pod per shard, run by the real Job controller as an Indexed Job.
    const jobs = await batchJobs('w4');
    const shardJob = jobs.find((b) => b.metadata.name === 'w4-workers');
    expect(shardJob?.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4 });
    expect(runner.started.slice(started).filter((p) => p.startsWith('w4-plan-'))).toHaveLength(1);
    expect(runner.started.slice(started).filter((p) => p.startsWith('w4-workers-'))).toHaveLength(4);
    // Each shard is its own object, owned by the job; the job holds totals and counts, no list of shards.
    const raw = JSON.parse((await kubectl(['get', 'encryptionjob', 'w4', '-n', namespace, '-o', 'json'])).stdout) as {
      metadata: { uid: string };
      status: { shards?: unknown; shardCounts?: unknown; shardPlan?: { shards?: number } };
    };
    expect(raw.status.shards).toBeUndefined();
    expect(raw.status.shardCounts).toEqual({ total: 4, pending: 0, running: 0, complete: 4, failed: 0 });
    expect(raw.status.shardPlan?.shards).toBe(4);
    const objects = JSON.parse(
      (await kubectl(['get', 'eshard', '-n', namespace, '-l', 's3encryption.dev/job=w4', '-o', 'json'])).stdout,
    ) as {
      items: { metadata: { ownerReferences?: { uid: string; controller?: boolean }[] }; spec: { index: number } }[];
    };
    expect(objects.items.map((o) => o.spec.index).sort()).toEqual([0, 1, 2, 3]);
    for (const o of objects.items)
      expect(o.metadata.ownerReferences).toEqual([
        expect.objectContaining({ uid: raw.metadata.uid, controller: true }),
      ]);
  }, 600_000);

  it('suspended mid-run the worker pods stop and are gone; resumed, every object ends at the target written once', async () => {
    const bucket = await createBucket(s3, 'worksusp');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 20 } : undefined));
    try {
      await apply('susp', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('150 objects copied', () => (copies(bucket).size >= 150 ? true : undefined), 240_000, logs);
      await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
      const suspended = await waitFor('susp', 'Suspended');
      expect(suspended.status?.phase).toBe('Suspended');
      // The Job and its pods are gone once the job says Suspended: nothing copies any more.
      expect((await batchJobs('susp')).map((b) => b.metadata.name)).not.toContain('susp-workers');
      expect(await workerPods('susp')).toEqual(new Map());
      const frozen = copies(bucket).size;
      expect(frozen).toBeLessThan(keys.length);
      const shards = suspended.status?.shards ?? [];
      expect(shards.filter((s) => s.checkpoint !== undefined).length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 2000));
      expect(copies(bucket).size).toBe(frozen);

      await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
      const done = await waitFor('susp', 'Complete');
      expect((done.status?.shards ?? []).map((s) => [s.startAfter, s.endAt])).toEqual(
        shards.map((s) => [s.startAfter, s.endAt]),
      );
      expectShardsAddUp(done, 2, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('an unmarked ServiceAccount is refused: Failed with the reason, no S3 request, no batch Job', async () => {
    await kubectl(['-n', namespace, 'create', 'serviceaccount', 'plain']);
    const bucket = await createBucket(s3, 'workno');
    await putObjects(s3, bucket, ['logs/a', 'logs/b']);
    const before = proxy.requests.length;
    await apply('refused', bucket, { prefix: 'logs/', parallelism: 2, workers: { serviceAccountName: 'plain' } });
    const j = await waitFor('refused', 'Failed');
    const cond = j.status?.conditions?.find((c) => c.type === 'Failed');
    expect(cond?.reason).toBe('WorkerServiceAccountNotAllowed');
    expect(cond?.message).toContain('s3encryption.dev/worker=true');
    expect(proxy.requests.slice(before).filter((r) => r.bucket === bucket)).toEqual([]);
    expect(await batchJobs('refused')).toEqual([]);
  }, 120_000);

  it('a bucket that does not exist: the planning pod says so, the job fails BucketNotFound and no shard Job runs', async () => {
    await apply('nobucket', `missing-${randomBytes(4).toString('hex')}`, { prefix: 'logs/', parallelism: 2 });
    const j = await waitFor('nobucket', 'Failed');
    const cond = j.status?.conditions?.find((c) => c.type === 'Failed');
    expect(cond?.reason).toBe('BucketNotFound');
    expect(cond?.message).toContain('planning the shards');
    expect((await batchJobs('nobucket')).map((b) => b.metadata.name)).not.toContain('nobucket-workers');
  }, 300_000);

  it('a worker pod killed mid-shard: its index runs again from the checkpoint; every object once at the target', async () => {
    const bucket = await createBucket(s3, 'workkill');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    // Copies are slow enough that the kill lands mid-shard; the 150th copy is held until the pod is deleted.
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 20 } : undefined));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let heldKey: string | undefined;
    let seen = 0;
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'CopyObject' && ++seen === 150,
      before: async (r) => {
        heldKey = r.key;
        await released;
      },
      times: 1,
    });
    try {
      const started = runner.started.length;
      await apply('kill', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('a copy held', () => heldKey, 240_000, logs);
      const shards = (await job('kill')).status?.shards ?? [];
      const index = shardOf(shards, heldKey ?? '');
      expect(index).toBeDefined();
      const pod = await waitUntil(
        'the pod of the held shard',
        async () => (await workerPods('kill')).get(index ?? -1),
        60_000,
        logs,
      );
      await kubectl(['-n', namespace, 'delete', 'pod', pod, '--wait=false']);
      await waitUntil(
        'the pod to be terminating',
        async () => {
          const res = await kubectl(
            ['-n', namespace, 'get', 'pod', pod, '-o', 'jsonpath={.metadata.deletionTimestamp}'],
            {
              allowFailure: true,
            },
          );
          return res.stdout !== '' || res.code !== 0 ? true : undefined;
        },
        30_000,
      );
      release();
      const done = await waitFor('kill', 'Complete');
      expectShardsAddUp(done, 2, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
      // The killed index ran again in a new pod.
      const pods = runner.started.slice(started).filter((p) => p.startsWith('kill-workers-'));
      expect(pods.length).toBeGreaterThanOrEqual(3);
    } finally {
      release();
      unhook();
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('the batch Job deleted mid-run: the operator makes it again, the pods resume; every object once at the target', async () => {
    const bucket = await createBucket(s3, 'workdel');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 20 } : undefined));
    try {
      const started = runner.started.length;
      await apply('del', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('150 objects copied', () => (copies(bucket).size >= 150 ? true : undefined), 240_000, logs);
      await kubectl(['-n', namespace, 'delete', 'job', 'del-workers', '--cascade=foreground', '--wait=false']);
      const done = await waitFor('del', 'Complete');
      expectShardsAddUp(done, 2, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
      expect(copies(bucket).size).toBe(keys.length);
      // Two pods of the first Job, then new ones for the shards not complete.
      expect(runner.started.slice(started).filter((p) => p.startsWith('del-workers-')).length).toBeGreaterThanOrEqual(
        3,
      );
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('a shard that fails for good fails the job naming the shard, and the worker Job is stopped', async () => {
    const bucket = await createBucket(s3, 'workfail');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    // One day's copies answer with a job-level error (these credentials stopped working there).
    const bad = 'logs/2026-11-08/';
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && r.key?.startsWith(bad)
        ? { status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id does not exist' }
        : undefined,
    );
    try {
      await apply('fail', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      const failed = await waitFor('fail', 'Failed');
      const cond = failed.status?.conditions?.find((c) => c.type === 'Failed');
      expect(cond?.reason).toBe('InvalidAccessKeyId');
      const culprit = (failed.status?.shards ?? []).find((s) => s.phase === 'Failed');
      expect(culprit, JSON.stringify(failed.status?.shards)).toBeDefined();
      expect(cond?.message).toContain(`shard ${culprit?.index} `);
      expect(shardOf(failed.status?.shards ?? [], `${bad}x`)).toBe(culprit?.index);
      // The shard's pod exited with the code the pod failure policy fails the index on, and the Job is gone.
      expect((await batchJobs('fail')).map((b) => b.metadata.name)).not.toContain('fail-workers');
      expect(await workerPods('fail')).toEqual(new Map());
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('deleting the EncryptionJob mid-run stops its worker pods before it is gone', async () => {
    const bucket = await createBucket(s3, 'workgone');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    // Copies slow enough (8 in flight, 100 ms each: about 8 s for all) that the delete lands mid-run.
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 100 } : undefined));
    try {
      await apply('gone', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('100 objects copied', () => (copies(bucket).size >= 100 ? true : undefined), 240_000, logs);
      await kubectl(['-n', namespace, 'delete', 'ej', 'gone', '--wait=true', '--timeout=180s']);
      // The finalizer waited for the Job and its pods: nothing of the job is left, nothing copies any more.
      expect(await batchJobs('gone')).toEqual([]);
      const pods = await kubectl(['get', 'pods', '-n', namespace, '-l', 's3encryption.dev/job=gone', '-o', 'name']);
      expect(pods.stdout.trim()).toBe('');
      const frozen = copies(bucket).size;
      expect(frozen).toBeLessThan(keys.length);
      await new Promise((r) => setTimeout(r, 2000));
      expect(copies(bucket).size).toBe(frozen);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('the operator restarts mid-run: the pods go on, the new operator adopts their Job; every object once', async () => {
    const bucket = await createBucket(s3, 'workadopt');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 20 } : undefined));
    try {
      const started = runner.started.length;
      await apply('adopt', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('100 objects copied', () => (copies(bucket).size >= 100 ? true : undefined), 240_000, logs);
      await operator.stop();
      const atStop = copies(bucket).size;
      // The workers do not need the operator: they keep copying while it is down.
      await waitUntil('copies to go on', () => (copies(bucket).size > atStop + 50 ? true : undefined), 60_000);
      operator = await startOperator({
        watchNamespace: namespace,
        args: [
          '--worker-image=stand-in',
          `--worker-command=${JSON.stringify([process.execPath, join(ROOT, 'dist', 'worker.js')])}`,
        ],
      });
      const done = await waitFor('adopt', 'Complete');
      expectShardsAddUp(done, 2, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
      // The same Job throughout: one pod per shard, no new Job.
      expect(runner.started.slice(started).filter((p) => p.startsWith('adopt-workers-'))).toHaveLength(2);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('a spec edit mid-run replaces the Job with one of the new generation; a new selection plans again', async () => {
    const bucket = await createBucket(s3, 'workedit');
    const keys = skewedKeys(600);
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 20 } : undefined));
    try {
      await apply('edit', bucket, { prefix: 'logs/', parallelism: 2, concurrency: 4 });
      await waitUntil('100 objects copied', () => (copies(bucket).size >= 100 ? true : undefined), 240_000, logs);
      const plan1 = (await job('edit')).status?.shards?.map((s) => [s.startAfter, s.endAt]);
      await kubectl(['patch', 'ej', 'edit', '-n', namespace, '--type=merge', '-p', '{"spec":{"concurrency":6}}']);
      const done = await waitUntil(
        'generation 2 to complete',
        async () => {
          const j = await job('edit');
          const c = j.status?.conditions?.find((x) => x.type === 'Complete');
          return c?.status === 'True' && (j.status as { observedGeneration?: number }).observedGeneration === 2
            ? j
            : undefined;
        },
        300_000,
        logs,
      );
      // The same plan (same selection), every shard resumed from its checkpoint in a Job of generation 2.
      expect(done.status?.shards?.map((s) => [s.startAfter, s.endAt])).toEqual(plan1);
      const jobs = await batchJobs('edit');
      const shardJob = jobs.find((b) => b.metadata.name === 'edit-workers') as
        { metadata: { labels?: Record<string, string> } } | undefined;
      expect(shardJob?.metadata.labels?.['s3encryption.dev/generation']).toBe('2');
      expectShardsAddUp(done, 2, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);

      // Another selection: planned again by a planning pod, every object looked at, none copied again.
      const planned = (done.status as { shardPlan?: { spec?: string } }).shardPlan?.spec;
      await kubectl(['patch', 'ej', 'edit', '-n', namespace, '--type=merge', '-p', '{"spec":{"exclude":["none/*"]}}']);
      const again = await waitUntil(
        'generation 3 to complete',
        async () => {
          const j = await job('edit');
          const c = j.status?.conditions?.find((x) => x.type === 'Complete');
          return c?.status === 'True' && (j.status as { observedGeneration?: number }).observedGeneration === 3
            ? j
            : undefined;
        },
        300_000,
        logs,
      );
      expect((again.status as { shardPlan?: { spec?: string } }).shardPlan?.spec).not.toBe(planned);
      expect(again.status?.progress).toMatchObject({
        scanned: keys.length,
        encrypted: 0,
        alreadyEncrypted: keys.length,
      });
      expectEveryKeyCopiedOnce(bucket, keys);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);
  it('a 2-shard job with workers from a CSV inventory: planned in a pod from the report, no LIST of the bucket', async () => {
    const bucket = await createBucket(s3, 'workinv');
    const reports = await createBucket(s3, 'workinvrep');
    const keys = skewedKeys(300);
    await putObjects(s3, bucket, [...keys, 'other/outside.json']);
    const manifest = await writeInventory(s3, {
      inventoryBucket: reports,
      sourceBucket: bucket,
      rows: [...keys, 'other/outside.json'].map((key) => ({ bucket, key })),
      files: 2,
    });
    await apply('winv', bucket, { prefix: 'logs/', parallelism: 2, source: { inventory: { manifest } } });
    const j = await waitFor('winv', 'Complete');
    expectShardsAddUp(j, 2, keys.length);
    await expectAllAes256(bucket, keys);
    expectEveryKeyCopiedOnce(bucket, keys);
    // The planning pod cut the shards from the report's keys, and no pod listed the bucket.
    const listed = proxy.requests.filter(
      (r) => r.bucket === bucket && (r.operation === 'ListObjectsV2' || r.operation === 'ListObjects'),
    );
    expect(listed, 'LIST requests on the source bucket').toEqual([]);
    expect((j.status as { inventory?: { objects?: number } }).inventory?.objects).toBe(keys.length);
    const sizes = (j.status?.shards ?? []).map((s) => s.progress?.scanned ?? 0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1.5 * (keys.length / 2));
  }, 600_000);
});
