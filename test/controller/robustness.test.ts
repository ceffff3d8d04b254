// Controller paths where a job got stuck, ran twice or left noise: retries per
// generation, a retry that waited for the 10-minute resync, a stale cache that
// re-ran a finished job, a 409 on deleting a running job, report temp files.
// Each operator runs under the least-privilege identity; where the race needs
// it, behind a kube proxy that delays exactly the calls involved.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from 'vitest';
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
/** An "S3 endpoint" that answers 400 to everything: a run fails at once on a transient (retryable) error. */
let broken: Server;
let brokenUrl: string;
const cleanup: (() => Promise<void>)[] = [];
const keys = (n: number, p = 'r/'): string[] =>
  Array.from({ length: n }, (_, i) => `${p}${String(i).padStart(5, '0')}`);

async function operatorWith(
  opts: { args?: string[]; proxy?: (p: KubeProxy) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<{ op: OperatorProcess; proxy: KubeProxy }> {
  const proxy = await startKubeProxy({
    kubeconfig: inject('kube').operatorKubeconfig,
    dir: mkdtempSync(join(inject('workDir'), 'robust-')),
  });
  opts.proxy?.(proxy);
  const op = await startOperator({
    watchNamespace: namespace,
    kubeconfig: proxy.kubeconfig,
    ...(opts.args ? { args: opts.args } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  cleanup.push(async () => {
    await op.stop();
    await proxy.close();
  });
  return { op, proxy };
}

function brokenJob(name: string): string {
  const j = JSON.parse(
    jobYaml({ name, namespace, bucket: 'any-bucket', encryption: { type: 'AES256' }, s3: info }),
  ) as { spec: { connection: object } };
  j.spec.connection = { ...j.spec.connection, endpoint: brokenUrl };
  return JSON.stringify(j);
}

type Status = {
  observedGeneration?: number;
  retries?: number;
  phase?: string;
  conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[];
};
const statusOf = async (name: string): Promise<Status> => (await getJob(namespace, name)).status as Status;

beforeAll(async () => {
  s3 = s3Client(info);
  namespace = await createNamespace('robust');
  await createCredentialsSecret(namespace, info);
  broken = createServer((req, res) => {
    req.resume();
    res.writeHead(400);
    res.end();
  });
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
  const addr = broken.address();
  brokenUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

// One operator per test: operators of earlier tests must not act on later tests' jobs.
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

afterAll(() => {
  broken?.close();
  s3?.destroy();
});

describe('controller robustness', () => {
  it('status.retries belongs to a generation: after Failed, a spec edit gets its own retries', async () => {
    const { op } = await operatorWith({ args: ['--run-retry-delay=100'] });
    await kubectl(['apply', '-f', '-'], { input: brokenJob('regen') });
    const failed = await waitUntil(
      'Failed after the retries',
      async () => {
        const s = await statusOf('regen');
        return s.phase === 'Failed' ? s : undefined;
      },
      90_000,
      () => op.logTail(20),
    );
    expect(failed.retries).toBe(6);
    expect(failed.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('S3Unreachable');

    await kubectl(['patch', 'ej', 'regen', '-n', namespace, '--type=merge', '-p', '{"spec":{"concurrency":3}}']);
    // The new generation is retried again from one, not failed at once on the old count.
    const retrying = await waitUntil(
      'a retry of generation 2',
      async () => {
        const s = await statusOf('regen');
        const p = s.conditions?.find((c) => c.type === 'Progressing');
        return s.observedGeneration === 2 && p?.reason === 'Retrying' ? s : undefined;
      },
      30_000,
      () => op.logTail(20),
    );
    expect(retrying.conditions?.find((c) => c.type === 'Progressing')?.message).toMatch(/^attempt [1-3] of 6/);
    const again = await waitUntil(
      'Failed again',
      async () => {
        const s = await statusOf('regen');
        return s.phase === 'Failed' && s.observedGeneration === 2 ? s : undefined;
      },
      90_000,
      () => op.logTail(20),
    );
    expect(again.retries).toBe(6);
  }, 200_000);

  it('a retry is started after its backoff even when the last status event came while the run was ending', async () => {
    // The apiserver's answer to each status write of this job is held 1.5 s, so the
    // watch event of the run's last write is handled while the run is still ending.
    const { op } = await operatorWith({
      args: ['--run-retry-delay=500'],
      proxy: (p) => p.delayResponses(calls.statusWrite('requeue'), 1500),
    });
    await kubectl(['apply', '-f', '-'], { input: brokenJob('requeue') });
    const s = await waitUntil(
      'three attempts',
      async () => {
        const st = await statusOf('requeue');
        return (st.retries ?? 0) >= 3 ? st : undefined;
      },
      60_000,
      () => op.logTail(30),
    );
    expect(s.retries).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it('a finished job is not run again from a lagging cache', async () => {
    // Watch events reach the operator 3 s late: events of the run's progress
    // writes arrive after it finished, with the job still Running in them.
    const { op } = await operatorWith({ proxy: (p) => p.delayWatch(3000) });
    const bucket = await createBucket(s3, 'stale');
    await putObjects(s3, bucket, keys(300));
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'stale', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
    });
    await kubectl(['wait', '--for=condition=Complete', '--timeout=90s', '-n', namespace, 'ej/stale']);
    await sleep(8000); // every delayed event has arrived and been reconciled
    const starts = op
      .logTail(5000)
      .split('\n')
      .filter((l) => l.includes('"name":"stale"') && l.includes('"starting run"'));
    expect(starts).toHaveLength(1);
    const events = await kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      'involvedObject.name=stale',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.stdout.split(/\s+/).filter((r) => r === 'Started' || r === 'Resumed')).toHaveLength(1);
    const done = await getJob(namespace, 'stale');
    expect(done.status?.phase).toBe('Complete');
    expect(done.status?.progress?.scanned).toBe(300);
  }, 150_000);

  it('deleting a running job: no 409, no reconcile error in the log', async () => {
    const { op } = await operatorWith();
    const bucket = await createBucket(s3, 'del409');
    await putObjects(s3, bucket, keys(600));
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'del409', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
    });
    await waitUntil(
      'progress',
      async () => (((await getJob(namespace, 'del409')).status?.progress?.scanned ?? 0) > 20 ? true : undefined),
      60_000,
      () => op.logTail(20),
    );
    await kubectl(['delete', 'ej', 'del409', '-n', namespace, '--timeout=30s']);
    await sleep(1000);
    const lines = op
      .logTail(5000)
      .split('\n')
      .filter((l) => l.includes('del409'));
    expect(lines.filter((l) => /reconcile failed|HTTP-Code: 409|Conflict/.test(l))).toEqual([]);
    expect(lines.some((l) => l.includes('finalizer removed'))).toBe(true);
  }, 120_000);

  it('the report temp file is deleted once uploaded', async () => {
    const tmp = mkdtempSync(join(inject('workDir'), 'optmp-'));
    const { op } = await operatorWith({ env: { TMPDIR: tmp } });
    const bucket = await createBucket(s3, 'rtmp');
    await putObjects(s3, bucket, keys(20));
    const j = JSON.parse(jobYaml({ name: 'rtmp', namespace, bucket, encryption: { type: 'AES256' }, s3: info })) as {
      spec: object;
    };
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        ...j,
        spec: { ...j.spec, report: { destination: `s3://${bucket}/reports/r.csv`, all: true } },
      }),
    });
    await kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/rtmp']);
    const job = await getJob(namespace, 'rtmp');
    expect((job.status as { report?: string }).report).toMatch(/^s3:\/\//);
    expect(readdirSync(tmp).filter((f) => f.startsWith('s3eo-report-'))).toEqual([]);
    expect(op.logTail(500)).not.toMatch(/unhandled|uncaught/i);
  }, 90_000);
});
