// /healthz says when the operator cannot mend itself: a reconcile stuck for
// longer than --stall-timeout, or a watch of jobs failing for that long. The
// operator runs behind a kube proxy that holds its Secret reads (a wedged
// worker) or refuses every connection (an unreachable apiserver).
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  jobYaml,
  kubectl,
  putObjects,
  s3Client,
  sleep,
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { calls, startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
let s3: S3Client;
let namespace: string;
let proxy: KubeProxy;
let operator: OperatorProcess;

async function healthz(): Promise<{ status: number; body: string }> {
  const res = await fetch(`${operator.probeUrl}/healthz`);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('health');
  await createCredentialsSecret(namespace, info);
  proxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'health-')),
  });
  operator = await startOperator({
    watchNamespace: namespace,
    kubeconfig: proxy.kubeconfig,
    args: ['--stall-timeout=3'],
  });
});

afterAll(async () => {
  await operator?.stop();
  await proxy?.close();
  s3?.destroy();
});

describe('/healthz', () => {
  it('fails while a reconcile is stuck longer than the stall timeout, and recovers', async () => {
    expect((await healthz()).status).toBe(200);
    const bucket = await createBucket(s3, 'stuck');
    await putObjects(s3, bucket, ['s/1', 's/2']);
    proxy.freeze(calls.secretRead);
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'stuck', namespace, bucket, encryption: { type: 'AES256' }, s3: info }),
    });
    const sick = await waitUntil(
      'healthz to fail',
      async () => {
        const h = await healthz();
        return h.status === 503 ? h : undefined;
      },
      30_000,
      () => operator.logTail(20),
    );
    expect(sick.body).toContain(`reconcile of ${namespace}/stuck`);
    // Not before the stall timeout: the first frozen read is at least 3 s old.
    const firstFrozen = proxy.requests.find((r) => r.frozen)!;
    expect(Date.now() - firstFrozen.at).toBeGreaterThanOrEqual(3000);

    proxy.unfreeze();
    await waitUntil(
      'healthz to pass again',
      async () => ((await healthz()).status === 200 ? true : undefined),
      30_000,
      () => operator.logTail(20),
    );
    await kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/stuck']);
  });

  it('fails while the watch of jobs cannot reach the apiserver for longer than the stall timeout, and recovers', async () => {
    expect((await healthz()).status).toBe(200);
    const cutAt = Date.now();
    proxy.refuse(true);
    // Within the stall timeout it is still healthy: a watch may fail now and then.
    await sleep(1000);
    expect((await healthz()).status).toBe(200);
    const sick = await waitUntil(
      'healthz to fail',
      async () => {
        const h = await healthz();
        return h.status === 503 ? h : undefined;
      },
      30_000,
      () => operator.logTail(20),
    );
    expect(sick.body).toContain('watch of EncryptionJobs failing');
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(3000);

    proxy.refuse(false);
    await waitUntil(
      'healthz to pass again',
      async () => ((await healthz()).status === 200 ? true : undefined),
      60_000,
      () => operator.logTail(20),
    );
    // The watch works again: a new job is picked up.
    const bucket = await createBucket(s3, 'back');
    await putObjects(s3, bucket, ['b/1']);
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'back', namespace, bucket, encryption: { type: 'AES256' }, s3: info }),
    });
    await kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/back']);
  }, 150_000);
});
