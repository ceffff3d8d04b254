// The real Job controller (kube-controller-manager) drives a real batch/v1
// Indexed Job to Complete on the pod-runner stand-in: every index runs with its
// JOB_COMPLETION_INDEX and env from a Secret, and a failing index is retried
// under backoffLimitPerIndex.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl, uniqueName, waitUntil } from './context.js';
import { startControllerManager } from './controller-manager.js';
import { toolPath, type ManagedProcess } from './process.js';
import { startPodRunner, type PodRunner } from './pod-runner.js';

interface JobStatus {
  succeeded?: number;
  failed?: number;
  completedIndexes?: string;
  conditions?: { type: string; status: string; reason?: string }[];
}

describe('pod runner + kube-controller-manager', () => {
  const ns = uniqueName('podrunner');
  const out = mkdtempSync(join(tmpdir(), 's3eo-podrunner-'));
  let kcm: ManagedProcess;
  let runner: PodRunner;

  beforeAll(async () => {
    const { adminKubeconfig } = inject('kube');
    const work = join(inject('workDir'), ns);
    await kubectl(['create', 'namespace', ns]);
    await kubectl(['-n', ns, 'create', 'secret', 'generic', 'worker-secret', '--from-literal=token=from-the-secret']);
    kcm = await startControllerManager({ workDir: join(work, 'kcm'), kubeconfig: adminKubeconfig });
    runner = await startPodRunner({ kubeconfig: adminKubeconfig, namespace: ns, logDir: join(work, 'pods') });
  });

  afterAll(async () => {
    await runner?.stop();
    await kcm?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
  });

  it('runs an Indexed Job to Complete: every index once, a failing index retried per index', async () => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'indexed', namespace: ns },
      spec: {
        completions: 3,
        parallelism: 2,
        completionMode: 'Indexed',
        backoffLimitPerIndex: 1,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'work',
                image: 'stand-in',
                command: ['sh', '-c'],
                // Index 1 fails its first attempt (exit 3), then succeeds.
                args: [
                  'if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ ! -e "$OUT/failed-once" ]; then touch "$OUT/failed-once"; exit 3; fi; ' +
                    'echo "$TOKEN" >> "$OUT/$JOB_COMPLETION_INDEX"',
                ],
                env: [
                  { name: 'OUT', value: out },
                  { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'worker-secret', key: 'token' } } },
                ],
              },
            ],
          },
        },
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(job) });

    const status = await waitUntil(
      'the Job to complete',
      async () => {
        const res = await kubectl(['-n', ns, 'get', 'job', 'indexed', '-o', 'json']);
        const s = (JSON.parse(res.stdout) as { status?: JobStatus }).status ?? {};
        const done = s.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
        return done ? s : undefined;
      },
      // The Job controller waits 10 s (its default pod-failure backoff) before it replaces the failed pod.
      90_000,
      () => kcm.logTail(30),
    );

    expect(
      status.conditions?.find((c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'))?.type,
    ).toBe('Complete');
    expect(status.completedIndexes).toBe('0-2');
    expect(status.succeeded).toBe(3);
    expect(status.failed).toBe(1);
    // Each index ran to success exactly once, with the value from the Secret.
    for (const i of [0, 1, 2]) expect(readFileSync(join(out, String(i)), 'utf8')).toBe('from-the-secret\n');
    expect(existsSync(join(out, 'failed-once'))).toBe(true);
    expect(runner.started).toHaveLength(4);

    // The failed attempt is recorded as the kubelet would: phase Failed, the container's exit code.
    const pods = JSON.parse((await kubectl(['-n', ns, 'get', 'pods', '-o', 'json'])).stdout) as {
      items: {
        status?: { phase?: string; containerStatuses?: { state?: { terminated?: { exitCode?: number } } }[] };
      }[];
    };
    const failed = pods.items.filter((p) => p.status?.phase === 'Failed');
    expect(failed.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode)).toEqual([3]);
  });

  it('a deleted Job takes its pods with it: the garbage collector deletes them, the runner kills their processes', async () => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'long', namespace: ns },
      spec: {
        completions: 2,
        parallelism: 2,
        completionMode: 'Indexed',
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'work',
                image: 'stand-in',
                command: ['sh', '-c', 'echo $$ > "$OUT/long-$JOB_COMPLETION_INDEX.pid"; exec sleep 300'],
                env: [{ name: 'OUT', value: out }],
              },
            ],
          },
        },
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(job) });
    const pids = await waitUntil(
      'both pods to run',
      () => {
        try {
          return Promise.resolve([0, 1].map((i) => Number(readFileSync(join(out, `long-${i}.pid`), 'utf8'))));
        } catch {
          return Promise.resolve(undefined);
        }
      },
      60_000,
      () => kcm.logTail(30),
    );
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pids.every(alive)).toBe(true);

    await kubectl(['-n', ns, 'delete', 'job', 'long', '--cascade=background', '--wait=true']);
    await waitUntil(
      "the Job's pods to be gone",
      async () => {
        const res = await kubectl(['-n', ns, 'get', 'pods', '-l', 'job-name=long', '-o', 'name']);
        return res.stdout.trim() === '' ? true : undefined;
      },
      60_000,
      () => kcm.logTail(30),
    );
    await waitUntil('the processes to end', () => Promise.resolve(pids.some(alive) ? undefined : true), 10_000);
  });

  it("gives a pod its ServiceAccount's identity (a token for KUBECONFIG, where the kubelet mounts one)", async () => {
    await kubectl(['-n', ns, 'create', 'serviceaccount', 'worker']);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'whoami', namespace: ns },
      spec: {
        serviceAccountName: 'worker',
        restartPolicy: 'Never',
        containers: [
          {
            name: 'whoami',
            image: 'stand-in',
            command: [toolPath('kubectl'), 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
          },
        ],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    const phase = await waitUntil('the pod to finish', async () => {
      const res = await kubectl(['-n', ns, 'get', 'pod', 'whoami', '-o', 'jsonpath={.status.phase}']);
      return res.stdout === 'Succeeded' || res.stdout === 'Failed' ? res.stdout : undefined;
    });
    expect(phase).toBe('Succeeded');
    const log = readFileSync(join(inject('workDir'), ns, 'pods', 'whoami_whoami.log'), 'utf8');
    expect(log).toBe(`system:serviceaccount:${ns}:worker`);
  });
});
