// The worker Job manifest (workerjob.ts) field by field, without a server: what
// the Job controller acts on (Indexed, per-index retries, the failure policy
// that maps the worker's exit codes), who the pods run as, and that the job's
// Secret reaches them only as a reference, never as a value.
import { describe, expect, it } from 'vitest';
import type { EncryptionJob } from '../../src/controller/api.js';
import {
  BACKOFF_LIMIT_PER_INDEX,
  EXIT_SHARD_FAILED,
  EXIT_STALE,
  ownedBy,
  workerJob,
  workerJobName,
} from '../../src/controller/workerjob.js';

const template = { image: 'ghcr.io/example/s3-encryption-operator:1.2.3', command: ['node', 'dist/worker.js'] };

function job(extra: Partial<EncryptionJob['spec']> = {}, name = 'encrypt-logs'): EncryptionJob {
  return {
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { name, namespace: 'data', uid: 'uid-1', generation: 3 },
    spec: {
      bucket: 'b',
      encryption: { type: 'AES256' },
      parallelism: 4,
      connection: { credentialsSecretRef: { name: 's3-credentials' } },
      workers: { serviceAccountName: 's3-encryption-worker', resources: { requests: { cpu: '500m', memory: 256 } } },
      ...extra,
    },
  };
}

describe('workerJob', () => {
  it('one index per shard, parallelism at a time, retried per index', () => {
    const j = workerJob(job(), 'shards', 8, template);
    expect(j.metadata?.name).toBe('encrypt-logs-workers');
    expect(j.metadata?.namespace).toBe('data');
    expect(j.spec).toMatchObject({
      completionMode: 'Indexed',
      completions: 8,
      parallelism: 4,
      backoffLimitPerIndex: BACKOFF_LIMIT_PER_INDEX,
      podReplacementPolicy: 'Failed',
    });
    // Never more pods than shards.
    expect(workerJob(job({ parallelism: 16 }), 'shards', 3, template).spec?.parallelism).toBe(3);
  });

  it('the pod failure policy maps the exit codes: shard failed -> FailIndex, stale -> FailJob, disruption ignored', () => {
    const rules = workerJob(job(), 'shards', 4, template).spec?.podFailurePolicy?.rules ?? [];
    expect(rules).toContainEqual({
      action: 'FailIndex',
      onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT_SHARD_FAILED] },
    });
    expect(rules).toContainEqual({
      action: 'FailJob',
      onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT_STALE] },
    });
    expect(rules).toContainEqual({ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] });
    expect(workerJob(job(), 'shards', 4, template).spec?.template.spec?.restartPolicy).toBe('Never');
  });

  it('runs the marked ServiceAccount, the operator image and the worker command for this generation', () => {
    const pod = workerJob(job(), 'shards', 4, template).spec?.template.spec;
    expect(pod?.serviceAccountName).toBe('s3-encryption-worker');
    const c = pod?.containers[0];
    expect(c?.image).toBe(template.image);
    expect(c?.command).toEqual(['node', 'dist/worker.js', '--namespace=data', '--job=encrypt-logs', '--generation=3']);
    expect(workerJob(job(), 'plan', 1, template).spec?.template.spec?.containers[0]?.command).toContain('--plan');
    expect(c?.resources).toEqual({ requests: { cpu: '500m', memory: '256' } });
    expect(c?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  });

  it('the planning step is one pod', () => {
    const j = workerJob(job(), 'plan', 1, template);
    expect(j.metadata?.name).toBe('encrypt-logs-plan');
    expect(j.spec).toMatchObject({ completions: 1, parallelism: 1 });
  });

  it('the Secret is referenced, never copied; without one the pod uses its own identity', () => {
    const all = workerJob(job(), 'shards', 4, template).spec?.template.spec?.containers[0]?.env ?? [];
    const env = all.filter((e) => e.name.startsWith('AWS_'));
    expect(env.map((e) => e.name)).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);
    for (const e of env) {
      expect(e.value).toBeUndefined();
      expect(e.valueFrom?.secretKeyRef).toMatchObject({ name: 's3-credentials', key: e.name });
    }
    expect(env.find((e) => e.name === 'AWS_SESSION_TOKEN')?.valueFrom?.secretKeyRef?.optional).toBe(true);
    const ambient = workerJob(job({ connection: {} }), 'shards', 4, template);
    expect(ambient.spec?.template.spec?.containers[0]?.env?.filter((e) => e.name.startsWith('AWS_'))).toEqual([]);
  });

  it('scenario 7: inventory sorts spill to a sized volume the pod knows the size of (TMPDIR, S3EO_SPILL_LIMIT_MIB)', () => {
    for (const [t, mib] of [
      [template, 2048],
      [{ ...template, spillMiB: 8192 }, 8192],
    ] as const) {
      const pod = workerJob(job(), 'shards', 4, t).spec?.template.spec;
      const c = pod?.containers[0];
      expect(pod?.volumes).toContainEqual({ name: 'spill', emptyDir: { sizeLimit: `${mib}Mi` } });
      expect(c?.volumeMounts).toContainEqual({ name: 'spill', mountPath: '/var/spill' });
      expect(c?.env).toContainEqual({ name: 'TMPDIR', value: '/var/spill' });
      expect(c?.env).toContainEqual({ name: 'S3EO_SPILL_LIMIT_MIB', value: String(mib) });
    }
  });

  it('is owned by the EncryptionJob and labelled with its name and generation', () => {
    const j = workerJob(job(), 'shards', 4, template);
    expect(j.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 's3encryption.dev/v1alpha1',
        kind: 'EncryptionJob',
        name: 'encrypt-logs',
        uid: 'uid-1',
        controller: true,
      },
    ]);
    expect(j.metadata?.labels).toMatchObject({
      's3encryption.dev/job': 'encrypt-logs',
      's3encryption.dev/generation': '3',
      's3encryption.dev/step': 'shards',
    });
    expect(j.spec?.template.metadata?.labels).toEqual(j.metadata?.labels);
  });

  it('names stay valid label values (63 characters) for long job names, and distinct per job', () => {
    const long = 'a'.repeat(120);
    const a = workerJobName(long, 'shards');
    const b = workerJobName(`${'a'.repeat(119)}b`, 'shards');
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/-workers$/);
    expect(a).not.toBe(b);
    const j = workerJob(job({}, long), 'shards', 2, template);
    expect(j.metadata?.labels?.['s3encryption.dev/job']?.length).toBeLessThanOrEqual(63);
  });

  it('refuses a job without spec.workers', () => {
    const { workers: _, ...spec } = job().spec;
    expect(() => workerJob({ ...job(), spec }, 'shards', 2, template)).toThrow(/spec.workers/);
  });

  it('a finished Job goes after the TTL the operator was given (--worker-job-ttl); none without one', () => {
    expect(
      workerJob(job(), 'shards', 4, { ...template, ttlSecondsAfterFinished: 86400 }).spec?.ttlSecondsAfterFinished,
    ).toBe(86400);
    expect(workerJob(job(), 'plan', 1, { ...template, ttlSecondsAfterFinished: 0 }).spec?.ttlSecondsAfterFinished).toBe(
      0,
    );
    expect(workerJob(job(), 'shards', 4, template).spec).not.toHaveProperty('ttlSecondsAfterFinished');
  });

  it('ownedBy: only a Job whose controller owner reference names this EncryptionJob by uid', () => {
    const ej = job();
    expect(ownedBy(workerJob(ej, 'shards', 4, template), ej)).toBe(true);
    // Same name, another EncryptionJob of that name (deleted and made again): another uid.
    expect(ownedBy(workerJob(ej, 'shards', 4, template), { ...ej, metadata: { ...ej.metadata, uid: 'uid-2' } })).toBe(
      false,
    );
    // A Job someone made by hand with the worker Job's name.
    expect(ownedBy({ metadata: { name: 'encrypt-logs-workers', namespace: 'data' } }, ej)).toBe(false);
    // An owner reference that is not the controller.
    const ref = { apiVersion: 's3encryption.dev/v1alpha1', kind: 'EncryptionJob', name: 'encrypt-logs', uid: 'uid-1' };
    expect(ownedBy({ metadata: { ownerReferences: [ref] } }, ej)).toBe(false);
  });
});
