// Are a worker Job's pods starting? Pure: from the Job's status, its pods'
// statuses and the Job controller's FailedCreate events to "stuck, and why" or
// not, so the operator can say so on the EncryptionJob (Progressing=False, like
// a Deployment past its progress deadline) instead of "planning" for ever.
// What is looked at is what the real kube-controller-manager and kubelet write:
// a pod the Job controller may not create (quota, admission) leaves no pod, only a
// Warning event FailedCreate on the Job (the Job gets no condition for it); a pod
// that cannot start is Pending with a container waiting reason, or with
// PodScheduled=False reason Unschedulable.
import type { CoreV1Event, V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';

/** The reason of Progressing=False while no worker pod starts. */
export const WORKERS_NOT_STARTING = 'WorkerPodsNotStarting';

/** How long a worker pod (or a Job without pods) may take to start before the job says it is stuck. */
export const DEFAULT_START_GRACE_MS = 120_000;

/** Container waiting reasons that do not go away by waiting: someone must change something. */
const STUCK_WAITING = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export interface Stuck {
  /** One word per kind of cause (FailedCreate, ImagePullBackOff, Unschedulable, ...): one Warning event per cause. */
  cause: string;
  /** For the condition and the event: names the Job or pod and carries Kubernetes' own message. */
  message: string;
}

export interface WorkerHealthInput {
  job: V1Job;
  /** The Job's pods (any phase). */
  pods: V1Pod[];
  /** Events on the Job with reason FailedCreate. */
  failedCreates: CoreV1Event[];
  now: Date;
  graceMs: number;
}

const time = (t: Date | string | undefined | null): number => (t ? new Date(t).getTime() : 0);

function finished(job: V1Job): boolean {
  return (job.status?.conditions ?? []).some(
    (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
  );
}

const active = (p: V1Pod): boolean =>
  !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

/** The first container (init containers first) waiting for a reason that waiting does not cure. */
function stuckContainer(pod: V1Pod): V1ContainerStatus | undefined {
  const all = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return all.find((c) => STUCK_WAITING.has(c.state?.waiting?.reason ?? ''));
}

/** Why this pod, Pending for longer than the grace period, does not start; undefined if it may yet. */
function stuckPod(pod: V1Pod, now: number, graceMs: number): Stuck | undefined {
  if (pod.status?.phase !== 'Pending') return undefined;
  const name = pod.metadata?.name ?? '';
  const unscheduled = pod.status.conditions?.find(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
  if (unscheduled && now - time(unscheduled.lastTransitionTime ?? pod.metadata?.creationTimestamp) >= graceMs) {
    return { cause: 'Unschedulable', message: `worker pod ${name} cannot be scheduled: ${unscheduled.message ?? ''}` };
  }
  const container = stuckContainer(pod);
  if (container && now - time(pod.metadata?.creationTimestamp) >= graceMs) {
    const waiting = container.state?.waiting;
    return {
      cause: waiting?.reason ?? 'Waiting',
      message: `worker pod ${name} cannot start container ${container.name}: ${waiting?.reason ?? ''}: ${waiting?.message ?? ''}`,
    };
  }
  return undefined;
}

const eventTime = (e: CoreV1Event): number =>
  Math.max(time(e.lastTimestamp), time(e.eventTime), time(e.series?.lastObservedTime), time(e.firstTimestamp));

/**
 * Stuck (and why) when no pod of the Job runs and one of them cannot start, or the Job controller could not
 * create any for longer than the grace period; undefined while the workers may yet start, run, or are done.
 */
export function workerHealth(input: WorkerHealthInput): Stuck | undefined {
  const { job, pods, now, graceMs } = input;
  if (finished(job)) return undefined; // its end is the run's business, not a start problem
  const live = pods.filter(active);
  // One worker running is progress (the others may wait for a quota or a node that frees up).
  if (live.some((p) => p.status?.phase === 'Running')) return undefined;
  for (const pod of live) {
    const stuck = stuckPod(pod, now.getTime(), graceMs);
    if (stuck) return stuck;
  }
  if (live.length > 0 || now.getTime() - time(job.metadata?.creationTimestamp) < graceMs) return undefined;
  // No pod: did the Job controller fail to create them since the last pod it made?
  const lastPod = Math.max(0, ...pods.map((p) => time(p.metadata?.creationTimestamp)));
  const newest = input.failedCreates
    .filter((e) => eventTime(e) >= lastPod)
    .sort((a, b) => eventTime(b) - eventTime(a))[0];
  if (!newest) return undefined;
  return {
    cause: 'FailedCreate',
    message: `the Job controller cannot create the pods of worker Job ${job.metadata?.name ?? ''}: ${newest.message ?? ''}`,
  };
}

/** Should the operator look at the Job's pods at all? Not while one is ready, nor before the grace period is over. */
export function worthLooking(job: V1Job, now: Date, graceMs: number): boolean {
  if (finished(job) || (job.status?.ready ?? 0) > 0) return false;
  return now.getTime() - time(job.metadata?.creationTimestamp) >= graceMs;
}
