// Workers you can see (issue 19 item 5): worker pods that cannot start turn the
// EncryptionJob Progressing=False with Kubernetes' own reason, once, instead of
// "planning" for ever. Real kube-apiserver (its ResourceQuota admission), the
// real Job and ResourceQuota controllers of kube-controller-manager, pods run by
// the test's kubelet stand-in.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  kubectl,
  putObjects,
  s3Client,
  waitUntil,
  type OperatorProcess,
} from '../harness/context.js';
import { applyJob, expectEachKeyCopiedOnce, waitForCondition } from '../harness/jobs.js';
import type { PodRunner } from '../harness/pod-runner.js';
import { startWorkerStack } from '../harness/worker-stack.js';
import type { ManagedProcess } from '../harness/process.js';
import { allowWorkerPods, applyWorkerServiceAccount } from '../harness/worker-rbac.js';

const info = inject('seaweed');
let s3: S3Client;
let proxy: FaultProxy;
let namespace: string;
let operator: OperatorProcess;
let kcm: ManagedProcess;
let runner: PodRunner;

/** --worker-start-grace in this test (the default is 120 s). */
const GRACE_SECONDS = 3;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Job {
  status?: { phase?: string; conditions?: Condition[] };
}

const logs = (): string => `${operator.logTail(40)}\n--- kube-controller-manager\n${kcm.logTail(10)}`;
const cond = (j: Job, type: string): Condition | undefined => j.status?.conditions?.find((c) => c.type === type);

async function getJob(name: string): Promise<Job> {
  return JSON.parse((await kubectl(['get', 'ej', name, '-n', namespace, '-o', 'json'])).stdout) as Job;
}

/** The events recorded on EncryptionJob `name`, as `kubectl get events` shows them. */
async function eventsOn(name: string): Promise<{ type: string; reason: string; message: string; count?: number }[]> {
  const out = await kubectl([
    'get',
    'events',
    '-n',
    namespace,
    '--field-selector',
    `involvedObject.name=${name},involvedObject.kind=EncryptionJob`,
    '-o',
    'json',
  ]);
  return (JSON.parse(out.stdout) as { items: { type: string; reason: string; message: string; count?: number }[] })
    .items;
}

/** A ResourceQuota in the test's namespace, once its controller has counted it (as admission needs). */
async function applyQuota(name: string, hard: Record<string, string>): Promise<void> {
  const quota = { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name, namespace }, spec: { hard } };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(quota) });
  await waitUntil(
    `quota ${name} to be counted`,
    async () => {
      const q = JSON.parse((await kubectl(['get', 'resourcequota', name, '-n', namespace, '-o', 'json'])).stdout) as {
        status?: { hard?: Record<string, string> };
      };
      return Object.keys(hard).every((k) => q.status?.hard?.[k] === hard[k]) ? true : undefined;
    },
    60_000,
    logs,
  );
}

/** An EncryptionJob with workers over `count` new objects in a new bucket; its keys. */
async function workersJob(name: string, count: number): Promise<{ bucket: string; keys: string[] }> {
  const bucket = await createBucket(s3, name);
  const keys = Array.from({ length: count }, (_, i) => `logs/${String(i).padStart(3, '0')}.json`);
  await putObjects(s3, bucket, keys);
  await applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { prefix: 'logs/', parallelism: 2, workers: { serviceAccountName: 's3-encryption-worker' } },
  );
  return { bucket, keys };
}

/** Waits for Progressing=False on `name`; the condition and how long it took. */
async function waitNotProgressing(name: string): Promise<{ c: Condition; ms: number }> {
  const started = Date.now();
  const c = await waitUntil(
    `Progressing=False on ${name}`,
    async () => {
      const p = cond(await getJob(name), 'Progressing');
      return p?.status === 'False' ? p : undefined;
    },
    90_000,
    logs,
  );
  return { c, ms: Date.now() - started };
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 5 });
  namespace = await createNamespace('podhealth');
  await createCredentialsSecret(namespace, info);
  await applyWorkerServiceAccount(namespace);
  await allowWorkerPods(namespace);
  // The quota's usage is counted by its controller, as in a cluster (every test's manager runs it: JOB_CONTROLLERS).
  ({ kcm, runner, operator } = await startWorkerStack(namespace, { args: [`--worker-start-grace=${GRACE_SECONDS}`] }));
}, 180_000);
afterAll(async () => {
  await operator?.stop();
  await runner?.stop();
  await kcm?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe('worker pods that cannot start are said on the EncryptionJob', () => {
  it('issue 19 item 5: a ResourceQuota of 0 pods: Progressing=False naming the quota, one Warning; without it the job completes', async () => {
    await applyQuota('no-worker-pods', { pods: '0' });
    const { bucket, keys } = await workersJob('quota', 12);

    // Before: Progressing=True "a worker pod is planning the shards" for ever, and nothing said why.
    const stuck = await waitNotProgressing('quota');
    expect(stuck.c.reason).toBe('WorkerPodsNotStarting');
    expect(stuck.c.message).toContain('FailedCreate');
    expect(stuck.c.message).toContain('quota-plan');
    expect(stuck.c.message).toContain('exceeded quota: no-worker-pods');
    expect(stuck.ms).toBeLessThan(60_000);
    const during = await getJob('quota');
    expect(during.status?.phase).toBe('Running');
    // What Flux and Argo CD read (kstatus): Stalled, as a Deployment past its progress deadline.
    expect(cond(during, 'Stalled')).toMatchObject({ status: 'True', reason: 'WorkerPodsNotStarting' });

    // A while later (the Job controller keeps failing, the operator keeps looking): still one Warning for it.
    await new Promise((r) => setTimeout(r, 15_000));
    const warnings = (await eventsOn('quota')).filter((e) => e.type === 'Warning');
    expect(warnings.map((e) => e.reason)).toEqual(['WorkerPodsNotStarting']);
    expect(warnings[0]?.count ?? 1).toBe(1);
    expect(warnings[0]?.message).toContain('exceeded quota: no-worker-pods');

    // The admin lifts the quota: the pods start, the job completes.
    await kubectl(['delete', 'resourcequota', 'no-worker-pods', '-n', namespace]);
    const j = await waitForCondition<Job>(namespace, 'quota', 'Complete', { timeoutS: 300, logs });
    expect(cond(j, 'Complete')?.reason).toBe('Completed');
    expect(cond(j, 'Stalled')?.status).toBe('False');
    expectEachKeyCopiedOnce(proxy, bucket, keys);
    const after = (await eventsOn('quota')).filter((e) => e.type === 'Warning');
    expect(after.map((e) => e.reason)).toEqual(['WorkerPodsNotStarting']);
  }, 480_000);

  it('issue 19 item 5: a count/jobs.batch quota refuses the worker Job (403): Progressing=False with the reason, one Warning, no RunError loop', async () => {
    await applyQuota('no-jobs', { 'count/jobs.batch': '0' });
    const { bucket, keys } = await workersJob('jobquota', 6);

    // Before: create threw, the run ended in RunError and was retried every 5 s, a Warning each time.
    const stuck = await waitNotProgressing('jobquota');
    expect(stuck.c.reason).toBe('WorkerPodsNotStarting');
    expect(stuck.c.message).toContain('JobCreateForbidden');
    expect(stuck.c.message).toContain('jobquota-plan');
    expect(stuck.c.message).toContain('exceeded quota: no-jobs');
    expect(stuck.ms).toBeLessThan(30_000);
    await new Promise((r) => setTimeout(r, 15_000));
    const warnings = (await eventsOn('jobquota')).filter((e) => e.type === 'Warning');
    expect(warnings.map((e) => e.reason)).toEqual(['WorkerPodsNotStarting']);
    expect(warnings[0]?.count ?? 1).toBe(1);

    await kubectl(['delete', 'resourcequota', 'no-jobs', '-n', namespace]);
    const j = await waitForCondition<Job>(namespace, 'jobquota', 'Complete', { timeoutS: 300, logs });
    expect(cond(j, 'Complete')?.reason).toBe('Completed');
    expectEachKeyCopiedOnce(proxy, bucket, keys);
  }, 300_000);
});
