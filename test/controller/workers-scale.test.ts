// Issue 19's numbers for worker pods: 64 shards run as 64 worker pods (local
// `node dist/worker.js` processes run by the test's kubelet stand-in, driven by
// the real Job controller), 100 objects each, one pod killed mid-shard. Every
// CopyObject goes through the fault proxy (each key written once is counted on
// the wire); the operator talks to the apiserver through the kube proxy (its
// writes to the job are counted there); the apiserver's and etcd's own metrics
// say what every client wrote. The numbers are printed for docs/scale.md.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { EncryptionJob } from '../../src/controller/api.js';
import { compareKeys } from '../../src/engine/keys/shards.js';
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
} from '../harness/context.js';
import { expectEachKeyCopiedOnce, applyJob, readJob, waitForCondition } from '../harness/jobs.js';
import { startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';
import type { PodRunner } from '../harness/pod-runner.js';
import { startWorkerStack } from '../harness/worker-stack.js';
import type { ManagedProcess } from '../harness/process.js';
import { allowWorkerPods, applyWorkerServiceAccount } from '../harness/worker-rbac.js';

const info = inject('seaweed');
const SHARDS = 64;
const PER_SHARD = 100;
let s3: S3Client;
let proxy: FaultProxy;
let kubeProxy: KubeProxy;
let namespace: string;
let operator: OperatorProcess;
let kcm: ManagedProcess;
let runner: PodRunner;

/** Sums the samples of a Prometheus counter whose labels contain every `labels` pair. */
function counter(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** What the apiserver and etcd have written so far (all clients: other test files' too). */
async function writesSoFar(): Promise<{ shardWrites: number; jobWrites: number; walBytes: number }> {
  const api = (await kubectl(['get', '--raw', '/metrics'])).stdout;
  const etcd = await (await fetch(`${inject('kube').etcdUrl}/metrics`)).text();
  const status = (resource: string): number =>
    counter(api, 'apiserver_request_total', { resource, subresource: 'status', verb: 'PATCH' });
  return {
    shardWrites: status('encryptionshards'),
    jobWrites: status('encryptionjobs'),
    walBytes: counter(etcd, 'etcd_disk_wal_write_bytes_total'),
  };
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 64 });
  namespace = await createNamespace('workers64');
  await createCredentialsSecret(namespace, info);
  await applyWorkerServiceAccount(namespace);
  await allowWorkerPods(namespace);
  kubeProxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(`${join(inject('workDir'), namespace)}-kp`),
  });
  ({ kcm, runner, operator } = await startWorkerStack(namespace, { kubeconfig: kubeProxy.kubeconfig }));
}, 180_000);
afterAll(async () => {
  await operator?.stop();
  await runner?.stop();
  await kcm?.stop();
  await kubeProxy?.close();
  await proxy?.stop();
  s3?.destroy();
});

describe('64 worker pods (real Job controller, kubelet stand-in, SeaweedFS through the fault proxy)', () => {
  it('64 shards x 100 objects as 64 worker pods, one killed mid-shard: Complete, each key copied once, the killed shard resumed from its checkpoint', async () => {
    const bucket = await createBucket(s3, 'work64');
    const keys = Array.from({ length: SHARDS * PER_SHARD }, (_, i) => `obj/${String(i).padStart(5, '0')}.json`);
    await putObjects(s3, bucket, keys);
    // The 40th copy of the 6,000s range is held until its pod has been deleted mid-shard.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let heldKey: string | undefined;
    const unhook = proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'CopyObject' && r.key === 'obj/06040.json',
      before: async (r) => {
        heldKey = r.key;
        await released;
      },
      times: 1,
    });
    const before = await writesSoFar();
    const started = Date.now();
    const podsBefore = runner.started.length;
    try {
      await applyJob(
        { name: 'w64', namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
        { workers: { serviceAccountName: 's3-encryption-worker' }, parallelism: SHARDS, concurrency: 4 },
      );
      await waitUntil(
        'the copy to hold',
        () => Promise.resolve(heldKey),
        600_000,
        () => operator.logTail(30),
      );
      type Shards = { status?: { shards?: { index: number; startAfter: string; endAt?: string }[] } };
      const shards = (await readJob<Shards>(namespace, 'w64')).status?.shards ?? [];
      const index = shards.find(
        (s) =>
          compareKeys(heldKey ?? '', s.startAfter) > 0 &&
          (s.endAt === undefined || compareKeys(heldKey ?? '', s.endAt) <= 0),
      )?.index;
      expect(index).toBeDefined();
      const pod = (
        await kubectl([
          'get',
          'pods',
          '-n',
          namespace,
          '-l',
          'job-name=w64-workers',
          '-o',
          `jsonpath={.items[?(@.metadata.annotations.batch\\.kubernetes\\.io/job-completion-index=="${index}")].metadata.name}`,
        ])
      ).stdout.split(' ')[0];
      expect(pod).toBeTruthy();
      await kubectl(['-n', namespace, 'delete', 'pod', pod ?? '', '--wait=false']);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      release();
      unhook();
    }
    const done = await waitForCondition<EncryptionJob>(namespace, 'w64', 'Complete', {
      timeoutS: 900,
      logs: () => `${operator.logTail(30)}\n--- kcm\n${kcm.logTail(10)}`,
    });
    const seconds = (Date.now() - started) / 1000;
    const after = await writesSoFar();
    expect(done.status?.progress).toMatchObject({ scanned: keys.length, failed: 0 });
    expect(done.status?.shardCounts).toMatchObject({ total: SHARDS, complete: SHARDS });
    // Every key copied once on the wire, the killed shard's too: its new pod began at its checkpoint.
    expectEachKeyCopiedOnce(proxy, bucket, keys);
    const pods = runner.started.slice(podsBefore).filter((p) => p.startsWith('w64-workers-'));
    expect(pods.length).toBeGreaterThanOrEqual(SHARDS + 1);
    const operatorJobWrites = kubeProxy.requests.filter(
      (r) => r.method === 'PATCH' && r.path.split('?')[0]!.endsWith('/encryptionjobs/w64/status'),
    );
    // The operator reads the worker Job, the job and its shards from its informers' caches, not on every look.
    const gets = (suffix: string): number =>
      kubeProxy.requests.filter((r) => r.method === 'GET' && r.path.split('?')[0]!.endsWith(suffix)).length;
    const operatorGets = { workerJob: gets('/jobs/w64-workers'), job: gets('/encryptionjobs/w64') };
    const minutes = seconds / 60;
    const numbers = {
      workerPods: pods.length,
      objects: keys.length,
      seconds: Math.round(seconds),
      operatorJobWritesPerSecond: Number((operatorJobWrites.length / seconds).toFixed(2)),
      shardStatusWritesPerSecond: Number(((after.shardWrites - before.shardWrites) / seconds).toFixed(2)),
      jobStatusWritesPerSecond: Number(((after.jobWrites - before.jobWrites) / seconds).toFixed(2)),
      etcdWalBytesPerMinute: Math.round((after.walBytes - before.walBytes) / minutes),
      operatorGets,
    };
    console.log(`64 worker pods: ${JSON.stringify(numbers)}`);
    // The job is written at most once a second, whatever the shard count.
    expect(numbers.operatorJobWritesPerSecond).toBeLessThanOrEqual(1);
    // Polling every 2 s with GETs would be about 35 of each in 70 s.
    expect(operatorGets.workerJob).toBeLessThanOrEqual(5);
    expect(operatorGets.job).toBeLessThanOrEqual(10);
  }, 1_200_000);
});
