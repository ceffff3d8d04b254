// A sharded job in the operator's process (spec.parallelism, issue 11): the key
// space is planned once into status.shards, the shards run side by side, each
// with its own checkpoint, and their counters add up to status.progress. Every
// CopyObject goes through the fault proxy, so "no key was written twice" is
// counted on the wire, not inferred from counters.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  waitUntil,
  type OperatorProcess,
  startOperator,
} from '../harness/context.js';
import { selectionFingerprint } from '../../src/controller/checkpoint.js';
import type { EncryptionJobSpec } from '../../src/controller/api.js';
import { applyJob, copiesAt, expectEachKeyCopiedOnce, readJob, waitForCondition } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

const COUNTERS = ['scanned', 'encrypted', 'alreadyEncrypted', 'skipped', 'failed', 'bytesEncrypted'] as const;

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
    observedGeneration?: number;
    shardPlan?: unknown;
    phase?: string;
    progress?: Record<string, number>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    shards?: Shard[];
    checkpoint?: unknown;
  };
}

const job = (name: string): Promise<Job> => readJob<Job>(namespace, name);

const waitFor = (name: string, condition: string, timeout = 240): Promise<Job> =>
  waitForCondition<Job>(namespace, name, condition, { timeoutS: timeout, logs: () => operator.logTail(40) });

function apply(name: string, bucket: string, spec: Record<string, unknown>): Promise<void> {
  return applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { ...spec },
  );
}

/** 2,000 keys, 90% under one day (the skew a date-partitioned bucket has), hash-like names. */
function skewedKeys(): string[] {
  const keys: string[] = [];
  for (let d = 1; d <= 10; d++) {
    const day = `logs/2026-11-${String(d).padStart(2, '0')}/`;
    const count = d === 5 ? 1800 : d <= 2 ? 23 : 22;
    for (let i = 0; i < count; i++) keys.push(`${day}${randomBytes(5).toString('hex')}.json`);
  }
  return keys;
}

const copies = (bucket: string): Map<string, number> => copiesAt(proxy, bucket);

const expectEveryKeyCopiedOnce = (bucket: string, keys: string[]): void => expectEachKeyCopiedOnce(proxy, bucket, keys);

function expectShardsAddUp(j: Job, shards: number, objects: number, failed = 0): void {
  const list = j.status?.shards ?? [];
  expect(list.map((s) => s.index)).toEqual(Array.from({ length: shards }, (_, i) => i));
  expect(list.map((s) => s.phase)).toEqual(Array.from({ length: shards }, () => 'Complete'));
  // The shards tile the key space: each starts where the one before it ends, the last is open-ended.
  expect(list[0]?.startAfter).toBe('');
  for (let i = 1; i < list.length; i++) expect(list[i]?.startAfter).toBe(list[i - 1]?.endAt);
  expect(list.at(-1)?.endAt).toBeUndefined();
  for (const c of COUNTERS) {
    const sum = list.reduce((a, s) => a + (s.progress?.[c] ?? 0), 0);
    expect(sum, `sum of shards' ${c}`).toBe(j.status?.progress?.[c]);
  }
  expect(j.status?.progress?.scanned).toBe(objects);
  expect((j.status?.progress?.encrypted ?? 0) + (j.status?.progress?.alreadyEncrypted ?? 0)).toBe(objects - failed);
  expect(j.status?.progress?.failed).toBe(failed);
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

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 11 });
  namespace = await createNamespace('shards');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('sharded jobs in the operator (spec.parallelism; SeaweedFS through the fault proxy)', () => {
  it('parallelism 4 over a skewed 2,000-object set: 4 Complete shards that add up, every object once at the target', async () => {
    const bucket = await createBucket(s3, 'shard4');
    const keys = skewedKeys();
    await putObjects(s3, bucket, [...keys, 'other/outside.json']);
    await apply('par4', bucket, { prefix: 'logs/', parallelism: 4, concurrency: 16 });
    const j = await waitFor('par4', 'Complete');
    expect(j.status?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('Completed');
    expectShardsAddUp(j, 4, keys.length);
    // The plan is balanced on the skewed set (a shard of the 1,800-key day is not one shard of everything).
    const sizes = (j.status?.shards ?? []).map((s) => s.progress?.scanned ?? 0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1.5 * (keys.length / 4));
    expect(j.status?.checkpoint ?? null).toBeNull();
    await expectAllAes256(bucket, keys);
    expectEveryKeyCopiedOnce(bucket, keys);
    expect(copies(bucket).has('other/outside.json')).toBe(false);
  }, 600_000);

  it('suspended mid-run, each shard keeps its checkpoint; resumed, every object ends at the target written once', async () => {
    const bucket = await createBucket(s3, 'shardsusp');
    const keys = skewedKeys();
    await putObjects(s3, bucket, keys);
    // Slow copies, so the suspend lands mid-run whatever the machine's speed.
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 30 } : undefined));
    try {
      await apply('susp', bucket, { prefix: 'logs/', parallelism: 4, concurrency: 4 });
      await waitUntil(
        'a few hundred objects copied',
        () => Promise.resolve(copies(bucket).size >= 300 ? true : undefined),
        240_000,
        () => operator.logTail(30),
      );
      await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
      const suspended = await waitFor('susp', 'Suspended');
      expect(suspended.status?.phase).toBe('Suspended');
      const shards = suspended.status?.shards ?? [];
      expect(shards).toHaveLength(4);
      expect(
        shards.some((s) => s.phase !== 'Complete'),
        'the suspend landed mid-run',
      ).toBe(true);
      expect(shards.filter((s) => s.checkpoint !== undefined).length).toBeGreaterThan(0);
      const plan = shards.map((s) => [s.startAfter, s.endAt]);
      const copiedBefore = copies(bucket).size;
      expect(copiedBefore).toBeLessThan(keys.length);

      await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
      const done = await waitFor('susp', 'Complete');
      // The plan did not change across the suspend: each shard resumed from its own checkpoint.
      expect((done.status?.shards ?? []).map((s) => [s.startAfter, s.endAt])).toEqual(plan);
      expectShardsAddUp(done, 4, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);

  it('a shard that fails for good fails the job naming the shard; the others keep their checkpoints; after the fix every object ends at the target, none written twice', async () => {
    const bucket = await createBucket(s3, 'shardfail');
    const keys = skewedKeys();
    await putObjects(s3, bucket, keys);
    // One day's copies answer with a job-level error (the credentials stopped working there); a HEAD
    // has no body, so its 403 would be one object's failure, not the job's.
    const bad = 'logs/2026-11-09/';
    proxy.setRule((r) =>
      r.bucket === bucket && r.operation === 'CopyObject' && r.key?.startsWith(bad)
        ? { status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id does not exist' }
        : undefined,
    );
    try {
      await apply('fail', bucket, { prefix: 'logs/', parallelism: 4, concurrency: 8 });
      const failed = await waitFor('fail', 'Failed');
      const cond = failed.status?.conditions?.find((c) => c.type === 'Failed');
      expect(cond?.reason).toBe('InvalidAccessKeyId');
      const shards = failed.status?.shards ?? [];
      const culprit = shards.find((s) => s.phase === 'Failed');
      expect(culprit, JSON.stringify(shards)).toBeDefined();
      expect(cond?.message).toContain(`shard ${culprit?.index} `);
      // The failing shard is the one whose range holds the bad day.
      expect(bad > (culprit?.startAfter ?? '') && (culprit?.endAt === undefined || bad < culprit.endAt)).toBe(true);
      expect(shards.filter((s) => s.phase === 'Failed')).toHaveLength(1);
      // The refused objects are not under the failed shard's checkpoint: a resumed run tries them again.
      const refused = proxy.requests.filter(
        (r) => r.bucket === bucket && r.operation === 'CopyObject' && r.status === 403 && r.key !== undefined,
      );
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r.key! > (culprit?.checkpoint ?? ''), `${r.key} under the checkpoint`).toBe(true);
    } finally {
      proxy.setRule(undefined);
    }
    // Fixed (the rule is gone); a spec edit runs the job again: every shard resumes from its checkpoint.
    await kubectl(['patch', 'ej', 'fail', '-n', namespace, '--type=merge', '-p', '{"spec":{"concurrency":9}}']);
    const done = await waitFor('fail', 'Complete');
    // The objects the job-level error failed were left above the checkpoint and done by the resumed run:
    // nothing is failed, every object is at the target, and none was written twice.
    expect(done.status?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('Completed');
    expectShardsAddUp(done, 4, keys.length);
    await expectAllAes256(bucket, keys);
    expectEveryKeyCopiedOnce(bucket, keys);
  }, 600_000);

  it("an unsharded run's checkpoint carries into the shard plan: raising parallelism mid-job writes no key twice", async () => {
    const bucket = await createBucket(s3, 'shardcarry');
    const keys = skewedKeys();
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 30 } : undefined));
    try {
      await apply('carry', bucket, { prefix: 'logs/', concurrency: 8 });
      await waitUntil(
        'a few hundred objects copied',
        () => Promise.resolve(copies(bucket).size >= 300 ? true : undefined),
        240_000,
        () => operator.logTail(30),
      );
      await kubectl(['patch', 'ej', 'carry', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
      const suspended = await waitFor('carry', 'Suspended');
      expect(suspended.status?.shards ?? []).toEqual([]);
      const checkpoint = (suspended.status?.checkpoint as { startAfter?: string } | undefined)?.startAfter;
      expect(checkpoint, 'the unsharded run saved a checkpoint').toBeTruthy();

      await kubectl([
        'patch',
        'ej',
        'carry',
        '-n',
        namespace,
        '--type=merge',
        '-p',
        '{"spec":{"suspend":false,"parallelism":4}}',
      ]);
      const done = await waitFor('carry', 'Complete');
      const shards = done.status?.shards ?? [];
      // The first shard starts at the beginning with the old checkpoint; the others cut the rest.
      expect(shards[0]?.startAfter).toBe('');
      expect(shards[1]?.startAfter && shards[1].startAfter > (checkpoint ?? '')).toBe(true);
      expectShardsAddUp(done, 4, keys.length);
      await expectAllAes256(bucket, keys);
      expectEveryKeyCopiedOnce(bucket, keys);
    } finally {
      proxy.setRule(undefined);
    }
  }, 600_000);
  it('a new selection with parallelism 1 drops the old shard plan and runs unsharded, as before shards', async () => {
    const bucket = await createBucket(s3, 'shardback');
    const keys = Array.from({ length: 200 }, (_, i) => `logs/${i % 4}/${randomBytes(4).toString('hex')}`);
    await putObjects(s3, bucket, keys);
    await apply('back', bucket, { prefix: 'logs/', parallelism: 2 });
    const sharded = await waitFor('back', 'Complete');
    expect(sharded.status?.shards).toHaveLength(2);
    // Another selection (an exclude that matches nothing still changes the fingerprint) at parallelism 1.
    await kubectl([
      'patch',
      'ej',
      'back',
      '-n',
      namespace,
      '--type=merge',
      '-p',
      '{"spec":{"parallelism":1,"exclude":["none/*"]}}',
    ]);
    await waitUntil(
      'the new generation to complete',
      async () => {
        const j = await job('back');
        const c = j.status?.conditions?.find((x) => x.type === 'Complete');
        return c?.status === 'True' && j.status?.observedGeneration === 2 ? j : undefined;
      },
      120_000,
      () => operator.logTail(30),
    );
    const after = await job('back');
    expect(after.status?.shards).toBeUndefined();
    expect(after.status?.shardPlan).toBeUndefined();
    expect(after.status?.progress).toMatchObject({ scanned: 200, encrypted: 0, alreadyEncrypted: 200 });
    expectEveryKeyCopiedOnce(bucket, keys);
  }, 600_000);

  it("item 8: a job an earlier operator kept as status.shards continues from each shard's checkpoint, as EncryptionShard objects", async () => {
    const bucket = await createBucket(s3, 'legacy');
    const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, keys);
    await apply('legacy', bucket, { parallelism: 2, suspend: true });
    await waitFor('legacy', 'Suspended');
    // What an operator before shard objects left: two shards in the job's status, each halfway.
    const spec = JSON.parse(
      (await kubectl(['get', 'ej', 'legacy', '-n', namespace, '-o', 'jsonpath={.spec}'])).stdout,
    ) as EncryptionJobSpec;
    const half = { scanned: 50, encrypted: 0, alreadyEncrypted: 50, skipped: 0, failed: 0, bytesEncrypted: 0 };
    const legacy = {
      shards: [
        {
          index: 0,
          startAfter: '',
          endAt: 'k099',
          phase: 'Running',
          checkpoint: 'k049',
          checkpointProgress: half,
          progress: half,
        },
        {
          index: 1,
          startAfter: 'k099',
          phase: 'Pending',
          checkpoint: 'k149',
          checkpointProgress: half,
          progress: half,
        },
      ],
      shardPlan: { spec: selectionFingerprint(spec), createdAt: new Date().toISOString() },
    };
    await kubectl([
      'patch',
      'ej',
      'legacy',
      '-n',
      namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: legacy }),
    ]);
    await kubectl(['patch', 'ej', 'legacy', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const done = await waitFor('legacy', 'Complete');
    // The keys under each checkpoint were not looked at again; every other key was copied once.
    const copied = copies(bucket);
    const below = keys.filter((k) => k <= 'k049' || (k > 'k099' && k <= 'k149'));
    expect(below.filter((k) => copied.has(k))).toEqual([]);
    expectEveryKeyCopiedOnce(
      bucket,
      keys.filter((k) => !below.includes(k)),
    );
    expect(done.status?.progress).toMatchObject({ scanned: 200, encrypted: 100, alreadyEncrypted: 100, failed: 0 });
    // The shards are objects now, with the ranges they had; the job's list is gone.
    expect((done.status?.shards ?? []).map((s) => [s.startAfter, s.endAt, s.phase])).toEqual([
      ['', 'k099', 'Complete'],
      ['k099', undefined, 'Complete'],
    ]);
    const raw = JSON.parse((await kubectl(['get', 'ej', 'legacy', '-n', namespace, '-o', 'json'])).stdout) as Job;
    expect(raw.status?.shards).toBeUndefined();
    expect(raw.status?.shardPlan).toMatchObject({ shards: 2 });
  });
});
