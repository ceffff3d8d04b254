// Are a worker Job's pods starting (worker-health.ts), and what the EncryptionJob
// says about it (worker-condition.ts), on the statuses the real Job controller and
// kubelet write. No server: the integration test (test/controller/worker-health.test.ts)
// proves the quota case on the real ones.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../src/controller/api.js';
import { setCondition } from '../../src/controller/conditions.js';
import { createForbidden, showWorkerHealth } from '../../src/controller/worker-condition.js';
import { WORKERS_NOT_STARTING, workerHealth, worthLooking } from '../../src/controller/worker-health.js';

const T0 = new Date('2026-12-08T00:00:00Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const GRACE = 60_000;

function job(status: V1Job['status'] = {}, created = T0): V1Job {
  return { metadata: { name: 'enc-workers', namespace: 'data', uid: 'j1', creationTimestamp: created }, status };
}

function pod(status: V1Pod['status'], created = T0, name = 'enc-workers-0-abcde'): V1Pod {
  return { metadata: { name, creationTimestamp: created }, status };
}

const waiting = (reason: string, message = ''): V1Pod['status'] => ({
  phase: 'Pending',
  containerStatuses: [
    { name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } },
  ],
});

function failedCreate(at: Date, message: string): CoreV1Event {
  return {
    metadata: {},
    involvedObject: { kind: 'Job', name: 'enc-workers', uid: 'j1' },
    reason: 'FailedCreate',
    type: 'Warning',
    message,
    lastTimestamp: at,
  };
}

const judge = (j: V1Job, pods: V1Pod[], events: CoreV1Event[], now: Date) =>
  workerHealth({ job: j, pods, failedCreates: events, now, graceMs: GRACE });

describe('workerHealth: stuck or not', () => {
  const quota =
    'Error creating: pods "enc-workers-0-x" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0';

  it('no pod and a FailedCreate from the Job controller (quota): stuck after the grace period, with its message', () => {
    const events = [failedCreate(at(5), quota)];
    expect(judge(job(), [], events, at(30))).toBeUndefined();
    expect(judge(job(), [], events, at(61))).toEqual({
      cause: 'FailedCreate',
      message: `the Job controller cannot create the pods of worker Job enc-workers: ${quota}`,
    });
  });

  it('the newest FailedCreate is the one said', () => {
    const events = [failedCreate(at(5), 'old'), failedCreate(at(50), 'new'), failedCreate(at(20), 'middle')];
    expect(judge(job(), [], events, at(61))?.message).toMatch(/: new$/);
  });

  it('no pod and no FailedCreate: not stuck (the Job controller has not got to it)', () => {
    expect(judge(job(), [], [], at(600))).toBeUndefined();
  });

  it('a FailedCreate older than the last pod made is history, not a cause', () => {
    const done = pod({ phase: 'Succeeded' }, at(40));
    expect(judge(job(), [done], [failedCreate(at(10), quota)], at(120))).toBeUndefined();
    expect(judge(job(), [done], [failedCreate(at(90), quota)], at(120))?.cause).toBe('FailedCreate');
  });

  it.each(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError'])(
    'a pod Pending with %s: stuck after the grace period, with the kubelet message',
    (reason) => {
      const p = pod(waiting(reason, 'Back-off pulling image "x"'));
      expect(judge(job(), [p], [], at(10))).toBeUndefined();
      expect(judge(job(), [p], [], at(61))).toEqual({
        cause: reason,
        message: `worker pod enc-workers-0-abcde cannot start container worker: ${reason}: Back-off pulling image "x"`,
      });
    },
  );

  it('a pod Pending in ContainerCreating (waiting that waiting cures) is not stuck', () => {
    expect(judge(job(), [pod(waiting('ContainerCreating'))], [], at(600))).toBeUndefined();
  });

  it('an init container that cannot pull is stuck too', () => {
    const p = pod({
      phase: 'Pending',
      initContainerStatuses: [
        {
          name: 'init',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ErrImagePull' } },
        },
      ],
    });
    expect(judge(job(), [p], [], at(61))?.cause).toBe('ErrImagePull');
  });

  it('an unschedulable pod: stuck once Unschedulable has lasted the grace period', () => {
    const msg = '0/3 nodes are available: 3 Insufficient cpu.';
    const p = pod({
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: msg, lastTransitionTime: at(30) },
      ],
    });
    expect(judge(job(), [p], [], at(80))).toBeUndefined();
    expect(judge(job(), [p], [], at(91))).toEqual({
      cause: 'Unschedulable',
      message: `worker pod enc-workers-0-abcde cannot be scheduled: ${msg}`,
    });
  });

  it('one pod running is progress, even with another that cannot pull', () => {
    const running = pod({ phase: 'Running' }, T0, 'enc-workers-1-x');
    expect(judge(job(), [pod(waiting('ImagePullBackOff')), running], [], at(600))).toBeUndefined();
  });

  it('a finished Job is the run’s business, not a start problem', () => {
    const failed = job({ conditions: [{ type: 'Failed', status: 'True' }] });
    expect(judge(failed, [pod(waiting('ImagePullBackOff'))], [], at(600))).toBeUndefined();
  });

  it('worthLooking: not before the grace period, not while a pod is ready, not once finished', () => {
    expect(worthLooking(job(), at(30), GRACE)).toBe(false);
    expect(worthLooking(job(), at(61), GRACE)).toBe(true);
    expect(worthLooking(job({ ready: 1 }), at(61), GRACE)).toBe(false);
    expect(worthLooking(job({ conditions: [{ type: 'Complete', status: 'True' }] }), at(61), GRACE)).toBe(false);
  });
});

describe('showWorkerHealth: what the EncryptionJob says', () => {
  const planning = setCondition(undefined, {
    type: 'Progressing',
    status: 'True',
    reason: 'Planning',
    message: 'a worker pod is planning the shards',
    observedGeneration: 1,
  });
  const progressing = (c: Condition[] | undefined): Condition | undefined => c?.find((x) => x.type === 'Progressing');
  const stuck = (cause: string, firstOfCause = true) =>
    ({ kind: 'stuck', stuck: { cause, message: `m-${cause}` }, firstOfCause }) as const;

  it('stuck: Progressing=False with the cause, one Warning; recovered: the condition it had before', () => {
    const shown = showWorkerHealth(planning, stuck('FailedCreate'), 1, undefined);
    expect(progressing(shown?.conditions)).toMatchObject({
      status: 'False',
      reason: WORKERS_NOT_STARTING,
      message: 'FailedCreate: m-FailedCreate',
    });
    expect(shown?.event).toEqual({ reason: WORKERS_NOT_STARTING, message: 'FailedCreate: m-FailedCreate' });
    // kstatus: Stalled (Failed, as a Deployment past its progress deadline) while still Reconciling.
    expect(shown?.conditions.find((c) => c.type === 'Reconciling')).toMatchObject({
      status: 'True',
      reason: WORKERS_NOT_STARTING,
    });
    expect(shown?.conditions.find((c) => c.type === 'Stalled')).toMatchObject({
      status: 'True',
      reason: WORKERS_NOT_STARTING,
      message: 'FailedCreate: m-FailedCreate',
    });
    // Another cause: the condition follows, the held one stays the one from before.
    const other = showWorkerHealth(shown?.conditions, stuck('ImagePullBackOff', false), 1, shown?.held);
    expect(other?.event).toBeUndefined();
    expect(other?.held?.reason).toBe('Planning');
    const back = showWorkerHealth(other?.conditions, { kind: 'recovered' }, 1, other?.held);
    expect(progressing(back?.conditions)).toMatchObject({
      status: 'True',
      reason: 'Planning',
      message: 'a worker pod is planning the shards',
    });
    expect(back?.event).toBeUndefined();
    expect(back?.conditions.find((c) => c.type === 'Stalled')?.status).toBe('False');
  });

  it('recovered after the run said something else meanwhile (the shards started): left as it is', () => {
    expect(showWorkerHealth(planning, { kind: 'recovered' }, 1, undefined)).toBeUndefined();
  });

  it('no change: nothing written', () => {
    expect(showWorkerHealth(planning, { kind: 'same' }, 1, undefined)).toBeUndefined();
  });

  it('createForbidden: the API server’s own message (e.g. a count/jobs.batch quota)', () => {
    const err = Object.assign(new Error('HTTP-Code: 403'), {
      code: 403,
      body: JSON.stringify({
        message: 'jobs.batch "enc-plan" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1',
      }),
    });
    expect(createForbidden({ metadata: { name: 'enc-plan' } }, err)).toEqual({
      cause: 'JobCreateForbidden',
      message:
        'the API server refused to create worker Job enc-plan: jobs.batch "enc-plan" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1',
    });
  });
});
