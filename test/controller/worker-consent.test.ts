// Worker pods where a namespace allowed them, and only Jobs the job owns (issue 19
// items 5 and 6): the operator runs with deploy/rbac, which grants batch Jobs in no
// namespace; a namespace allows worker pods with the RoleBinding of
// deploy/workers/operator-rbac.yaml, and the API server enforces it. Real
// kube-apiserver, the real Job, garbage-collector and TTL controllers of
// kube-controller-manager, pods run by the test's kubelet stand-in.
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
import { OPERATOR_USER } from '../harness/kube.js';
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

/** How long a finished worker Job stays in this test (the operator's default is a day). */
const TTL_SECONDS = 10;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Job {
  status?: { phase?: string; conditions?: Condition[] };
}
interface BatchJob {
  metadata: { name: string; uid: string; ownerReferences?: { uid: string }[] };
  spec: { ttlSecondsAfterFinished?: number };
}

const logs = (): string => `${operator.logTail(40)}\n--- kube-controller-manager\n${kcm.logTail(10)}`;
const cond = (j: Job, type: string): Condition | undefined => j.status?.conditions?.find((c) => c.type === type);

function apply(name: string, bucket: string, spec: Record<string, unknown> = {}): Promise<void> {
  return applyJob(
    { name, namespace, bucket, encryption: { type: 'AES256' }, s3: { ...info, s3Endpoint: proxy.url } },
    { prefix: 'logs/', parallelism: 2, workers: { serviceAccountName: 's3-encryption-worker' }, ...spec },
  );
}

/** Every batch Job in the namespace, as the admin sees them (not only the operator's). */
async function batchJobs(): Promise<BatchJob[]> {
  const out = await kubectl(['get', 'jobs', '-n', namespace, '-o', 'json']);
  return (JSON.parse(out.stdout) as { items: BatchJob[] }).items;
}

/** `kubectl auth can-i VERB RESOURCE -n NS --as=<the operator>`: "yes" or "no". */
async function operatorCanI(verb: string, resource: string, ns: string): Promise<string> {
  const res = await kubectl(['auth', 'can-i', verb, resource, '-n', ns, `--as=${OPERATOR_USER}`], {
    allowFailure: true,
  });
  return res.stdout.trim();
}

/** A Job someone made by hand, suspended (it runs no pod), with the name of a worker Job. */
async function foreignJob(name: string): Promise<BatchJob> {
  const manifest = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace },
    spec: {
      suspend: true,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
      },
    },
  };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
  return (await batchJobs()).find((j) => j.metadata.name === name) as BatchJob;
}

beforeAll(async () => {
  s3 = s3Client(info);
  proxy = await startFaultProxy({ target: info.s3Endpoint, protocol: 's3', seed: 19 });
  namespace = await createNamespace('consent');
  await createCredentialsSecret(namespace, info);
  // The marked ServiceAccount is there from the start: only the namespace's consent is missing.
  await applyWorkerServiceAccount(namespace);
  ({ kcm, runner, operator } = await startWorkerStack(namespace, { args: [`--worker-job-ttl=${TTL_SECONDS}`] }));
}, 180_000);
afterAll(async () => {
  await operator?.stop();
  await runner?.stop();
  await kcm?.stop();
  await proxy?.stop();
  s3?.destroy();
});

describe("worker pods need the namespace's consent, given through RBAC (deploy/rbac + deploy/workers)", () => {
  it('deploy/rbac: the operator may create Jobs nowhere: kubectl auth can-i create jobs -n kube-system says no', async () => {
    expect(await operatorCanI('create', 'jobs', 'kube-system')).toBe('no');
    expect(await operatorCanI('create', 'jobs', namespace)).toBe('no');
    expect(await operatorCanI('get', 'serviceaccounts', 'kube-system')).toBe('no');
  });

  it('scenario: a workers job in a namespace that did not opt in ends Failed WorkersNotAllowed (Stalled), before any Job exists', async () => {
    const bucket = await createBucket(s3, 'consentno');
    await putObjects(s3, bucket, ['logs/a', 'logs/b']);
    const before = proxy.requests.length;
    await apply('early', bucket);
    const j = await waitForCondition<Job>(namespace, 'early', 'Failed', { timeoutS: 120, logs });
    const failed = cond(j, 'Failed');
    expect(failed?.reason).toBe('WorkersNotAllowed');
    expect(failed?.message).toContain(`namespace "${namespace}" has not allowed worker pods`);
    expect(failed?.message).toContain('may not create jobs');
    expect(failed?.message).toContain(
      `kubectl create rolebinding s3-encryption-operator-workers -n ${namespace} --clusterrole=s3-encryption-operator-workers --serviceaccount=s3-encryption-operator:s3-encryption-operator`,
    );
    // What kstatus (Flux) reads: Stalled, not Reconciling; Complete says why it is False.
    expect(cond(j, 'Stalled')).toMatchObject({ status: 'True', reason: 'WorkersNotAllowed' });
    expect(cond(j, 'Reconciling')).toMatchObject({ status: 'False' });
    expect(cond(j, 'Complete')).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(await batchJobs()).toEqual([]);
    expect(proxy.requests.slice(before).filter((r) => r.bucket === bucket)).toEqual([]);
  }, 180_000);

  it('scenario: with the RoleBinding of deploy/workers it runs as before; the finished worker Job goes after its TTL', async () => {
    await allowWorkerPods(namespace);
    expect(await operatorCanI('create', 'jobs', namespace)).toBe('yes');
    expect(await operatorCanI('create', 'jobs', 'kube-system')).toBe('no');
    const bucket = await createBucket(s3, 'consentyes');
    const keys = Array.from({ length: 40 }, (_, i) => `logs/${String(i).padStart(3, '0')}.json`);
    await putObjects(s3, bucket, keys);
    await apply('late', bucket, { concurrency: 4 });
    // The shard Job is there from its start until TTL_SECONDS after it finished.
    const shards = await waitUntil(
      'the shard Job',
      async () => (await batchJobs()).find((b) => b.metadata.name === 'late-workers'),
      240_000,
      logs,
    );
    expect(shards.spec.ttlSecondsAfterFinished).toBe(TTL_SECONDS);
    const j = await waitForCondition<Job>(namespace, 'late', 'Complete', { timeoutS: 300, logs });
    expect(cond(j, 'Complete')?.reason).toBe('Completed');
    expect(cond(j, 'Failed')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(cond(j, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(cond(j, 'Stalled')).toMatchObject({ status: 'False' });
    expectEachKeyCopiedOnce(proxy, bucket, keys);
    // The Job controller's TTL removes the finished Job, and the garbage collector its pods.
    let left = '';
    await waitUntil(
      'the finished worker Jobs and their pods to be gone',
      async () => {
        const all = await kubectl([
          'get',
          'jobs,pods',
          '-n',
          namespace,
          '-l',
          's3encryption.dev/job=late',
          '-o',
          'wide',
        ]);
        left = all.stdout.trim() + all.stderr.trim();
        return /^No resources found/.test(left) ? true : undefined;
      },
      120_000,
      () => `left: ${left}\n${logs()}`,
    );
  }, 420_000);

  it('scenario: an unowned Job victim-workers is not deleted when EncryptionJob victim is refused', async () => {
    // Before, the operator deleted <name>-plan and <name>-workers by name on this refusal.
    await kubectl(['-n', namespace, 'create', 'serviceaccount', 'plain']);
    const victim = await foreignJob('victim-workers');
    const bucket = await createBucket(s3, 'consentvictim');
    await apply('victim', bucket, { workers: { serviceAccountName: 'plain' } });
    const j = await waitForCondition<Job>(namespace, 'victim', 'Failed', { timeoutS: 120, logs });
    expect(cond(j, 'Failed')?.reason).toBe('WorkerServiceAccountNotAllowed');
    const after = (await batchJobs()).find((b) => b.metadata.name === 'victim-workers');
    expect(after?.metadata.uid).toBe(victim.metadata.uid);
  }, 180_000);

  it('scenario: a foreign Job with the worker Job name: the job ends Failed WorkerJobNameTaken and the Job is left alone', async () => {
    const foreign = await foreignJob('taken-workers');
    const bucket = await createBucket(s3, 'consenttaken');
    await putObjects(s3, bucket, ['logs/a', 'logs/b']);
    await apply('taken', bucket);
    const j = await waitForCondition<Job>(namespace, 'taken', 'Failed', { timeoutS: 120, logs });
    const failed = cond(j, 'Failed');
    expect(failed?.reason).toBe('WorkerJobNameTaken');
    expect(failed?.message).toContain(`a Job named "taken-workers" already exists in namespace "${namespace}"`);
    const jobs = await batchJobs();
    expect(jobs.find((b) => b.metadata.name === 'taken-workers')?.metadata.uid).toBe(foreign.metadata.uid);
    // Nothing of its own was made either: the name was checked before the planning Job.
    expect(jobs.map((b) => b.metadata.name)).not.toContain('taken-plan');
    // Deleting the EncryptionJob leaves the foreign Job too.
    await kubectl(['-n', namespace, 'delete', 'ej', 'taken', '--wait=true', '--timeout=120s']);
    expect((await batchJobs()).find((b) => b.metadata.name === 'taken-workers')?.metadata.uid).toBe(
      foreign.metadata.uid,
    );
  }, 240_000);
});
