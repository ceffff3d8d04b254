// Issue 20, scenario 6: a record that must be durable is durable. The status write
// that records a multipart upload id is dropped (the kube proxy holds every
// PATCH of the job's status while the upload starts): the copy does not go on
// under an id no status holds. The object fails as transient and is looked at
// again, the unrecorded upload is aborted, and once the API server answers again
// the object is copied under an upload that was recorded first. Real
// kube-apiserver (the operator's least-privilege identity, through the kube
// proxy) and SeaweedFS through the fault proxy; the job's run is the operator's
// JobRun in this process, with the multipart threshold lowered to 8 MiB so a
// 15 MiB object is copied part by part (the CRD keeps S3's 5 GiB).
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { selectionFingerprint } from '../../src/controller/checkpoint.js';
import { JobRun } from '../../src/controller/jobrun.js';
import { EXIT_RETRY, runWorker } from '../../src/controller/workerpod.js';
import { KubeClient } from '../../src/controller/kubeclient.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { createBucket, createNamespace, getJob, jobYaml, kubectl, putObjects, s3Client } from '../harness/context.js';
import { applyJob, readJob } from '../harness/jobs.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { ShardStore } from '../../src/controller/shardstore.js';
import { calls, startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
const MiB = 1024 * 1024;
let s3: S3Client;
let s3proxy: FaultProxy;
let kubeProxy: KubeProxy;
let client: KubeClient;
let namespace: string;

beforeAll(async () => {
  s3 = s3Client(info);
  s3proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 20 });
  namespace = await createNamespace('durable');
  kubeProxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'durable-')),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeProxy.kubeconfig);
  client = new KubeClient(kc, { callTimeoutMs: 2000 });
});
afterAll(async () => {
  await kubeProxy?.close();
  await s3proxy?.stop();
  s3?.destroy();
});

describe('durable records (kube-apiserver behind the kube proxy, SeaweedFS behind the fault proxy)', () => {
  it('scenario 6: a dropped status write of a multipart upload id stops that copy and aborts the upload; the job completes later', async () => {
    const bucket = await createBucket(s3, 'durable');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: Buffer.alloc(15 * MiB + 1, 5) }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small', Body: 'x' }));
    const name = 'durable-mp';
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name,
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        s3: { ...info, s3Endpoint: s3proxy.url },
        concurrency: 1,
      }),
    });
    const job = await client.getJob(namespace, name);
    // From the first CreateMultipartUpload on, every status write of the job gets no answer for 15 s:
    // longer than a durable write is tried (10 s), so the first upload's record cannot be made.
    const held: Promise<void>[] = [];
    s3proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'CreateMultipartUpload',
      times: 1,
      before: () => {
        kubeProxy.freeze(calls.statusWrite(name));
        held.push(new Promise((resolve) => setTimeout(resolve, 15_000)).then(() => kubeProxy.unfreeze()));
        return Promise.resolve();
      },
    });
    const epoch = Date.now() - s3proxy.now(); // the fault proxy's clock, as Date.now()
    const run = new JobRun(
      job,
      { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
      {
        client,
        metrics: new Metrics(),
        log: createLogger('silent'),
        planTuning: { multipartThreshold: 8 * MiB, multipartPartSize: 5 * MiB },
      },
    );
    const result = await run.done;
    await Promise.all(held);

    const ours = s3proxy.requests.filter((r) => r.bucket === bucket);
    const parts = ours.filter((r) => r.operation === 'UploadPartCopy');
    const aborted = ours.filter((r) => r.operation === 'AbortMultipartUpload');
    const log = (): string =>
      ours.map((r) => `${Math.round(r.at)} ${r.operation} ${r.key ?? ''} ${r.uploadId ?? ''} ${r.status}`).join('\n');
    // The upload whose record was dropped was aborted, and not one part was copied under it.
    expect(aborted.length, log()).toBeGreaterThanOrEqual(1);
    for (const a of aborted)
      expect(
        parts.filter((p) => p.uploadId === a.uploadId),
        log(),
      ).toEqual([]);
    // Every part was copied under an upload id the API server had accepted in the job's status before.
    const recordedBefore = (uploadId: string, at: number): boolean =>
      kubeProxy.requests.some(
        (k) =>
          calls.statusWrite(name)(k.method, k.path) &&
          k.status === 200 &&
          (k.body ?? '').includes(uploadId) &&
          (k.answeredAt ?? Infinity) <= epoch + at,
      );
    expect(parts.length, log()).toBeGreaterThanOrEqual(4);
    for (const p of parts) expect(recordedBefore(p.uploadId ?? '?', p.at), `${p.uploadId}\n${log()}`).toBe(true);
    // The job completes: the object at the target, nothing failed, no upload left open.
    expect(result?.status).toBe('Complete');
    expect(result?.counters).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big' }));
    expect(head.ServerSideEncryption).toBe('AES256');
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    const status = (await getJob(namespace, name)).status;
    expect(status?.phase).toBe('Complete');
    expect(status?.progress).toMatchObject({ encrypted: 2, failed: 0 });
  }, 180_000);

  it('scenario 6: a worker whose final shard write fails exits non-zero, so the Job runs its index again', async () => {
    const bucket = await createBucket(s3, 'durablew');
    await putObjects(s3, bucket, ['a', 'b', 'c']);
    const name = 'durable-worker';
    await applyJob(
      { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: s3proxy.url } },
      { workers: { serviceAccountName: 'worker' }, concurrency: 1 },
    );
    // The shard plan a planning pod would have made: one shard object, the whole bucket.
    const job = await client.getJob(namespace, name);
    const spec = selectionFingerprint(job.spec);
    await new ShardStore(client, createLogger('silent')).create(
      job,
      [{ index: 0, startAfter: '', phase: 'Pending' }],
      spec,
    );
    await client.patchStatus(namespace, name, {
      shardPlan: { spec, shards: 1, createdAt: new Date().toISOString() },
    });
    // From the copy of the last key on, the shard's status gets no answer: its final write is lost.
    s3proxy.hook({
      match: (r) => r.bucket === bucket && r.operation === 'CopyObject' && r.key === 'c',
      times: 1,
      before: () => {
        kubeProxy.freeze(calls.shardStatusWrite(name));
        return Promise.resolve();
      },
    });
    const args = { namespace, job: name, generation: job.metadata?.generation ?? 0, index: 0, plan: false };
    const log = createLogger('silent');
    // A worker pod gets the job's Secret as its environment (workerjob.ts).
    process.env.AWS_ACCESS_KEY_ID = info.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = info.secretAccessKey;
    let code: number;
    try {
      code = await runWorker(client, args, new AbortController().signal, log);
      // The write in flight when the worker gave up ends frozen too (its call's deadline is 2 s).
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      kubeProxy.unfreeze();
    }
    // The objects are done, but the status does not say so: the index must run again, not count as succeeded.
    expect(code).toBe(EXIT_RETRY);
    type Shards = { status?: { shards?: { phase: string }[] } };
    expect((await readJob<Shards>(namespace, name)).status?.shards?.[0]?.phase).not.toBe('Complete');
    // The Job's next attempt of the index finds the objects at the target and records the shard Complete.
    expect(await runWorker(client, args, new AbortController().signal, log)).toBe(0);
    expect((await readJob<Shards>(namespace, name)).status?.shards?.[0]?.phase).toBe('Complete');
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
  }, 300_000);
});
