// Every Kubernetes call of the controller has a deadline: a connection that
// hangs without a reset (the kube proxy holds the request, answers nothing)
// ends in bounded time with an error naming the call, so the reconcile is
// retried instead of holding its worker for good; once the API server answers
// again, the same client works. Real kube-apiserver behind the kube proxy,
// with the operator's least-privilege identity.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { ApiTimeoutError, KubeClient } from '../../src/controller/kubeclient.js';
import { createCredentialsSecret, createNamespace, jobYaml, kubectl } from '../harness/context.js';
import { calls, startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
let namespace: string;
let proxy: KubeProxy;
let client: KubeClient;

beforeAll(async () => {
  namespace = await createNamespace('kubetimeout');
  await createCredentialsSecret(namespace, info);
  proxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'kubetimeout-')),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(proxy.kubeconfig);
  client = new KubeClient(kc, { callTimeoutMs: 1000 });
});
afterAll(async () => {
  await proxy?.close();
});

async function timing<T>(work: Promise<T>): Promise<{ ms: number; error?: unknown; value?: T }> {
  const started = Date.now();
  try {
    const value = await work;
    return { ms: Date.now() - started, value };
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
}

describe('deadlines on Kubernetes calls (kube-apiserver behind a proxy that holds requests)', () => {
  it('a Secret read that gets no answer ends after the deadline with an error naming it; the next read works', async () => {
    proxy.freeze(calls.secretRead);
    let hung;
    try {
      hung = await timing(client.readSecret(namespace, 's3-credentials'));
    } finally {
      proxy.unfreeze();
    }
    expect(hung.error).toBeInstanceOf(ApiTimeoutError);
    expect(String(hung.error)).toContain(`read Secret ${namespace}/s3-credentials`);
    expect(hung.ms).toBeGreaterThanOrEqual(900);
    expect(hung.ms).toBeLessThan(15_000);
    expect(proxy.requests.some((r) => r.frozen && r.path.includes('/secrets/s3-credentials'))).toBe(true);
    const data = await client.readSecret(namespace, 's3-credentials');
    expect(data.AWS_ACCESS_KEY_ID).toBe(info.accessKeyId);
  });

  it('a status write that gets no answer ends after the deadline too', async () => {
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'held', namespace, bucket: 'any-bucket', encryption: { type: 'AES256' }, s3: info }),
    });
    proxy.freeze(calls.statusWrite('held'));
    let hung;
    try {
      hung = await timing(client.patchStatus(namespace, 'held', { phase: 'Pending' }));
    } finally {
      proxy.unfreeze();
    }
    expect(hung.error).toBeInstanceOf(ApiTimeoutError);
    expect(String(hung.error)).toContain(`patch the status of EncryptionJob ${namespace}/held`);
    expect(hung.ms).toBeLessThan(15_000);
    const written = await client.patchStatus(namespace, 'held', { phase: 'Pending' });
    expect(written.status?.phase).toBe('Pending');
  });
});
