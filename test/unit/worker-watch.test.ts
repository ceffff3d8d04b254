// WorkerWatch (worker-watch.ts): one Warning per distinct cause, no call while
// the workers run, and a transient error or a missing permission is never a
// verdict. The KubeClient is a stub here; the quota case runs on the real
// servers in test/controller/worker-health.test.ts.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../../src/controller/kubeclient.js';
import { WorkerWatch } from '../../src/controller/worker-watch.js';

const T0 = new Date('2026-12-08T00:00:00Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const job = (ready = 0): V1Job => ({
  metadata: { name: 'enc-plan', namespace: 'data', uid: 'j1', creationTimestamp: T0 },
  status: { ready },
});
const quota: CoreV1Event = {
  metadata: {},
  involvedObject: {},
  reason: 'FailedCreate',
  message: 'exceeded quota: q',
  lastTimestamp: at(1),
};

function stub(state: { pods: V1Pod[]; events: CoreV1Event[]; fail?: Error; calls: number }): KubeClient {
  return {
    listJobPods: () => {
      state.calls++;
      return state.fail ? Promise.reject(state.fail) : Promise.resolve(state.pods);
    },
    listEventsAbout: () => {
      state.calls++;
      return Promise.resolve(state.events);
    },
  } as unknown as KubeClient;
}

const log = { warn: () => undefined };

describe('WorkerWatch', () => {
  it('says stuck once per cause, recovered when a pod is ready, and stuck again without a second first', async () => {
    const state = { pods: [] as V1Pod[], events: [quota], calls: 0 };
    const watch = new WorkerWatch(stub(state), 3000, log);
    expect(await watch.look(job(), at(1))).toEqual({ kind: 'same' }); // within the grace period: no call
    expect(state.calls).toBe(0);
    const first = await watch.look(job(), at(5));
    expect(first).toMatchObject({ kind: 'stuck', firstOfCause: true, stuck: { cause: 'FailedCreate' } });
    expect(await watch.look(job(), at(7))).toEqual({ kind: 'same' });
    const calls = state.calls;
    expect(await watch.look(job(1), at(9))).toEqual({ kind: 'recovered' });
    expect(state.calls).toBe(calls); // a ready pod: no list
    expect(await watch.look(job(), at(11))).toMatchObject({ kind: 'stuck', firstOfCause: false });
  });

  it('a refused Job create is stuck until a create works', async () => {
    const watch = new WorkerWatch(stub({ pods: [], events: [], calls: 0 }), 3000, log);
    watch.createRefused({ cause: 'JobCreateForbidden', message: 'exceeded quota: jobs' });
    expect(await watch.look(undefined)).toMatchObject({ kind: 'stuck', stuck: { cause: 'JobCreateForbidden' } });
    watch.createRefused(undefined);
    expect(await watch.look(undefined)).toEqual({ kind: 'recovered' });
  });

  it('a transient error keeps the last verdict; a 403 turns the view off for good', async () => {
    const state = { pods: [] as V1Pod[], events: [quota], calls: 0, fail: undefined as Error | undefined };
    const watch = new WorkerWatch(stub(state), 3000, log);
    expect((await watch.look(job(), at(5))).kind).toBe('stuck');
    state.fail = Object.assign(new Error('timeout'), { code: 503 });
    expect(await watch.look(job(), at(7))).toEqual({ kind: 'same' });
    state.fail = Object.assign(new Error('forbidden'), { code: 403 });
    expect(await watch.look(job(), at(9))).toEqual({ kind: 'recovered' });
    const calls = state.calls;
    state.fail = undefined;
    expect(await watch.look(job(), at(11))).toEqual({ kind: 'same' });
    expect(state.calls).toBe(calls);
  });
});
