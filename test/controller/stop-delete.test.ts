// A stop never hangs, at the operator's level (issue 9, scenario 3; review #2): an
// EncryptionJob whose first key always answers 503 (fault proxy in front of SeaweedFS)
// fills its window with the 3,000 keys after it; deleting the job then stops the run
// within bounded time, the finalizer is removed and the job is gone.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
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
  type OperatorProcess,
} from '../harness/context.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;

const STUCK = 'a-stuck';
/** The engine's default window at concurrency 32: max(1000, 64 x 32). */
const WINDOW = 2048;

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 5 });
  namespace = await createNamespace('stopdel');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({ watchNamespace: namespace });
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('deleting a job whose window is full behind a key in 503 backoff (operator, SeaweedFS through the fault proxy)', () => {
  it('the delete returns in < 30 s: the run stopped, the finalizer was removed, the job is gone', async () => {
    const bucket = await createBucket(s3, 'stopdel');
    await putObjects(s3, bucket, [STUCK, ...Array.from({ length: 3000 }, (_, i) => `k/${String(i).padStart(5, '0')}`)]);
    proxy.setRule((r) =>
      r.bucket === bucket && r.key === STUCK && r.operation === 'HeadObject'
        ? { status: 503, code: 'ServiceUnavailable' }
        : undefined,
    );
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({
        name: 'stuck',
        namespace,
        bucket,
        encryption: { type: 'AES256' },
        concurrency: 32,
        s3: { ...info, s3Endpoint: proxy.url },
      }),
    });
    // The window is full: the keys it holds were looked at, and listing paused for a second.
    const headed = (): number =>
      new Set(proxy.requests.filter((r) => r.bucket === bucket && r.operation === 'HeadObject').map((r) => r.key)).size;
    const deadline = Date.now() + 240_000;
    let last = -1;
    let stableSince = Date.now();
    for (;;) {
      const n = headed();
      if (n !== last) [last, stableSince] = [n, Date.now()];
      if (n >= WINDOW && Date.now() - stableSince > 1000) break;
      if (Date.now() > deadline)
        throw new Error(`the window never filled (${n} keys looked at)\n${operator.logTail(30)}`);
      await sleep(200);
    }
    const started = Date.now();
    const deleted = await kubectl(['delete', 'ej', 'stuck', '-n', namespace, '--timeout=45s'], { allowFailure: true });
    const took = Date.now() - started;
    proxy.setRule(undefined);
    expect(deleted.code, `${deleted.stderr}\n${operator.logTail(30)}`).toBe(0);
    expect(took).toBeLessThan(30_000);
    const gone = await kubectl(['get', 'ej', 'stuck', '-n', namespace], { allowFailure: true });
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('NotFound');
  }, 600_000);
});
