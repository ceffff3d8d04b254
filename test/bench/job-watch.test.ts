// The bench's operator contender (bench/lib/contenders.ts `operator`) on the real kube-apiserver,
// with its own list/watch of the EncryptionJob going through the kube proxy: while the apiserver
// answers every watch with 429 Too Many Requests (as it did under load in one bench run, which
// then lost the operator row), the contender still reports the run: Complete, every object
// re-encrypted, and the 429s it rode out named in its output.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { operator, type Env } from '../../bench/lib/contenders.js';
import type { KubeEnv } from '../harness/kube.js';
import { createBucket, createCredentialsSecret, createNamespace, putObjects, s3Client } from '../harness/context.js';
import { startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
let s3: S3Client;
let namespace: string;
let proxy: KubeProxy;
let workDir: string;

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('benchwatch');
  await createCredentialsSecret(namespace, info);
  workDir = mkdtempSync(join(inject('workDir'), 'benchwatch-'));
  // The bench's own identity (admin) through the proxy; the operator talks to the apiserver directly.
  proxy = await startKubeProxy({ kubeconfig: inject('kube').adminKubeconfig, dir: workDir });
});
afterAll(async () => {
  await proxy?.close();
  s3?.destroy();
});

describe('bench: the operator contender keeps its row through apiserver watch failures', () => {
  it('scenario: every watch of the bench answered 429 Too Many Requests; the row is still measured, Complete', async () => {
    const bucket = await createBucket(s3, 'benchwatch');
    const keys = Array.from({ length: 60 }, (_, i) => `data/${String(i).padStart(3, '0')}`);
    await putObjects(s3, bucket, keys);
    const key = info.keys.find((k) => k.alias === 'alias/test-key-a')!;
    const env: Env = {
      s3Endpoint: info.s3Endpoint,
      kmsEndpoint: info.kmsEndpoint,
      region: info.region,
      accessKeyId: info.accessKeyId,
      secretAccessKey: info.secretAccessKey,
      kmsAlias: key.alias,
      kmsArn: key.arn,
      workDir,
    };
    const kube = { ...inject('kube'), adminKubeconfig: proxy.kubeconfig } as unknown as KubeEnv;
    const contender = operator(kube, namespace, undefined, [`--watch-namespace=${namespace}`]);

    // Lists and the create still work; every watch is refused, for the whole run.
    proxy.failWatches(429);
    const measured = await contender.run(env, { bucket, prefix: 'data/' });

    expect(measured.code, measured.stdout).toBe(0);
    expect(measured.wallSeconds).toBeGreaterThan(0);
    const out = JSON.parse(measured.stdout) as {
      conditions: { type: string; status: string }[];
      progress: Record<string, number>;
      watchRecoveries?: string[];
    };
    expect(out.conditions).toContainEqual(expect.objectContaining({ type: 'Complete', status: 'True' }));
    expect(out.progress.encrypted).toBe(keys.length);
    expect(out.watchRecoveries?.some((r) => r.startsWith('429'))).toBe(true);
    expect(proxy.requests.filter((r) => r.status === 429 && r.path.includes('watch=true')).length).toBeGreaterThan(0);
    for (const k of [keys[0]!, keys.at(-1)!]) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
      expect(head.ServerSideEncryption).toBe('aws:kms');
    }
  });
});
