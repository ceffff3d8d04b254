// Issue 19's numbers for shards as objects, on the real kube-apiserver: a plan of
// 1,024 shards (EncryptionShard objects) runs to Complete in the operator, every
// key copied once; the job stays small whatever the shard count, and so does each
// shard, also in the worst case (1 KiB keys, the most open uploads a shard run
// keeps). The operator talks to the apiserver through the kube proxy, so its
// writes are counted on the wire. The numbers are printed for docs/scale.md.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { EncryptionJob, JobProgress, ShardStatus } from '../../src/controller/api.js';
import { KubeClient } from '../../src/controller/kubeclient.js';
import { SHARD_MAX_OPEN_UPLOADS, ShardStore, shardName } from '../../src/controller/shardstore.js';
import { clip } from '../../src/controller/tenancy.js';
import { createLogger } from '../../src/log.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  type OperatorProcess,
} from '../harness/context.js';
import { applyJob, expectEachKeyCopiedOnce, waitForCondition } from '../harness/jobs.js';
import { startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
const KiB = 1024;
let s3: S3Client;
let proxy: FaultProxy;
let kubeProxy: KubeProxy;
let namespace: string;
let operator: OperatorProcess;

/** The object as `kubectl get -o json --show-managed-fields` prints it: what etcd keeps, near enough. */
async function sizeOf(kind: string, name: string): Promise<number> {
  const out = await kubectl(['get', kind, name, '-n', namespace, '-o', 'json', '--show-managed-fields']);
  return Buffer.byteLength(out.stdout);
}

/** Requests per second at the proxy over the run, and the most in any one second. */
function rate(times: number[]): { total: number; perSecond: number; busiestSecond: number } {
  if (times.length === 0) return { total: 0, perSecond: 0, busiestSecond: 0 };
  const span = Math.max(1, (Math.max(...times) - Math.min(...times)) / 1000);
  const bySecond = new Map<number, number>();
  for (const t of times) bySecond.set(Math.floor(t / 1000), (bySecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  return {
    total: times.length,
    perSecond: Number((times.length / span).toFixed(2)),
    busiestSecond: Math.max(...bySecond.values()),
  };
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 19 });
  namespace = await createNamespace('scale');
  await createCredentialsSecret(namespace, info);
  kubeProxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'scale-')),
  });
  operator = await startOperator({ watchNamespace: namespace, kubeconfig: kubeProxy.kubeconfig });
});
afterAll(async () => {
  await operator?.stop();
  await kubeProxy?.close();
  await proxy?.stop();
  s3?.destroy();
});

describe('shards as objects at scale (kube-apiserver behind the kube proxy, SeaweedFS behind the fault proxy)', () => {
  it('a plan of 1,024 shards completes, every key once; the job stays under 64 KiB, each shard under 16 KiB, the job is written at most once a second', async () => {
    const bucket = await createBucket(s3, 'scale');
    // Long keys (about 1 KiB: the most S3 allows), so each shard's bounds and checkpoint are as big as they get.
    // (SeaweedFS takes at most 255 bytes a path segment: four of 240.)
    const long = Array.from({ length: 4 }, () => 'k'.repeat(240)).join('/');
    const keys = Array.from({ length: 2048 }, (_, i) => `d/${String(i).padStart(5, '0')}/${long}`);
    await putObjects(s3, bucket, keys);
    const start = Date.now();
    await applyJob(
      { name: 'big', namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
      { shards: 1024, parallelism: 16, concurrency: 4 },
    );
    const done = await waitForCondition<EncryptionJob>(namespace, 'big', 'Complete', {
      timeoutS: 900,
      logs: () => operator.logTail(40),
    });
    const seconds = (Date.now() - start) / 1000;
    expect(done.status?.progress).toMatchObject({ scanned: 2048, encrypted: 2048, failed: 0 });
    expect(done.status?.shardCounts).toEqual({ total: 1024, pending: 0, running: 0, complete: 1024, failed: 0 });
    expectEachKeyCopiedOnce(proxy, bucket, keys);

    const jobBytes = await sizeOf('encryptionjob', 'big');
    const shardSizes = await Promise.all(
      [0, 1, 511, 1022, 1023].map((i) => sizeOf('encryptionshard', shardName('big', i, false))),
    );
    const list = JSON.parse(
      (await kubectl(['get', 'eshard', '-n', namespace, '-l', 's3encryption.dev/job=big', '-o', 'json'])).stdout,
    ) as { items: unknown[] };
    expect(list.items).toHaveLength(1024);
    const jobWrites = kubeProxy.requests
      .filter((r) => r.method === 'PATCH' && r.path.split('?')[0]!.endsWith('/encryptionjobs/big/status'))
      .map((r) => r.at);
    const shardWrites = kubeProxy.requests
      .filter((r) => r.method === 'PATCH' && /\/encryptionshards\/big-shard-\d+\/status$/.test(r.path.split('?')[0]!))
      .map((r) => r.at);
    const creates = kubeProxy.requests.filter((r) => r.method === 'POST' && r.path.includes('/encryptionshards'));
    const numbers = {
      shards: 1024,
      objects: 2048,
      seconds: Math.round(seconds),
      jobBytes,
      largestShardBytes: Math.max(...shardSizes),
      jobWrites: rate(jobWrites),
      shardStatusWrites: rate(shardWrites),
      shardCreates: creates.length,
    };
    console.log(`1,024-shard plan: ${JSON.stringify(numbers)}`);
    expect(jobBytes).toBeLessThanOrEqual(64 * KiB);
    expect(Math.max(...shardSizes)).toBeLessThanOrEqual(16 * KiB);
    // The job's status is coalesced to one write a second, whatever the shard count.
    expect(numbers.jobWrites.perSecond).toBeLessThanOrEqual(1);
    expect(creates).toHaveLength(1024);
  }, 1_200_000);

  it('the worst case: a shard with 1 KiB keys and its most open uploads stays under 16 KiB; a job with 20 failures of 1 KiB keys under 64 KiB', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(inject('kube').operatorKubeconfig);
    const client = new KubeClient(kc);
    await applyJob(
      { name: 'worst', namespace, bucket: 'b'.repeat(63), encryption: { type: 'AES256' }, s3: info },
      { suspend: true, shards: 1024, parallelism: 256 },
    );
    const job = await client.getJob(namespace, 'worst');
    const key = (c: string): string => c.repeat(1024);
    const counters: JobProgress = {
      scanned: 9e15,
      encrypted: 9e15,
      alreadyEncrypted: 9e15,
      skipped: 9e15,
      failed: 9e15,
      bytesEncrypted: 9e18,
      skippedByReason: { archived: 9e15, filtered: 9e15, vanished: 9e15, unsupported: 9e15 },
    };
    const shard: ShardStatus = {
      index: 1023,
      startAfter: key('a'),
      endAt: key('c'),
      phase: 'Running',
      checkpoint: key('b'),
      checkpointProgress: counters,
      progress: { ...counters, total: 9e15, summary: '99%' },
      openUploads: Array.from({ length: SHARD_MAX_OPEN_UPLOADS }, (_, i) => ({
        key: `${key('u').slice(0, 1020)}${String(i).padStart(4, '0')}`,
        // AWS upload ids run to about 130 characters; twice that, to be safe.
        uploadId: 'X'.repeat(256),
      })),
      budgetHeld: 9e15,
      noncurrentVersions: 9e15,
      message: clip(`InternalError: ${'m'.repeat(2000)}`),
    };
    await new ShardStore(client, createLogger('silent')).create(job, [shard], 'v2:0123456789abcdef');
    const shardBytes = await sizeOf('encryptionshard', shardName('worst', 1023, false));

    const failure = { key: key('f'), operation: 'CopyObject', code: 'InternalError', message: clip('x'.repeat(2000)) };
    const condition = (type: string) => ({
      type,
      status: 'False',
      reason: 'SomeLongReasonName',
      message: clip('y'.repeat(2000)),
      observedGeneration: 9e15,
      lastTransitionTime: new Date().toISOString(),
    });
    await client.patchStatus(namespace, 'worst', {
      observedGeneration: 9e15,
      phase: 'Running',
      conditions: ['Progressing', 'Complete', 'Failed', 'Suspended', 'Reconciling', 'Stalled'].map(condition) as never,
      progress: { ...counters, total: 9e15, summary: '99%', wouldEncrypt: 9e15, wouldEncryptBytes: 9e18 },
      recentFailures: Array.from({ length: 20 }, () => failure),
      shardPlan: {
        spec: 'v2:0123456789abcdef',
        createdAt: new Date().toISOString(),
        estimatedObjects: 9e15,
        sampleRequests: 9e15,
        shards: 1024,
        completedFor: 'v2:0123456789abcdef',
      },
      shardCounts: { total: 1024, pending: 1024, running: 0, complete: 0, failed: 0 },
      inventory: { manifest: `s3://${'i'.repeat(63)}/${key('m')}`, createdAt: new Date().toISOString(), objects: 9e15 },
      report: `s3://${'r'.repeat(63)}/${key('r')}`,
      kmsKeyArn: `arn:aws:kms:us-east-1:111122223333:key/${'k'.repeat(36)}`,
      noncurrentVersions: 9e15,
      retries: 6,
      retryFailed: { handled: key('h').slice(0, 253), message: clip('z'.repeat(2000)), time: new Date().toISOString() },
    });
    const jobBytes = await sizeOf('encryptionjob', 'worst');
    console.log(`worst case: ${JSON.stringify({ shardBytes, jobBytes })}`);
    expect(shardBytes).toBeLessThanOrEqual(16 * KiB);
    expect(jobBytes).toBeLessThanOrEqual(64 * KiB);
  }, 120_000);
});
