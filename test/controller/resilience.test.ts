// The operator under the failures a production cluster has: kill -9 mid-run,
// two replicas with the leader killed, the API server restarted, and a watch
// that lives longer than client-node's 30 s request timeout.
import {
  GetBucketVersioningCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
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
  waitUntil,
  startOperator,
  type OperatorProcess,
} from '../harness/context.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { installOperatorApi } from '../harness/global-setup.js';
import { startKube, type KubeEnv } from '../harness/kube.js';

const info = inject('seaweed');
let s3: S3Client;
const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000, log?: () => string): Promise<T> =>
  waitUntil(what, fn, timeoutMs, log);
const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `c/${String(i).padStart(5, '0')}`);

async function progressed(namespace: string, name: string, min: number): Promise<number> {
  return until(`${name} to pass ${min} objects`, async () => {
    const n = (await getJob(namespace, name)).status?.progress?.scanned ?? 0;
    return n > min ? n : undefined;
  });
}

/** Every key must have exactly two versions: the original and one re-encrypted copy. */
async function versionsPerKey(bucket: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
    );
    for (const v of page.Versions ?? []) counts.set(v.Key ?? '', (counts.get(v.Key ?? '') ?? 0) + 1);
    if (!page.IsTruncated) return counts;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}

beforeAll(() => {
  s3 = s3Client(info);
});
afterAll(() => s3.destroy());

describe('operator resilience', () => {
  it('kill -9 mid-run, restart: every object encrypted exactly once, counters add up', async () => {
    const namespace = await createNamespace('crash');
    await createCredentialsSecret(namespace, info);
    const bucket = await createBucket(s3, 'crash');
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
    const all = keys(600);
    await putObjects(s3, bucket, all);

    const first = await startOperator({ watchNamespace: namespace });
    await kubectl(['apply', '-f', '-'], {
      input: jobYaml({ name: 'crash', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
    });
    await progressed(namespace, 'crash', 100);
    await first.kill();

    const second = await startOperator({ watchNamespace: namespace });
    try {
      const done = await until(
        'Complete after restart',
        async () => {
          const j = await getJob(namespace, 'crash');
          return j.status?.phase === 'Complete' ? j : undefined;
        },
        90_000,
        () => second.logTail(30),
      );
      const p = done.status?.progress ?? {};
      expect(p.scanned).toBe(all.length);
      expect((p.encrypted ?? 0) + (p.alreadyEncrypted ?? 0)).toBe(all.length);
      expect(p.failed).toBe(0);
      const versions = await versionsPerKey(bucket);
      const notOnce = [...versions.entries()].filter(([, n]) => n !== 2);
      expect(notOnce).toEqual([]);
      expect(versions.size).toBe(all.length);
    } finally {
      await second.stop();
    }
  });

  it('two replicas: killing the leader mid-run hands over well under 30 s and the new leader resumes', async () => {
    const namespace = await createNamespace('ha');
    await createCredentialsSecret(namespace, info);
    const bucket = await createBucket(s3, 'ha');
    const all = keys(700);
    await putObjects(s3, bucket, all);
    const args = ['--leader-elect', `--leader-election-namespace=${namespace}`];
    const a = await startOperator({ watchNamespace: namespace, args });
    const b = await startOperator({ watchNamespace: namespace, args });
    const leaderOf = async (op: OperatorProcess): Promise<boolean> =>
      /leader_election_master_status\{name="s3-encryption-operator"\} 1/.test(
        await (await fetch(op.metricsUrl)).text(),
      );
    try {
      const leader = await until('a leader', async () =>
        (await leaderOf(a)) ? a : (await leaderOf(b)) ? b : undefined,
      );
      const standby = leader === a ? b : a;
      expect(await leaderOf(standby)).toBe(false);
      await kubectl(['apply', '-f', '-'], {
        input: jobYaml({ name: 'ha', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
      });
      await progressed(namespace, 'ha', 100);
      await leader.kill();
      const killedAt = Date.now();
      await until(
        'the standby to lead',
        async () => ((await leaderOf(standby)) ? true : undefined),
        60_000,
        () => standby.logTail(20),
      );
      const handover = (Date.now() - killedAt) / 1000;
      console.log(`leader failover took ${handover.toFixed(1)} s`);
      expect(handover).toBeLessThan(25);
      const done = await until(
        'Complete on the new leader',
        async () => {
          const j = await getJob(namespace, 'ha');
          return j.status?.phase === 'Complete' ? j : undefined;
        },
        90_000,
        () => standby.logTail(30),
      );
      const p = done.status?.progress ?? {};
      expect(p.scanned).toBe(all.length);
      expect((p.encrypted ?? 0) + (p.alreadyEncrypted ?? 0)).toBe(all.length);
      const lease = JSON.parse(
        (await kubectl(['get', 'lease', 's3-encryption-operator', '-n', namespace, '-o', 'json'])).stdout,
      ) as { spec: { renewTime: string; leaseTransitions: number } };
      // The API requires microsecond precision on Lease times.
      expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
      expect(lease.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('SIGTERM: stops taking objects, saves the checkpoint, releases the lease and exits 0; the standby resumes at once', async () => {
    const namespace = await createNamespace('term');
    await createCredentialsSecret(namespace, info);
    const bucket = await createBucket(s3, 'term');
    const all = keys(600);
    await putObjects(s3, bucket, all);
    const args = ['--leader-elect', `--leader-election-namespace=${namespace}`];
    const a = await startOperator({ watchNamespace: namespace, args });
    await until('a to lead', async () =>
      /leader_election_master_status\{name="s3-encryption-operator"\} 1/.test(await (await fetch(a.metricsUrl)).text())
        ? true
        : undefined,
    );
    const b = await startOperator({ watchNamespace: namespace, args });
    try {
      await kubectl(['apply', '-f', '-'], {
        input: jobYaml({ name: 'term', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
      });
      await progressed(namespace, 'term', 100);
      const termAt = Date.now();
      process.kill(a.pid, 'SIGTERM');
      expect(await a.exited).toBe(0);
      expect(Date.now() - termAt).toBeLessThan(10_000);
      const saved = await getJob(namespace, 'term');
      expect(saved.status?.checkpoint?.startAfter).toBe(all[(saved.status?.progress?.scanned ?? 0) - 1]);
      const lease = JSON.parse(
        (await kubectl(['get', 'lease', 's3-encryption-operator', '-n', namespace, '-o', 'json'])).stdout,
      ) as { spec: { holderIdentity?: string } };
      expect(lease.spec.holderIdentity ?? '').not.toMatch(/./);
      // Released, not expired: the standby takes over within a couple of retry periods.
      await until(
        'b to lead',
        async () =>
          /leader_election_master_status\{name="s3-encryption-operator"\} 1/.test(
            await (await fetch(b.metricsUrl)).text(),
          )
            ? true
            : undefined,
        8_000,
      );
      const done = await until('Complete on b', async () => {
        const j = await getJob(namespace, 'term');
        return j.status?.phase === 'Complete' ? j : undefined;
      });
      expect(done.status?.progress?.scanned).toBe(all.length);
      expect((done.status?.progress?.encrypted ?? 0) + (done.status?.progress?.alreadyEncrypted ?? 0)).toBe(all.length);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('several jobs at once share the operator’s in-flight budget and all complete', async () => {
    const namespace = await createNamespace('many');
    await createCredentialsSecret(namespace, info);
    const op = await startOperator({ watchNamespace: namespace, args: ['--max-inflight-objects=3'] });
    // Each request takes 40-80 ms, so the runs last long enough (several seconds) for the
    // once-a-second in-flight gauge to be sampled while objects are in flight.
    const proxy = await startFaultProxy({
      target: info.s3Endpoint,
      protocol: 's3',
      seed: 17,
      rates: { latency: 1, latencyMs: [40, 80] },
    });
    try {
      const buckets = await Promise.all([0, 1, 2, 3].map(() => createBucket(s3, 'many')));
      await Promise.all(buckets.map((b) => putObjects(s3, b, keys(60))));
      for (const [i, bucket] of buckets.entries()) {
        await kubectl(['apply', '-f', '-'], {
          input: jobYaml({
            name: `job-${i}`,
            namespace,
            bucket,
            encryption: { type: 'AES256' },
            s3: { ...info, s3Endpoint: proxy.url },
            concurrency: 16,
          }),
        });
      }
      // Each job reports its own in-flight objects once a second, so the series are sampled
      // at different moments: no single job can exceed the shared budget. (The exact bound
      // across jobs is proved at the engine level in test/engine/budget.test.ts.)
      let maxInflight = 0;
      await until(
        'all four Complete',
        async () => {
          const body = await (await fetch(op.metricsUrl)).text();
          for (const m of body.matchAll(/^s3encryption_inflight_objects\{[^}]*\} (\d+)/gm))
            maxInflight = Math.max(maxInflight, Number(m[1]));
          const jobs = await Promise.all(buckets.map((_, i) => getJob(namespace, `job-${i}`)));
          return jobs.every((j) => j.status?.phase === 'Complete') ? jobs : undefined;
        },
        90_000,
        () => op.logTail(20),
      );
      expect(maxInflight).toBeGreaterThan(0);
      expect(maxInflight).toBeLessThanOrEqual(3);
    } finally {
      await proxy.stop();
      await op.stop();
    }
  });

  it('the API server restarted mid-run: the operator reconnects and the job completes', async () => {
    const workDir = mkdtempSync(join(inject('workDir'), 'own-kube-'));
    let kube: KubeEnv | undefined;
    let op: OperatorProcess | undefined;
    try {
      kube = await startKube({ workDir });
      await installOperatorApi(kube);
      const namespace = 'restart';
      await kube.kubectl(['create', 'namespace', namespace]);
      await kube.kubectl([
        'create',
        'secret',
        'generic',
        's3-credentials',
        '-n',
        namespace,
        `--from-literal=AWS_ACCESS_KEY_ID=${info.accessKeyId}`,
        `--from-literal=AWS_SECRET_ACCESS_KEY=${info.secretAccessKey}`,
      ]);
      const bucket = await createBucket(s3, 'restart');
      const all = keys(600);
      await putObjects(s3, bucket, all);
      op = await startOperator({ watchNamespace: namespace, kubeconfig: kube.operatorKubeconfig });
      await kube.kubectl(['apply', '-f', '-'], {
        input: jobYaml({
          name: 'restart',
          namespace,
          bucket,
          encryption: { type: 'AES256' },
          s3: info,
          concurrency: 2,
        }),
      });
      const get = async (): Promise<{ status?: { phase?: string; progress?: Record<string, number> } }> =>
        JSON.parse((await kube!.kubectl(['get', 'ej', 'restart', '-n', namespace, '-o', 'json'])).stdout) as {
          status?: { phase?: string; progress?: Record<string, number> };
        };
      await until('progress', async () => (((await get()).status?.progress?.scanned ?? 0) > 100 ? true : undefined));
      await kube.restartApiserver();
      const done = await until(
        'Complete after the API server restart',
        async () => ((await get()).status?.phase === 'Complete' ? await get() : undefined),
        120_000,
        () => op!.logTail(30),
      );
      expect(done.status?.progress?.scanned).toBe(all.length);
      expect(done.status?.progress?.failed).toBe(0);
      // The watch came back: a job created after the restart is picked up too.
      await kube.kubectl(['apply', '-f', '-'], {
        input: jobYaml({ name: 'after', namespace, bucket, prefix: 'none/', encryption: { type: 'AES256' }, s3: info }),
      });
      await kube.kubectl(['wait', '--for=condition=Complete', '--timeout=60s', '-n', namespace, 'ej/after']);
    } finally {
      await op?.stop();
      await kube?.stop();
    }
  });

  it('the watch outlives client-node 2.0.0’s 30 s abort: a job applied after 35 s idle starts at once', async () => {
    const namespace = await createNamespace('idle');
    await createCredentialsSecret(namespace, info);
    const bucket = await createBucket(s3, 'idle');
    await putObjects(s3, bucket, keys(5));
    const op = await startOperator({ watchNamespace: namespace });
    try {
      await sleep(35_000);
      const applied = Date.now();
      await kubectl(['apply', '-f', '-'], {
        input: jobYaml({ name: 'idle', namespace, bucket, encryption: { type: 'AES256' }, s3: info }),
      });
      await kubectl(['wait', '--for=condition=Complete', '--timeout=30s', '-n', namespace, 'ej/idle']);
      // A dead watch would leave the job unseen until a relist (30 s and more); 15 s leaves room for a
      // machine loaded by another test file (64 worker processes) and still tells the two apart.
      expect(Date.now() - applied).toBeLessThan(15_000);
      expect(op.logTail(500)).not.toMatch(/watch failed/);
    } finally {
      await op.stop();
    }
  }, 90_000);
});
