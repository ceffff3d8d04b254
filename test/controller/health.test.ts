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

  it('a watch that fails right after each restart is restarted with a growing delay, which starts again once a watch lasts', async () => {
    const restartDelays = (since: number): number[] =>
      operator
        .logTail(400)
        .split('\n')
        .flatMap((line) => {
          try {
            const l = JSON.parse(line) as { msg?: string; retryInMs?: number; time?: string };
            return l.msg === 'watch failed; restarting the informer' && Date.parse(l.time ?? '') >= since && l.retryInMs
              ? [l.retryInMs]
              : [];
          } catch {
            return [];
          }
        });
    // Each informer (EncryptionJobs, EncryptionShards) backs off on its own.
    const watches = (since: number, plural = 'encryptionjobs'): number =>
      proxy.requests.filter((r) => r.at >= since && r.path.includes(`/${plural}`) && /[?&]watch=(true|1)/.test(r.path))
        .length;
    // Let the watch of the test before settle (a watch lasting 10 s resets the delay).
    await sleep(11_000);
    const from = Date.now();
    proxy.failWatches(500);
    await sleep(16_000);
    proxy.failWatches(undefined);
    const delays = restartDelays(from);
    // 1, 2, 4, 8 s: about 4 restarts in 16 s (the old code restarted every second: about 15).
    expect(delays.slice(0, 4), JSON.stringify(delays)).toEqual([1000, 2000, 4000, 8000]);
    expect(watches(from)).toBeLessThanOrEqual(6);
    expect(watches(from, 'encryptionshards')).toBeLessThanOrEqual(6);
    // The watch works again; after it has lasted, a new failure starts again at 1 s.
    await waitUntil(
      'a watch that lasts',
      () =>
        proxy.requests.some((r) => r.at > from && /[?&]watch=(true|1)/.test(r.path) && r.status === 200)
          ? true
          : undefined,
      30_000,
      () => operator.logTail(20),
    );
    await sleep(11_000);
    const again = Date.now();
    proxy.failWatches(500);
    await sleep(2_500);
    proxy.failWatches(undefined);
    expect(restartDelays(again)[0]).toBe(1000);
  }, 120_000);
});
