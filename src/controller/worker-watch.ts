// Looks at the pods of a run's current worker Job (worker-health.ts judges them)
// and remembers what it said, so the run turns Progressing False and back once
// per change and warns once per distinct cause, not at every poll. It reads the
// pods (one label-selected list) only while no pod of the Job is ready and the
// Job is older than the grace period, and the Job's FailedCreate events only
// when the Job has no live pod: a run whose workers run costs no extra call.
import type { V1Job } from '@kubernetes/client-node';
import { apiStatus, type KubeClient } from './kubeclient.js';
import { workerHealth, worthLooking, type Stuck } from './worker-health.js';

export type HealthChange =
  { kind: 'stuck'; stuck: Stuck; firstOfCause: boolean } | { kind: 'recovered' } | { kind: 'same' };

interface Log {
  warn(obj: object, msg: string): void;
}

export class WorkerWatch {
  private current: Stuck | undefined;
  private readonly warned = new Set<string>();
  private refused: Stuck | undefined;
  private blind = false;

  constructor(
    private readonly client: KubeClient,
    private readonly graceMs: number,
    private readonly log: Log,
  ) {}

  /** The API server refused to create the worker Job (e.g. a count/jobs.batch quota): stuck until a create works. */
  createRefused(stuck: Stuck | undefined): void {
    this.refused = stuck;
  }

  /** Looks at the current worker Job (undefined: none yet) and says what changed since the last look. */
  async look(job: V1Job | undefined, now = new Date()): Promise<HealthChange> {
    const stuck = job ? await this.judge(job, now) : this.refused;
    const was = this.current;
    this.current = stuck;
    if (!stuck) return was ? { kind: 'recovered' } : { kind: 'same' };
    if (was?.cause === stuck.cause) return { kind: 'same' };
    const firstOfCause = !this.warned.has(stuck.cause);
    this.warned.add(stuck.cause);
    return { kind: 'stuck', stuck, firstOfCause };
  }

  private async judge(job: V1Job, now: Date): Promise<Stuck | undefined> {
    if (this.blind || !worthLooking(job, now, this.graceMs)) return undefined;
    const ns = job.metadata?.namespace ?? '';
    try {
      const uid = job.metadata?.uid ?? '';
      // Selected by the Job's uid (the label the Job controller sets), not by name: exactly this Job's pods.
      const pods = await this.client.listJobPods(ns, uid);
      const live = pods.some((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
      const failedCreates = live ? [] : await this.client.listEventsAbout(ns, uid, 'FailedCreate');
      return workerHealth({ job, pods, failedCreates, now, graceMs: this.graceMs });
    } catch (err) {
      if (apiStatus(err) !== 403) {
        // A transient error is no verdict: what was said last stands until a look succeeds.
        this.log.warn({ namespace: ns, err: String(err) }, 'could not look at the worker pods; will look again');
        return this.current;
      }
      // A namespace bound to an older workers ClusterRole (without list pods/events): run without this view.
      this.blind = true;
      this.log.warn(
        { namespace: ns, err: String(err) },
        'the operator may not list pods or events here: worker pods that cannot start are not reported',
      );
      return undefined;
    }
  }
}
