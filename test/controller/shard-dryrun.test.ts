// A dry run of a sharded job (spec.parallelism above 1, spec.dryRun) runs as
// shards of its own (status.dryRunShards, with their own checkpoints): it never
// changes an object, never touches the real shard plan or its checkpoints, and
// the real run afterwards resumes each shard from where it stopped. Real
// apiserver + SeaweedFS through the fault proxy (writes counted on the wire).
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
import { applyJob, readJob } from '../harness/jobs.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

interface Shard {
  index: number;
  startAfter: string;
  endAt?: string;
  phase: string;
  checkpoint?: string;
  progress?: Record<string, number>;
}
interface Status {
  observedGeneration?: number;
  phase?: string;
  progress?: Record<string, number | string>;
  conditions?: { type: string; status: string; reason: string; message: string }[];
  shards?: Shard[];
  shardPlan?: unknown;
  dryRunShards?: Shard[];
  dryRunShardPlan?: unknown;
}

async function status(name: string): Promise<Status> {
  return (await readJob<{ status?: Status }>(namespace, name)).status ?? {};
}

async function generation(name: string): Promise<number> {
  const out = await kubectl(['get', 'encryptionjob', name, '-n', namespace, '-o', 'jsonpath={.metadata.generation}']);
  return Number(out.stdout);
}

/** Waits until the current generation has the condition True. */
async function settled(name: string, type: string): Promise<Status> {
  const gen = await generation(name);
  return waitUntil(
    `${name} generation ${gen} ${type}`,
    async () => {
      const s = await status(name);
      const c = s.conditions?.find((x) => x.type === type);
      return s.observedGeneration === gen && c?.status === 'True' ? s : undefined;
    },
    300_000,
    () => operator.logTail(30),
  );
}

async function patch(name: string, spec: Record<string, unknown>): Promise<void> {
  await kubectl(['patch', 'ej', name, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec })]);
}

/** Requests that write objects of the bucket (copies and puts), by key. */
function writes(bucket: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of proxy.requests) {
    if (r.bucket !== bucket || r.key === undefined || r.upstreamStatus !== 200) continue;
    if (!['CopyObject', 'PutObject', 'UploadPartCopy', 'UpdateObjectEncryption'].includes(r.operation)) continue;
    out.set(r.key, (out.get(r.key) ?? 0) + 1);
  }
  return out;
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 29 });
  namespace = await createNamespace('sharddry');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('sharded dry runs (SeaweedFS through the fault proxy)', () => {
  it('a sharded dry run mid-job has its own shards, changes nothing, leaves the real plan alone; the real run resumes it', async () => {
    const bucket = await createBucket(s3, 'sharddry');
    const keys = Array.from(
      { length: 1200 },
      (_, i) => `logs/${i < 900 ? 'd5' : `d${i % 3}`}/${String(i).padStart(4, '0')}.json`,
    );
    await putObjects(s3, bucket, keys);
    proxy.setRule((r) => (r.bucket === bucket && r.operation === 'CopyObject' ? { delayMs: 30 } : undefined));
    try {
      await applyJob(
        { name: 'dry', namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
        { prefix: 'logs/', parallelism: 4, concurrency: 4 },
      );
      await waitUntil(
        'a few hundred objects copied',
        () => Promise.resolve(writes(bucket).size >= 200 ? true : undefined),
        240_000,
        () => operator.logTail(30),
      );
      await patch('dry', { suspend: true });
      await settled('dry', 'Suspended');
    } finally {
      proxy.setRule(undefined);
    }
    const before = await status('dry');
    expect(before.shards).toHaveLength(4);
    expect(before.shards?.some((s) => s.phase !== 'Complete')).toBe(true);
    const copiedBefore = writes(bucket);
    expect(copiedBefore.size).toBeLessThan(keys.length);

    // The dry run: sharded, its own plan and checkpoints.
    await patch('dry', { suspend: false, dryRun: true });
    const dry = await settled('dry', 'Complete');
    expect(dry.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('DryRunCompleted');
    expect(dry.dryRunShards?.map((s) => s.phase)).toEqual(['Complete', 'Complete', 'Complete', 'Complete']);
    expect(dry.dryRunShardPlan).toBeDefined();
    expect(dry.progress?.scanned).toBe(keys.length);
    expect(dry.progress?.wouldEncrypt).toBe(keys.length - copiedBefore.size);
    expect(dry.progress?.alreadyEncrypted).toBe(copiedBefore.size);
    // Nothing written, and the real shards (plan, phases, checkpoints, counters) exactly as they were.
    expect(writes(bucket)).toEqual(copiedBefore);
    expect(dry.shards).toEqual(before.shards);
    expect(dry.shardPlan).toEqual(before.shardPlan);

    // The real run resumes each shard from its own checkpoint; the dry run's shards go.
    await patch('dry', { dryRun: false });
    const done = await settled('dry', 'Complete');
    expect(done.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('Completed');
    expect(done.dryRunShards).toBeUndefined();
    expect(done.dryRunShardPlan).toBeUndefined();
    expect(done.shards?.map((s) => [s.startAfter, s.endAt])).toEqual(
      before.shards?.map((s) => [s.startAfter, s.endAt]),
    );
    expect(done.progress?.scanned).toBe(keys.length);
    const seen = writes(bucket);
    expect(
      [...seen.values()].filter((n) => n > 1),
      'objects written twice',
    ).toEqual([]);
    expect(seen.size).toBe(keys.length);
    for (const key of keys.filter((_, i) => i % 10 === 0)) {
      const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(h.ServerSideEncryption, key).toBe('AES256');
    }
  }, 600_000);
});
