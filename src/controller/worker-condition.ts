// What a change in the worker pods' health (worker-watch.ts) does to the
// EncryptionJob: Progressing=False with the pods' reason and message while they
// do not start, Progressing=True again (as it was) when they do, and one Warning
// event the first time a cause is seen. Pure, unit-tested.
import type { V1Job } from '@kubernetes/client-node';
import type { Condition } from './api.js';
import { setCondition } from './conditions.js';
import { clip } from './tenancy.js';
import { WORKERS_NOT_STARTING, type Stuck } from './worker-health.js';
import type { HealthChange } from './worker-watch.js';

export interface Shown {
  conditions: Condition[];
  event?: { reason: string; message: string };
  /** The Progressing condition from before the workers got stuck: given back (held) when they start. */
  held?: Condition;
}

/** The new conditions (and event) for a change; undefined when nothing is to be written. */
export function showWorkerHealth(
  conditions: Condition[] | undefined,
  change: HealthChange,
  generation: number,
  held: Condition | undefined,
): Shown | undefined {
  const progressing = conditions?.find((c) => c.type === 'Progressing');
  if (change.kind === 'stuck') {
    const message = clip(`${change.stuck.cause}: ${change.stuck.message}`);
    const next = setCondition(conditions, {
      type: 'Progressing',
      status: 'False',
      reason: WORKERS_NOT_STARTING,
      message,
      observedGeneration: generation,
    });
    return {
      conditions: next,
      held: progressing?.reason === WORKERS_NOT_STARTING ? held : progressing,
      ...(change.firstOfCause ? { event: { reason: WORKERS_NOT_STARTING, message } } : {}),
    };
  }
  // Back to what it said before, unless the run has said something else since (e.g. the shards started).
  if (change.kind === 'recovered' && progressing?.reason === WORKERS_NOT_STARTING) {
    const was = held;
    return {
      conditions: setCondition(conditions, {
        type: 'Progressing',
        status: 'True',
        reason: was?.status === 'True' ? was.reason : 'WorkerPodsStarted',
        message: was?.status === 'True' ? was.message : 'the worker pods started',
        observedGeneration: generation,
      }),
    };
  }
  return undefined;
}

/** The API server refused to create a worker Job (admission, e.g. a count/jobs.batch quota): its own words. */
export function createForbidden(job: V1Job, err: unknown): Stuck {
  const body = (err as { body?: unknown }).body;
  let text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
    if (typeof parsed?.message === 'string') text = parsed.message;
  } catch {
    // not JSON: the body as it came
  }
  return {
    cause: 'JobCreateForbidden',
    message: `the API server refused to create worker Job ${job.metadata?.name ?? ''}: ${text || String(err)}`,
  };
}
