// Leader election by client-go's rules, proved on a real kube-apiserver: two
// operators (least-privilege identity) each behind its own kube proxy. The
// leader's Lease calls are frozen (held, never answered, no RST: a partition),
// while its other API calls still go through. The leader must give up before
// its lease can be taken, so at no moment do both write the job's status.
import type { S3Client } from '@aws-sdk/client-s3';
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
  startOperator,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { calls, startKubeProxy, type KubeProxy } from '../harness/kube-proxy.js';

const info = inject('seaweed');
let s3: S3Client;
const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `l/${String(i).padStart(5, '0')}`);
const isLeader = async (op: OperatorProcess): Promise<boolean> =>
  /leader_election_master_status\{name="s3-encryption-operator"\} 1/.test(await (await fetch(op.metricsUrl)).text());

beforeAll(() => {
  s3 = s3Client(info);
});
afterAll(() => s3.destroy());

describe('leader election', () => {
  it('a leader whose renew calls hang stops before its lease can be taken: never two writers of one job', async () => {
    const namespace = await createNamespace('lead');
    await createCredentialsSecret(namespace, info);
    const bucket = await createBucket(s3, 'lead');
    await putObjects(s3, bucket, keys(600));
    const dir = mkdtempSync(join(inject('workDir'), 'leader-'));
    const proxies: KubeProxy[] = [];
    const ops: OperatorProcess[] = [];
    try {
      const pa = await startKubeProxy({ kubeconfig: inject('kube').operatorKubeconfig, dir });
      const pb = await startKubeProxy({ kubeconfig: inject('kube').operatorKubeconfig, dir });
      proxies.push(pa, pb);
      const args = ['--leader-elect', `--leader-election-namespace=${namespace}`];
      const a = await startOperator({ name: 'leader-a', watchNamespace: namespace, args, kubeconfig: pa.kubeconfig });
      ops.push(a);
      await waitUntil(
        'a to lead',
        async () => ((await isLeader(a)) ? true : undefined),
        30_000,
        () => a.logTail(20),
      );
      const b = await startOperator({ name: 'leader-b', watchNamespace: namespace, args, kubeconfig: pb.kubeconfig });
      ops.push(b);
      let aExitedAt: number | undefined;
      void a.exited.then(() => (aExitedAt = Date.now()));

      // Slow enough (request ceiling) to still be running when leadership moves.
      const job = JSON.parse(
        jobYaml({ name: 'lead', namespace, bucket, encryption: { type: 'AES256' }, s3: info, concurrency: 2 }),
      ) as { spec: object };
      await kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({ ...job, spec: { ...job.spec, maxRequestsPerSecond: 10 } }),
      });
      const writes = (p: KubeProxy): number[] =>
        p.requests.filter((r) => calls.statusWrite('lead')(r.method, r.path)).map((r) => r.at);
      await waitUntil(
        'a to write progress',
        () => (writes(pa).length >= 3 ? true : undefined),
        60_000,
        () => a.logTail(20),
      );

      const frozenAt = Date.now();
      pa.freeze(calls.lease);
      await waitUntil(
        'b to lead',
        async () => ((await isLeader(b)) ? true : undefined),
        60_000,
        () => b.logTail(20),
      );
      await waitUntil(
        'b to write the job',
        () => (writes(pb).length >= 3 ? true : undefined),
        60_000,
        () => b.logTail(20),
      );

      const lease = JSON.parse(
        (await kubectl(['get', 'lease', 's3-encryption-operator', '-n', namespace, '-o', 'json'])).stdout,
      ) as {
        spec: { holderIdentity: string; acquireTime: string };
      };
      const bAcquiredAt = Date.parse(lease.spec.acquireTime);
      const lastA = Math.max(...writes(pa));
      const firstB = Math.min(...writes(pb));
      console.log(
        `lease frozen at +0 s; a exited at +${aExitedAt ? ((aExitedAt - frozenAt) / 1000).toFixed(1) : 'never'} s; ` +
          `b acquired at +${((bAcquiredAt - frozenAt) / 1000).toFixed(1)} s; a's last write +${((lastA - frozenAt) / 1000).toFixed(1)} s, b's first +${((firstB - frozenAt) / 1000).toFixed(1)} s`,
      );
      // The frozen renewals were abandoned by their deadline, not left hanging.
      expect(pa.requests.filter((r) => r.frozen).length).toBeGreaterThan(0);
      // a stopped (exited) before b took the lease, and wrote nothing after b's first write.
      expect(aExitedAt).toBeDefined();
      expect(aExitedAt!).toBeLessThan(bAcquiredAt);
      expect(lastA).toBeLessThan(firstB);
      expect(a.logTail(200)).toMatch(/lost the leader lease/);
      expect(lease.spec.holderIdentity).not.toBe('');

      // And the job finishes on b, every object exactly at the target.
      await kubectl([
        'patch',
        'ej',
        'lead',
        '-n',
        namespace,
        '--type=merge',
        '-p',
        '{"spec":{"maxRequestsPerSecond":1000}}',
      ]);
      const done = await waitUntil(
        'Complete on b',
        async () => {
          const j = await getJob(namespace, 'lead');
          return j.status?.phase === 'Complete' ? j : undefined;
        },
        120_000,
        () => b.logTail(30),
      );
      expect(done.status?.progress?.scanned).toBe(600);
      expect((done.status?.progress?.encrypted ?? 0) + (done.status?.progress?.alreadyEncrypted ?? 0)).toBe(600);
    } finally {
      for (const op of ops) await op.stop();
      for (const p of proxies) await p.close();
    }
  }, 240_000);
});
