// A job applied before its Secret (Argo CD sync order, External Secrets still
// fetching) waits with a clear condition and backoff, and starts by itself when
// the Secret appears: no spec edit, no terminal Failed. The operator keeps its
// least-privilege RBAC (secrets: get only), so it looks again on a backoff
// instead of watching Secrets; the kube proxy counts how often it looked.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
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

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('secwait');
  proxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'secwait-')),
  });
  operator = await startOperator({ watchNamespace: namespace, kubeconfig: proxy.kubeconfig });
});

afterAll(async () => {
  await operator?.stop();
  await proxy?.close();
  s3?.destroy();
});

describe('a job whose Secret does not exist yet', () => {
  it('waits (Pending, Progressing=False SecretNotFound) with backoff, then starts when the Secret appears', async () => {
    const bucket = await createBucket(s3, 'late');
    await putObjects(s3, bucket, ['w/1', 'w/2', 'w/3']);
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name: 'late',
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        s3: info,
        secretName: 'late-creds',
      }),
    });
    const waiting = await waitUntil(
      'the waiting condition',
      async () => {
        const j = await getJob(namespace, 'late');
        return j.status?.phase === 'Pending' ? j : undefined;
      },
      30_000,
      () => operator.logTail(20),
    );
    const progressing = waiting.status?.conditions?.find((c) => c.type === 'Progressing');
    expect(progressing).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(progressing?.message).toContain('late-creds');
    expect(progressing?.message).toContain(namespace);
    expect(waiting.status?.conditions?.find((c) => c.type === 'Failed')?.status ?? 'False').toBe('False');

    // It keeps waiting, not failing, and looks again on a growing backoff (1, 2, 4, 8 s ...), not in a loop.
    const since = Date.now();
    await sleep(12_000);
    const still = await getJob(namespace, 'late');
    expect(still.status?.phase).toBe('Pending');
    const reads = proxy.requests.filter(
      (r) => calls.secretRead(r.method, r.path) && r.path.includes('late-creds') && r.at >= since,
    );
    console.log(`Secret looked for ${reads.length} times in 12 s`);
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.length).toBeLessThanOrEqual(6);
    // One status write and one event for the waiting state, not one per look.
    const events = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=late,reason=SecretNotFound',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.stdout.trim().split(/\s+/)).toHaveLength(1);

    await createCredentialsSecret(namespace, info, 'late-creds');
    const appeared = Date.now();
    await kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/late']);
    console.log(`started ${((Date.now() - appeared) / 1000).toFixed(1)} s after the Secret appeared`);
    const done = await getJob(namespace, 'late');
    expect(done.status?.progress).toMatchObject({ scanned: 3, encrypted: 3, failed: 0 });
    expect(
      (await kubectl(['get', 'ej', 'late', '-n', namespace, '-o', 'jsonpath={.metadata.generation}'])).stdout,
    ).toBe('1');
    expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'w/3' }))).ServerSideEncryption).toBe('AES256');
  });

  it('a Secret without the keys waits too (SecretIncomplete) and starts once it is filled in', async () => {
    const bucket = await createBucket(s3, 'empty');
    await putObjects(s3, bucket, ['e/1']);
    await kubectl(['create', 'secret', 'generic', 'empty-creds', '-n', namespace, '--from-literal=placeholder=1']);
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name: 'empty',
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        s3: info,
        secretName: 'empty-creds',
      }),
    });
    const waiting = await waitUntil(
      'the waiting condition',
      async () => {
        const j = await getJob(namespace, 'empty');
        return j.status?.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'SecretIncomplete')
          ? j
          : undefined;
      },
      30_000,
      () => operator.logTail(20),
    );
    expect(waiting.status?.phase).toBe('Pending');
    await kubectl(['delete', 'secret', 'empty-creds', '-n', namespace]);
    await createCredentialsSecret(namespace, info, 'empty-creds');
    await kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/empty']);
  });
});
