// The batch/v1 Job that runs a job's shards as worker pods (spec.workers): one
// index per shard, retried per index by the Job controller, under the
// ServiceAccount the namespace's admins marked for it. Pure: no I/O, so the
// manifest is unit-tested field by field (test/unit/workerjob.test.ts).
import { createHash } from 'node:crypto';
import type { V1EnvVar, V1Job } from '@kubernetes/client-node';
import { GROUP, KIND, VERSION, type EncryptionJob } from './api.js';

/** The label a namespace's admins put on a ServiceAccount that EncryptionJobs may run workers as. */
export const WORKER_SA_LABEL = 's3encryption.dev/worker';
/** Labels of the worker Jobs and their pods. */
export const JOB_NAME_LABEL = 's3encryption.dev/job';
export const GENERATION_LABEL = 's3encryption.dev/generation';
export const STEP_LABEL = 's3encryption.dev/step';

/**
 * Worker exit codes the pod failure policy acts on. Any other non-zero exit
 * (a transient error, SIGTERM) is retried for that index under backoffLimitPerIndex.
 */
export const EXIT_SHARD_FAILED = 42; // the shard failed for good: its phase says why; FailIndex
export const EXIT_STALE = 43; // the EncryptionJob moved on (another generation or plan): FailJob, the operator makes a new one

/** Attempts per index beyond the first, like the in-process run's retries of a transient failure. */
export const BACKOFF_LIMIT_PER_INDEX = 6;

/** How the operator starts a worker: the operator's own image, and the command of the worker entry point in it. */
export interface WorkerTemplate {
  image: string;
  /** e.g. ["node", "dist/worker.js"]; the worker's flags are appended. */
  command: string[];
  imagePullPolicy?: string;
  /**
   * Seconds a finished worker Job (and its pods, with their logs) stays before the Job
   * controller deletes it; undefined keeps it until the EncryptionJob is deleted.
   */
  ttlSecondsAfterFinished?: number;
  /** MiB of the pod's spill volume for inventory sorts (default DEFAULT_WORKER_SPILL_MIB). */
  spillMiB?: number;
  /** The ClusterRole a namespace binds to the operator to allow worker pods (named when a namespace has not). */
  clusterRole?: string;
  /** How long worker pods may take to start before the job says they do not (worker-health.ts); default 120 s. */
  startGraceSeconds?: number;
}

/** The ClusterRole the chart and deploy/rbac ship for a namespace to bind to the operator (RBAC as consent). */
export const WORKERS_CLUSTER_ROLE = 's3-encryption-operator-workers';

/** Is `job` (a batch Job) controlled by this EncryptionJob, by uid? A Job of the same name is not enough. */
export function ownedBy(job: V1Job, owner: EncryptionJob): boolean {
  const uid = owner.metadata?.uid;
  return uid !== undefined && (job.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

/** Room for a worker pod's inventory sort: about 85 bytes a row, so a shard of 20 million rows. */
export const DEFAULT_WORKER_SPILL_MIB = 2048;

/** plan: one pod samples the key space and writes status.shards; shards: one pod per shard. */
export type WorkerStep = 'plan' | 'shards';

/** A Job name (at most 63 characters, a label value) that is stable for one EncryptionJob and step. */
export function workerJobName(jobName: string, step: WorkerStep): string {
  const suffix = step === 'plan' ? 'plan' : 'workers';
  const plain = `${jobName}-${suffix}`;
  if (plain.length <= 63) return plain;
  const hash = createHash('sha256').update(jobName).digest('hex').slice(0, 6);
  return `${jobName.slice(0, 63 - suffix.length - hash.length - 2).replace(/[-.]+$/, '')}-${hash}-${suffix}`;
}

export function workerLabels(job: EncryptionJob, step: WorkerStep): Record<string, string> {
  const name = job.metadata?.name ?? '';
  return {
    'app.kubernetes.io/name': 's3-encryption-operator',
    'app.kubernetes.io/component': 'worker',
    // A label value is at most 63 characters; the full name is in the command line and the owner reference.
    [JOB_NAME_LABEL]: name.length <= 63 ? name : workerJobName(name, step).slice(0, 63),
    [GENERATION_LABEL]: String(job.metadata?.generation ?? 0),
    [STEP_LABEL]: step,
  };
}

/** A shard that failed for good fails its index, a stale pod the Job; a disruption costs no retry. */
const POD_FAILURE_POLICY = {
  rules: [
    { action: 'FailIndex', onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT_SHARD_FAILED] } },
    { action: 'FailJob', onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT_STALE] } },
    // An eviction, a preemption or a node drain is not the shard's fault: it does not use up a retry.
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
  ],
};

/**
 * The worker Job of `step` for the job's current generation. `shards` is the
 * number of indexes (1 for the planning step). The job's Secret reaches the pod
 * as secretKeyRef env: the operator never reads or copies its value here.
 */
export function workerJob(job: EncryptionJob, step: WorkerStep, shards: number, template: WorkerTemplate): V1Job {
  const ns = job.metadata?.namespace ?? '';
  const name = job.metadata?.name ?? '';
  const gen = job.metadata?.generation ?? 0;
  const workers = job.spec.workers;
  if (!workers) throw new Error(`EncryptionJob ${ns}/${name} has no spec.workers`);
  const labels = workerLabels(job, step);
  const completions = step === 'plan' ? 1 : Math.max(1, shards);
  const spillMiB = template.spillMiB ?? DEFAULT_WORKER_SPILL_MIB;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: workerJobName(name, step),
      namespace: ns,
      labels,
      ownerReferences: [
        { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name, uid: job.metadata?.uid ?? '', controller: true },
      ],
    },
    spec: {
      completionMode: 'Indexed',
      completions,
      parallelism: step === 'plan' ? 1 : Math.min(completions, Math.max(1, job.spec.parallelism ?? 1)),
      backoffLimitPerIndex: BACKOFF_LIMIT_PER_INDEX,
      ...ttl(template),
      // Only a terminal pod is replaced: two pods never work on one shard at once.
      podReplacementPolicy: 'Failed',
      podFailurePolicy: POD_FAILURE_POLICY,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: workers.serviceAccountName,
          // A stop finishes the objects in flight and writes the shard's checkpoint.
          terminationGracePeriodSeconds: 60,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          // The root filesystem is read-only; HOME is /tmp in the image (the SDK may look for ~/.aws there).
          // Inventory sorts spill to their own volume; S3EO_SPILL_LIMIT_MIB tells the sort its size, which
          // statfs cannot see (the kubelet evicts a pod past it): a report that does not fit fails its shard.
          volumes: [
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
            { name: 'spill', emptyDir: { sizeLimit: `${spillMiB}Mi` } },
          ],
          containers: [
            {
              name: 'worker',
              image: template.image,
              ...(template.imagePullPolicy ? { imagePullPolicy: template.imagePullPolicy } : {}),
              command: [
                ...template.command,
                `--namespace=${ns}`,
                `--job=${name}`,
                `--generation=${gen}`,
                ...(step === 'plan' ? ['--plan'] : []),
              ],
              env: workerEnv(job, spillMiB),
              ...(workers.resources ? { resources: quantities(workers.resources) } : {}),
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'spill', mountPath: '/var/spill' },
              ],
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

/**
 * The Job and its pods go some time after they finish (the operator reads the shards' status, not the
 * pods); the pods' logs, with each object's failure, stay that long.
 */
function ttl(template: WorkerTemplate): { ttlSecondsAfterFinished?: number } {
  const seconds = template.ttlSecondsAfterFinished;
  return seconds === undefined ? {} : { ttlSecondsAfterFinished: seconds };
}

/**
 * The worker's environment: where inventory sorts spill and how much room they have there,
 * and the job's Secret as secretKeyRef (never its value); without a Secret the pod's own identity.
 */
function workerEnv(job: EncryptionJob, spillMiB: number): V1EnvVar[] {
  const secret = job.spec.connection?.credentialsSecretRef?.name;
  const fromSecret = (key: string, optional: boolean): V1EnvVar => ({
    name: key,
    valueFrom: { secretKeyRef: { name: secret ?? '', key, ...(optional ? { optional: true } : {}) } },
  });
  return [
    { name: 'TMPDIR', value: '/var/spill' },
    { name: 'S3EO_SPILL_LIMIT_MIB', value: String(spillMiB) },
    ...(secret
      ? [
          fromSecret('AWS_ACCESS_KEY_ID', false),
          fromSecret('AWS_SECRET_ACCESS_KEY', false),
          fromSecret('AWS_SESSION_TOKEN', true),
        ]
      : []),
  ];
}

/** The CRD allows integer quantities (cpu: 1); the Job API takes strings. */
function quantities(r: NonNullable<NonNullable<EncryptionJob['spec']['workers']>['resources']>): {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
} {
  const strings = (m: Record<string, string | number>): Record<string, string> =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  return {
    ...(r.requests ? { requests: strings(r.requests) } : {}),
    ...(r.limits ? { limits: strings(r.limits) } : {}),
  };
}
