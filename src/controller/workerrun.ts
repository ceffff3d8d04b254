// A sharded job run as worker pods (spec.workers): the operator checks the
// ServiceAccount the job names, has one planning pod cut the key space into
// status.shards, then runs a batch/v1 Indexed Job with one index per shard
// (workerjob.ts). The pods do all the S3 and KMS work with their own identity
// and each writes its own shard entry (workerpod.ts); the operator only reads:
// it sums the entries into status.progress, metrics and conditions, and ends
// the job when every shard is Complete or one failed for good. Stop (suspend,
// delete, a new generation) deletes the Job and waits its pods out; each pod
// saves its shard's checkpoint on SIGTERM. An operator restart leaves the Job
// running: the next operator adopts it. The operator may make Jobs only where a
// namespace allowed it through RBAC (a RoleBinding to the workers ClusterRole),
// and acts only on Jobs whose owner reference names this EncryptionJob's uid.
import type { V1Job } from '@kubernetes/client-node';
import type {
  Condition,
  EncryptionJob,
  EncryptionJobStatus,
  EncryptionShard,
  JobProgress,
  ShardStatus,
} from './api.js';
import { runFingerprint } from './checkpoint.js';
import { planFitsSelection, resumeShards } from './shardplan.js';
import { completedStatus, setCondition } from './conditions.js';
import { COMPONENT, replacing, type JobRunDeps } from './jobrun.js';
import { apiStatus, type KubeClient } from './kubeclient.js';
import { answeredByFreshRun } from './retryfailed.js';
import { countShards, describeShard, runningConditions, sumProgress } from './shardrun.js';
import { hydrate, ShardStore } from './shardstore.js';
import { StatusWriter } from './status.js';
import { clip } from './tenancy.js';
import { DEFAULT_START_GRACE_MS } from './worker-health.js';
import { WorkerWatch } from './worker-watch.js';
import { createForbidden, showWorkerHealth } from './worker-condition.js';
import {
  GENERATION_LABEL,
  ownedBy,
  WORKER_SA_LABEL,
  WORKERS_CLUSTER_ROLE,
  workerJob,
  workerJobName,
  type WorkerStep,
  type WorkerTemplate,
} from './workerjob.js';

/** How often the operator looks at the worker Job and the shards' entries. */
const POLL_MS = 2000;
/** With informers, a look happens when a shard or the worker Job changes (at most one a second), else this often. */
const INFORMED_POLL_MS = 10_000;
const MIN_LOOK_MS = 1000;
/** How long a stop waits for the worker pods to be gone (their grace period is 60 s). */
const STOP_WAIT_MS = 90_000;

export interface WorkerRunDeps extends JobRunDeps {
  template: WorkerTemplate;
  pollMs?: number;
  /** The shard informer's cache: the shards are read from it, not asked of the API server on every look. */
  shardCache?: ShardCache;
  /** The job informer's cache. */
  getJob?: (namespace: string, name: string) => EncryptionJob | undefined;
  /** The worker Job informers' caches (worker-informer.ts). */
  workerJobs?: WorkerJobCache;
}

/** What the operator's worker Job informers hold. */
export interface WorkerJobCache {
  watch(namespace: string): void;
  get(namespace: string, name: string): { known: boolean; job?: V1Job };
}

/** What the operator's shard informer holds (shard-informer.ts). */
export interface ShardCache {
  readonly ready: boolean;
  forJob(job: EncryptionJob): EncryptionShard[];
}

/** The reason a job ends with when its ServiceAccount may not run workers. */
export const SA_REFUSED = 'WorkerServiceAccountNotAllowed';
/** The reason a job ends with when its namespace has not allowed the operator to run worker pods there. */
export const WORKERS_NOT_ALLOWED = 'WorkersNotAllowed';
/** The reason a job ends with when a Job of its worker Job's name exists and is not its own. */
export const JOB_NAME_TAKEN = 'WorkerJobNameTaken';

/** What the operator does in a namespace for worker pods: a namespace that allowed them granted all of it. */
const WORKER_ACCESS = [
  { verb: 'create', group: 'batch', resource: 'jobs' },
  { verb: 'get', group: 'batch', resource: 'jobs' },
  { verb: 'list', group: 'batch', resource: 'jobs' },
  { verb: 'watch', group: 'batch', resource: 'jobs' },
  { verb: 'delete', group: 'batch', resource: 'jobs' },
  { verb: 'get', group: '', resource: 'serviceaccounts' },
] as const;

/** A Job has the name of a worker Job and another owner: the operator leaves it alone. */
class JobNameTaken extends Error {
  constructor(namespace: string, name: string) {
    super(
      `a Job named "${name}" already exists in namespace "${namespace}" and this EncryptionJob does not own it: the operator leaves it alone; delete or rename it, or rename the EncryptionJob`,
    );
  }
}

/** The worker Job of `step` if it is this EncryptionJob's (by owner uid); a foreign one of that name throws. */
async function readOwnJob(client: KubeClient, job: EncryptionJob, step: WorkerStep): Promise<V1Job | undefined> {
  const ns = job.metadata?.namespace ?? '';
  const name = workerJobName(job.metadata?.name ?? '', step);
  const found = await client.readBatchJob(ns, name);
  if (found && !ownedBy(found, job)) throw new JobNameTaken(ns, name);
  return found;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

function jobCondition(job: V1Job | undefined, type: 'Complete' | 'Failed'): { message?: string } | undefined {
  return job?.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/**
 * Deletes the job's worker Jobs (any generation) and waits until they and their
 * pods are gone: no worker writes to the job after this returns (within STOP_WAIT_MS).
 * Only Jobs this EncryptionJob owns (by uid): a Job of the same name is someone else's.
 */
export async function deleteWorkers(client: KubeClient, job: EncryptionJob, log: JobRunDeps['log']): Promise<void> {
  const ns = job.metadata?.namespace ?? '';
  const mine: { name: string; uid: string }[] = [];
  try {
    for (const step of ['plan', 'shards'] as WorkerStep[]) {
      const name = workerJobName(job.metadata?.name ?? '', step);
      const found = await client.readBatchJob(ns, name);
      if (!found || !ownedBy(found, job)) continue;
      const uid = found.metadata?.uid ?? '';
      await client.deleteBatchJob(ns, name, uid);
      mine.push({ name, uid });
    }
  } catch (err) {
    if (apiStatus(err) !== 403) throw err;
    // The namespace has not allowed (or no longer allows) worker pods: the operator may not touch Jobs
    // there, and the garbage collector removes any it made with the EncryptionJob (owner references).
    log.info({ namespace: ns }, 'the operator may not manage Jobs in this namespace: no worker Job to stop');
    return;
  }
  const deadline = Date.now() + STOP_WAIT_MS;
  for (const { name, uid } of mine) {
    while ((await client.readBatchJob(ns, name))?.metadata?.uid === uid) {
      if (Date.now() > deadline) {
        log.warn({ job: name }, 'worker Job still terminating; going on');
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export class WorkerRun {
  readonly generation: number;
  readonly done: Promise<void>;
  retryAfterMs: number | undefined;
  private readonly abort = new AbortController();
  /** Stop without deleting the worker Job: the operator shuts down, the pods go on. */
  private detached = false;
  private readonly writer: StatusWriter;
  private conditions;
  private readonly ns: string;
  private readonly name: string;
  private last: JobProgress | undefined;
  private lastWritten = '';
  /** Are the current worker Job's pods starting? Said on Progressing, once per change (worker-condition.ts). */
  private readonly workers: WorkerWatch;
  private heldProgressing: Condition | undefined;
  private planGone = false;
  /** An informer event came since the last look; `wake` ends the wait for the next one. */
  private poked = false;
  private wake: (() => void) | undefined;
  private readonly store: ShardStore;

  constructor(
    private readonly job: EncryptionJob,
    private readonly deps: WorkerRunDeps,
  ) {
    this.generation = job.metadata?.generation ?? 0;
    this.ns = job.metadata?.namespace ?? '';
    this.name = job.metadata?.name ?? '';
    this.conditions = job.status?.conditions;
    this.writer = new StatusWriter(deps.client, this.ns, this.name, deps.log);
    this.store = new ShardStore(deps.client, deps.log);
    const grace = deps.template.startGraceSeconds;
    this.workers = new WorkerWatch(deps.client, grace === undefined ? DEFAULT_START_GRACE_MS : grace * 1000, deps.log);
    this.done = this.run()
      .catch((err: unknown) => {
        deps.log.error(
          { err: String(err), stack: (err as Error).stack },
          'worker run failed unexpectedly; will try again',
        );
        this.retryAfterMs = deps.retryBaseMs ?? 5000;
        void this.event('Warning', 'RunError', `the run stopped on an unexpected error: ${String(err)}`);
      })
      .finally(() => this.writer.dispose());
  }

  /** A shard or the worker Job changed (an informer event): look again soon rather than at the next poll. */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /**
   * Waits for the next look: a poke (at most one look a second), or the poll interval (a safety net
   * when informers feed the run; the only clock without them).
   */
  private async nextLook(): Promise<void> {
    const informed = this.deps.shardCache !== undefined && this.deps.workerJobs !== undefined;
    const pollMs = this.deps.pollMs ?? (informed ? INFORMED_POLL_MS : POLL_MS);
    await sleep(Math.min(MIN_LOOK_MS, pollMs), this.abort.signal);
    if (this.poked || this.abort.signal.aborted) {
      this.poked = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, pollMs - Math.min(MIN_LOOK_MS, pollMs));
      const signal = this.abort.signal;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      this.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
    this.wake = undefined;
    this.poked = false;
  }

  /** Suspend, delete or a new generation: the worker pods stop (each saves its checkpoint) and are gone. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
    await deleteWorkers(this.deps.client, this.job, this.deps.log);
  }

  /** Operator shutdown: stop watching; the worker Job runs on and the next operator adopts it. */
  async detach(): Promise<void> {
    this.detached = true;
    this.abort.abort();
    await this.done;
  }

  get statusWrites(): number {
    return this.writer.writes;
  }

  private async run(): Promise<void> {
    try {
      await this.runWorkers();
    } catch (err) {
      if (!(err instanceof JobNameTaken)) throw err;
      // Our own Job of the other step, if any, stops; the foreign one is left as it is.
      await deleteWorkers(this.deps.client, this.job, this.deps.log);
      await this.failJob(JOB_NAME_TAKEN, err.message);
    }
  }

  private async runWorkers(): Promise<void> {
    const { deps } = this;
    // Asked of the API server before anything is made: has the namespace allowed worker pods?
    const notAllowed = await this.checkConsent();
    if (notAllowed) return this.failJob(WORKERS_NOT_ALLOWED, notAllowed);
    // The namespace allowed worker pods (list and watch of Jobs too): its worker Jobs are watched from now on.
    deps.workerJobs?.watch(this.ns);
    const refused = await this.checkServiceAccount();
    if (refused) {
      // Checked at every start (each generation, each operator start): an admin who took the mark away
      // also stops pods that already run under it.
      await deleteWorkers(deps.client, this.job, deps.log);
      return this.failJob(SA_REFUSED, refused);
    }
    await this.stopEarlierGenerations();
    if (this.abort.signal.aborted) return;
    const samePlan = await this.start();
    let announced = samePlan;
    while (!this.abort.signal.aborted) {
      const ended = await this.step(announced);
      if (ended === 'ended') return;
      if (ended === 'running') announced = true;
      await this.nextLook();
    }
    // Stopped: the reconciler writes why (Suspended, deleted, a new generation); the pods save their checkpoints.
    await this.writer.settle(10_000);
    if (!this.detached) deps.log.info('worker run stopped');
  }

  /**
   * The job's status and event say the run started; the shards of a plan of this selection are written
   * first (what a new generation resets, or the list an earlier operator kept). True when such a plan
   * exists (the run resumes it), false when a planning pod is to cut one.
   */
  private async start(): Promise<boolean> {
    const gen = this.generation;
    const prev = this.job.status ?? {};
    const samePlan = (prev.shards?.length ?? 0) > 0 && planFitsSelection(prev.shardPlan, this.job);
    const fresh = prev.observedGeneration !== gen;
    // A new generation looks at every shard again from its checkpoint (as in-process), or from its start
    // after a finished run of another spec (resumeShards): the old pods are gone.
    const resumedShards =
      fresh && samePlan && prev.shardPlan ? resumeShards(this.job, prev.shards ?? [], prev.shardPlan) : undefined;
    const restartReason = resumedShards?.restartReason;
    const now = new Date().toISOString();
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: samePlan ? 'Resumed' : 'Planning',
      message: samePlan
        ? `encrypting objects in ${prev.shards?.length ?? 0} shards as worker pods${restartReason ? ` (${restartReason})` : ''}`
        : 'a worker pod is planning the shards',
      observedGeneration: gen,
    });
    this.conditions = runningConditions(this.conditions, gen);
    const initial: EncryptionJobStatus = {
      observedGeneration: gen,
      phase: 'Running',
      conditions: this.conditions,
      completionTime: null,
      // The unsharded checkpoint stays until the planning pod has carried it into the first shard.
      ...(samePlan ? { checkpoint: null } : {}),
      dryRunCheckpoint: null,
      report: null,
      reportParts: null,
      // Failed keys are kept for unsharded runs only: a retry of a sharded job looks at its whole selection.
      failedKeys: null,
      ...(samePlan ? {} : answeredByFreshRun(this.job, now)),
      ...(fresh ? { retries: null, startTime: samePlan && prev.startTime ? prev.startTime : now } : {}),
      shards: null,
    };
    const plan = resumedShards?.plan ?? prev.shardPlan;
    if (samePlan && plan) {
      // The shards are objects: written with what a new generation resets (resumeShards), or made from
      // the list an earlier operator kept in the job's status (carried over: its plan has no count).
      const shards = resumedShards?.shards ?? prev.shards ?? [];
      const known = plan.shards === undefined ? undefined : (prev.shards ?? undefined);
      await this.store.sync(this.job, shards, plan.spec, false, known);
      initial.shardPlan = { ...plan, shards: shards.length };
      initial.shardCounts = countShards(shards);
    }
    await this.writer.update(initial, true);
    void this.event(
      'Normal',
      samePlan ? 'Resumed' : 'Started',
      `run started as worker pods (ServiceAccount ${this.job.spec.workers?.serviceAccountName})`,
    );
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Progressing');
    const labels = { namespace: this.ns, name: this.name };
    for (const result of ['encrypted', 'already_encrypted', 'skipped', 'failed'])
      this.deps.metrics.objects.inc({ ...labels, result }, 0);
    return samePlan;
  }

  /** Jobs of an earlier generation are stopped first: their pods must not write into the new run's shards. */
  private async stopEarlierGenerations(): Promise<void> {
    for (const step of ['plan', 'shards'] as WorkerStep[]) {
      const existing = await readOwnJob(this.deps.client, this.job, step);
      if (existing && existing.metadata?.labels?.[GENERATION_LABEL] !== String(this.generation)) {
        this.deps.log.info({ job: existing.metadata?.name }, 'deleting the worker Job of an earlier generation');
        await deleteWorkers(this.deps.client, this.job, this.deps.log);
        return;
      }
    }
  }

  /** One look at the Jobs and the shards: start what is missing, sum the progress, end the run when it is over. */
  private async step(announced: boolean): Promise<'planning' | 'running' | 'ended'> {
    const { client } = this.deps;
    const planName = workerJobName(this.name, 'plan');
    const shardsName = workerJobName(this.name, 'shards');
    // The Jobs before the shards: a Job that ended did so after its pods wrote their entries.
    // Once the shards are planned and the planning Job deleted, it is not read again (a GET that 404s every poll).
    // The planning Job from the API server: a cache that lags would have us retire the shards a
    // planning pod is making now. The shard Job from the cache (a lag costs a 409 on create at most).
    const planJob = this.planGone ? undefined : await readOwnJob(client, this.job, 'plan');
    const shardsJob = await this.shardsJob();
    // A worker Job that ended did so after its pods wrote their shards: those are read from the API
    // server then, not from a cache that may not have seen the last writes yet.
    const ended = [planJob, shardsJob].some((j) => jobCondition(j, 'Complete') || jobCondition(j, 'Failed'));
    const { job, shards } = await this.look(ended);
    if ((job.metadata?.generation ?? 0) !== this.generation || job.spec.suspend) return 'planning'; // the reconciler stops us
    const plan = job.status?.shardPlan;
    const planned = planFitsSelection(plan, job);
    if (!planned || shards.length === 0 || plan?.failure) {
      this.planGone = false;
      if (planned && plan?.failure) {
        await this.failJob(plan.failure.reason, `planning the shards: ${plan.failure.message}`);
        return 'ended';
      }
      if (!planJob) {
        // Shard objects of another plan (or one cut short) go first, their open uploads handed to the
        // job's checkpoint: the planning pod gives those to the first shard of the new plan.
        const stale = (await this.store.list(job)).filter((o) => !o.spec.dryRun);
        if (stale.length > 0 || job.status?.shardPlan) await this.store.retire(job, stale);
        await this.create('plan', 1);
      } else if (jobCondition(planJob, 'Complete')) {
        // Completed, yet no plan for this selection (its pod writes the plan before it exits 0, so this is a
        // plan lost to a concurrent status write): plan again rather than wait for ever.
        await client.deleteBatchJob(this.ns, planName, planJob.metadata?.uid);
      } else if (jobCondition(planJob, 'Failed')) {
        await this.failJob(
          'PlanningFailed',
          `the planning pod of Job ${planName} failed: ${jobCondition(planJob, 'Failed')?.message ?? ''}`,
        );
        return 'ended';
      }
      await this.watchWorkers(planJob);
      return 'planning';
    }
    if (planJob) await client.deleteBatchJob(this.ns, planName, planJob.metadata?.uid);
    this.planGone = true;
    if (!announced) await this.announce(shards.length);

    this.publish(shards);
    const failed = shards.find((s) => s.phase === 'Failed');
    if (failed) {
      const reason = /^([A-Z][A-Za-z0-9.]*):/.exec(failed.message ?? '')?.[1] ?? 'ShardFailed';
      await this.publishFinal(shards, {});
      await deleteWorkers(client, this.job, this.deps.log);
      await this.failJob(reason, `${describeShard(failed)}: ${failed.message ?? 'the shard failed'}`);
      return 'ended';
    }
    if (shards.every((s) => s.phase === 'Complete')) {
      await this.complete(shards, plan);
      return 'ended';
    }
    if (!shardsJob) {
      // First start, a resume, or the Job was deleted under us: the pods resume from the shards' checkpoints.
      await this.create('shards', shards.length);
    } else if (jobCondition(shardsJob, 'Failed') || jobCondition(shardsJob, 'Complete')) {
      const why = jobCondition(shardsJob, 'Failed')?.message ?? 'it completed with shards not Complete';
      const open = shards.filter((s) => s.phase !== 'Complete').map((s) => s.index);
      await this.publishFinal(shards, {});
      await this.failJob(
        'WorkersFailed',
        `worker Job ${shardsName} ended (${why}); shards ${open.join(', ')} not complete`,
      );
      return 'ended';
    }
    await this.watchWorkers(shardsJob);
    return 'running';
  }

  /**
   * The shard Job of this run's generation from the worker Job informer's cache; from the API server
   * when the cache cannot say, or holds another generation's Job (its delete not seen yet).
   */
  private async shardsJob(): Promise<V1Job | undefined> {
    const name = workerJobName(this.name, 'shards');
    const cached = this.deps.workerJobs?.get(this.ns, name);
    const current = (j: V1Job | undefined): boolean =>
      j?.metadata?.labels?.[GENERATION_LABEL] === String(this.generation);
    if (!cached?.known || (cached.job && !current(cached.job))) return readOwnJob(this.deps.client, this.job, 'shards');
    if (cached.job && !ownedBy(cached.job, this.job)) throw new JobNameTaken(this.ns, name);
    return cached.job;
  }

  /** The job and the shards of its plan (hydrate): from the informers' caches, or from the API server. */
  private async look(fresh: boolean): Promise<{ job: EncryptionJob; shards: ShardStatus[] }> {
    const { client, shardCache, getJob } = this.deps;
    const cached = fresh ? undefined : getJob?.(this.ns, this.name);
    const job = cached ?? (await client.getJob(this.ns, this.name));
    const objects = !fresh && cached && shardCache?.ready ? shardCache.forJob(job) : await this.store.list(job);
    return { job, shards: hydrate(job, objects).job.status?.shards ?? [] };
  }

  /** Progressing=False while the worker pods do not start (and back to True when they do), one Warning per cause. */
  private async watchWorkers(current: V1Job | undefined): Promise<void> {
    const change = await this.workers.look(current);
    const shown = showWorkerHealth(this.conditions, change, this.generation, this.heldProgressing);
    if (!shown) return;
    this.conditions = shown.conditions;
    this.heldProgressing = shown.held;
    await this.writer.update({ conditions: this.conditions }, true);
    if (shown.event) void this.event('Warning', shown.event.reason, shown.event.message);
  }

  private async create(step: WorkerStep, shards: number): Promise<void> {
    const manifest = workerJob(this.job, step, shards, this.deps.template);
    try {
      await this.deps.client.createBatchJob(manifest);
      this.workers.createRefused(undefined);
      this.deps.log.info({ job: manifest.metadata?.name, step, shards }, 'created the worker Job');
    } catch (err) {
      if (apiStatus(err) === 403) {
        // Consent was checked; this is admission (e.g. a count/jobs.batch quota): said on Progressing, tried again.
        return this.workers.createRefused(createForbidden(manifest, err));
      }
      if (apiStatus(err) !== 409) throw err;
      // Created by an earlier look whose answer we did not see, or still terminating: look again next
      // time. Unless that Job is someone else's: then the name is taken.
      await readOwnJob(this.deps.client, this.job, step);
    }
  }

  private async announce(shards: number): Promise<void> {
    const parallelism = Math.min(shards, Math.max(1, this.job.spec.parallelism ?? 1));
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: 'Encrypting',
      message: `encrypting objects in ${shards} shards as worker pods of Job ${workerJobName(this.name, 'shards')}, ${parallelism} at a time`,
      observedGeneration: this.generation,
    });
    await this.writer.update({ conditions: this.conditions, checkpoint: null }, true);
  }

  /** The sum of the shards as status.progress (coalesced) and as metrics (the increase since the last look). */
  private publish(shards: ShardStatus[]): JobProgress {
    const progress = sumProgress(shards);
    const labels = { namespace: this.ns, name: this.name };
    const last = this.last;
    const delta = (k: 'encrypted' | 'alreadyEncrypted' | 'skipped' | 'failed' | 'bytesEncrypted'): number =>
      Math.max(0, progress[k] - (last?.[k] ?? progress[k]));
    if (last) {
      this.deps.metrics.objects.inc({ ...labels, result: 'encrypted' }, delta('encrypted'));
      this.deps.metrics.objects.inc({ ...labels, result: 'already_encrypted' }, delta('alreadyEncrypted'));
      this.deps.metrics.objects.inc({ ...labels, result: 'skipped' }, delta('skipped'));
      this.deps.metrics.objects.inc({ ...labels, result: 'failed' }, delta('failed'));
      this.deps.metrics.bytes.inc(labels, delta('bytesEncrypted'));
    }
    this.last = progress;
    if (progress.total) this.deps.metrics.progressRatio.set(labels, progress.scanned / progress.total);
    const shardCounts = countShards(shards);
    const text = JSON.stringify({ progress, shardCounts });
    if (text !== this.lastWritten) void this.writer.update({ progress: replacing(progress), shardCounts });
    this.lastWritten = text;
    return progress;
  }

  private async publishFinal(shards: ShardStatus[], extra: EncryptionJobStatus): Promise<void> {
    await this.writer.update(
      { ...extra, progress: replacing(sumProgress(shards)), shardCounts: countShards(shards) },
      true,
    );
    await this.writer.settle();
  }

  private async complete(shards: ShardStatus[], plan: EncryptionJobStatus['shardPlan']): Promise<void> {
    const gen = this.generation;
    const progress = sumProgress(shards);
    progress.total = progress.scanned;
    progress.summary = `${progress.encrypted + progress.alreadyEncrypted}/${progress.scanned}`;
    const noncurrent = shards.map((s) => s.noncurrentVersions);
    const done = completedStatus(this.conditions, {
      progress,
      // The CRD refuses spec.workers with spec.dryRun.
      dryRun: false,
      where: `in ${shards.length} shards (worker pods)`,
      warnings: [],
      failuresAt: "the shards' progress",
      generation: gen,
    });
    this.conditions = done.conditions;
    await this.writer.update(
      {
        phase: 'Complete',
        completionTime: new Date().toISOString(),
        conditions: this.conditions,
        progress: replacing(progress),
        noncurrentVersions: noncurrent.every((n) => n !== undefined)
          ? noncurrent.reduce((a: number, b) => a + b, 0)
          : null,
        // What the finished shards were for: a later generation of another spec runs them from their start.
        ...(plan ? { shardPlan: { ...plan, completedFor: runFingerprint(this.job.spec) } } : {}),
      },
      true,
    );
    await this.writer.settle();
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
    this.deps.metrics.progressRatio.set({ namespace: this.ns, name: this.name }, 1);
    for (const e of done.events) void this.event(e.type, e.reason, e.message);
    this.deps.log.info({ progress, writes: this.writer.writes }, 'worker run complete');
  }

  /**
   * RBAC as consent: undefined when the namespace's RBAC lets the operator do what worker pods take
   * (asked of the API server before anything is made), else what its admins do to allow them.
   */
  private async checkConsent(): Promise<string | undefined> {
    const { client } = this.deps;
    const answers = await Promise.all(
      WORKER_ACCESS.map(async (a) =>
        (await client.mayI(this.ns, a.verb, a.group, a.resource)) ? '' : `${a.verb} ${a.resource}`,
      ),
    );
    const missing = answers.filter(Boolean);
    if (missing.length === 0) return undefined;
    const role = this.deps.template.clusterRole ?? WORKERS_CLUSTER_ROLE;
    const user = await client.whoAmI().catch(() => undefined);
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user ?? '');
    const subject = sa ? `ServiceAccount ${sa[1]}:${sa[2]}` : "the operator's ServiceAccount";
    const how = sa
      ? `: kubectl create rolebinding ${role} -n ${this.ns} --clusterrole=${role} --serviceaccount=${sa[1]}:${sa[2]}`
      : '';
    return `namespace "${this.ns}" has not allowed worker pods (the operator may not ${missing.join(', ')} there): its admins bind ClusterRole ${role} to ${subject} in it${how}`;
  }

  /**
   * Undefined when the ServiceAccount may run workers, else why not: it must be
   * in the job's namespace and carry the label its admins give it.
   */
  private async checkServiceAccount(): Promise<string | undefined> {
    const sa = this.job.spec.workers?.serviceAccountName ?? '';
    let labels: Record<string, string> | undefined;
    try {
      labels = (await this.deps.client.readServiceAccount(this.ns, sa)).metadata?.labels;
    } catch (err) {
      const code = apiStatus(err);
      if (code === 404) return `ServiceAccount "${sa}" not found in namespace "${this.ns}"`;
      if (code === 403) return `the operator may not read ServiceAccount "${sa}" in namespace "${this.ns}"`;
      throw err;
    }
    if (labels?.[WORKER_SA_LABEL] !== 'true') {
      return `ServiceAccount "${sa}" in namespace "${this.ns}" is not marked for workers: its namespace's admins must label it ${WORKER_SA_LABEL}=true`;
    }
    return undefined;
  }

  private async failJob(reason: string, text: string): Promise<void> {
    const msg = clip(text);
    const gen = this.generation;
    for (const type of ['Progressing', 'Failed'] as const) {
      this.conditions = setCondition(this.conditions, {
        type,
        status: type === 'Failed' ? 'True' : 'False',
        reason,
        message: msg,
        observedGeneration: gen,
      });
    }
    const prev = this.job.status ?? {};
    await this.writer.update(
      {
        observedGeneration: gen,
        ...(prev.observedGeneration !== gen ? { retries: null } : {}),
        phase: 'Failed',
        completionTime: new Date().toISOString(),
        conditions: this.conditions,
      },
      true,
    );
    await this.writer.settle();
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Failed');
    void this.event('Warning', reason, msg);
  }

  private async event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.deps.client.event(this.job, { type, reason, message }, COMPONENT);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'could not record event');
    }
  }
}
