// Reconciling one EncryptionJob: compare what the job asks for with the run in
// progress (if any) and start, stop or leave it; write what it means to status.
import type { Budget } from '../engine/index.js';
import type { Logger } from '../log.js';
import { ShardStore } from './shardstore.js';
import type { ShardCache, WorkerJobCache } from './workerrun.js';
import type { Metrics } from '../metrics.js';
import { FINALIZER, type EncryptionJob, type EncryptionJobStatus } from './api.js';
import { findCondition, isTrue, setCondition } from './conditions.js';
import { JobRun } from './jobrun.js';
import { rescanStatus, retryAsked, RETRY_FAILED_ANNOTATION, type RetryAsk } from './retryfailed.js';
import { RetryRun } from './retryrun.js';
import { ShardRun, usesShards } from './shardrun.js';
import { deleteWorkers, WorkerRun } from './workerrun.js';
import type { WorkerTemplate } from './workerjob.js';
import { apiStatus, type KubeClient } from './kubeclient.js';
import type { Credentials } from './plan.js';
import { checkTenancy, clip, type TenancyPolicy } from './tenancy.js';

export interface ReconcilerDeps {
  client: KubeClient;
  metrics: Metrics;
  log: Logger;
  /** Objects in flight across all jobs. */
  budget?: Budget;
  retryBaseMs?: number;
  /** The informer's cache: the latest job we have seen. */
  getJob: (namespace: string, name: string) => EncryptionJob | undefined;
  /** The admin's tenancy policy: checked before a job reads a Secret or makes any S3 call. */
  policy: TenancyPolicy;
  /** Look at the job again after this long (the work queue's addAfter). */
  requeue?: (key: string, afterMs: number) => void;
  /** The image and command of worker pods (spec.workers). */
  workerTemplate?: WorkerTemplate;
  /** The shard informer's cache (worker runs read the shards from it); absent: read from the API server. */
  shardCache?: ShardCache;
  /** The worker Job informers' caches (worker runs read their Jobs from them). */
  workerJobs?: WorkerJobCache;
}

/** Did the job run as shards (a plan in its status, or the list an earlier operator kept)? */
function hadShards(job: EncryptionJob): boolean {
  return !!job.status?.shardPlan || (job.status?.shards?.length ?? 0) > 0;
}

/**
 * The Secret a job names cannot be used yet: it does not exist, or lacks the
 * keys. GitOps tools and External Secrets often create it after the job, so
 * this is a waiting state (looked at again with backoff), not a failure.
 */
export class SecretNotReady extends Error {
  constructor(
    readonly reason: 'SecretNotFound' | 'SecretIncomplete',
    message: string,
  ) {
    super(message);
  }
}

/** Reading the Secret failed for a reason that passes (no answer, 5xx): not the job's fault. */
export class SecretReadFailed extends Error {}

/** First and longest wait before the Secret of a waiting job is read again. */
export const SECRET_WAIT_FIRST_MS = 1000;
export const SECRET_WAIT_MAX_MS = 30_000;

/** Status fields that change with the generation a status describes. */
function forGeneration(status: EncryptionJobStatus | undefined, gen: number): EncryptionJobStatus {
  // status.retries counts runs of one generation: a spec edit starts it again.
  return { observedGeneration: gen, ...(status?.observedGeneration !== gen ? { retries: null } : {}) };
}

/** Complete or Failed for the generation it has now: a verdict stands until the spec changes. */
function isFinished(job: EncryptionJob): boolean {
  const status = job.status ?? {};
  return (
    (isTrue(status.conditions, 'Complete') || isTrue(status.conditions, 'Failed')) &&
    status.observedGeneration === (job.metadata?.generation ?? 0)
  );
}

/** A step that ends this reconcile: look at the job again after this long (undefined: at its next event). */
interface Stop {
  requeueAfterMs: number | undefined;
}

/** The job may run, with these credentials (none: the default chain). */
interface Admitted {
  credentials: Credentials | undefined;
}

/** The job as the API server has it now, and the retry of failed keys it asks for. */
interface Fresh {
  job: EncryptionJob;
  ask: RetryAsk | undefined;
}

/**
 * A job's run in progress: one engine run (JobRun), its shards' runs (ShardRun), its worker pods
 * (WorkerRun), or a retry of a Complete job's failed keys (RetryRun).
 */
type ActiveRun = JobRun | ShardRun | WorkerRun | RetryRun;

export class Reconciler {
  private readonly runs = new Map<string, ActiveRun>();
  /** Jobs whose last run ended on a passing error: not started again before this time. */
  private readonly notBefore = new Map<string, number>();
  /** Jobs waiting for their Secret: how many times it was looked for. */
  private readonly secretWaits = new Map<string, number>();

  constructor(private readonly deps: ReconcilerDeps) {}

  /** A shard or worker Job of the job changed: its worker run looks again soon (its caches are current). */
  poke(namespace: string, name: string): void {
    const run = this.runs.get(`${namespace}/${name}`);
    if (run instanceof WorkerRun) run.poke();
  }

  get activeRuns(): number {
    return this.runs.size;
  }

  /** Returns a delay in ms to look again, or undefined. Throws to be retried with backoff. */
  async reconcile(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const log = this.deps.log.child({ namespace, name });
    const job = this.deps.getJob(namespace, name);
    const run = this.runs.get(key);
    if (!job) return this.handleGone(key, namespace, name, run);
    if (job.metadata?.deletionTimestamp) return this.handleDeleted(key, job, run, log);
    if (!(job.metadata?.finalizers ?? []).includes(FINALIZER)) return this.ensureFinalizer(job);
    if (job.spec.suspend) return this.handleSuspend(key, job, run, log);

    const gen = job.metadata?.generation ?? 0;
    if (run) {
      if (run.generation === gen) return undefined;
      // The spec changed (concurrency, dryRun): restart from the checkpoint with the new spec.
      await this.stopRun(key, run);
    }
    if (isFinished(job) && !(await this.retryWanted(job))) return undefined;

    // A run that ended on a transient error holds its job back for its backoff (track).
    const wait = (this.notBefore.get(key) ?? 0) - Date.now();
    if (wait > 0) return wait;
    this.notBefore.delete(key);

    const admitted = await this.admit(key, job, log);
    if ('requeueAfterMs' in admitted) return admitted.requeueAfterMs;
    const fresh = await this.readFresh(job, log);
    if ('requeueAfterMs' in fresh) return fresh.requeueAfterMs;
    await this.startRun(key, fresh.job, fresh.ask, admitted.credentials, log);
    return undefined;
  }

  /** The job is gone from the cache: its run stops and nothing of it is remembered. */
  private async handleGone(key: string, namespace: string, name: string, run?: ActiveRun): Promise<undefined> {
    this.notBefore.delete(key);
    this.secretWaits.delete(key);
    if (run) await this.stopRun(key, run);
    await this.deps.metrics.forgetJob(namespace, name);
    return undefined;
  }

  private async handleDeleted(
    key: string,
    job: EncryptionJob,
    run: ActiveRun | undefined,
    log: Logger,
  ): Promise<undefined> {
    const namespace = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    if (run) await this.stopRun(key, run);
    // Worker pods stop (and stop writing to the job) before the finalizer goes, also after an operator restart.
    if (job.spec.workers || hadShards(job)) await deleteWorkers(this.deps.client, job, log);
    this.secretWaits.delete(key);
    await this.removeFinalizer(namespace, name);
    await this.deps.metrics.forgetJob(namespace, name);
    log.info('job deleted: run stopped, finalizer removed');
    return undefined;
  }

  /** The finalizer lets a delete wait until the run has stopped cleanly. */
  private async ensureFinalizer(job: EncryptionJob): Promise<undefined> {
    await this.deps.client.patchJob(job.metadata?.namespace ?? '', job.metadata?.name ?? '', {
      metadata: {
        finalizers: [...(job.metadata?.finalizers ?? []), FINALIZER],
        resourceVersion: job.metadata?.resourceVersion,
      },
    });
    return undefined; // the update event brings us back
  }

  private async handleSuspend(
    key: string,
    job: EncryptionJob,
    run: ActiveRun | undefined,
    log: Logger,
  ): Promise<undefined> {
    const namespace = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const gen = job.metadata?.generation ?? 0;
    const status = job.status ?? {};
    if (!run && job.spec.workers && status.phase !== 'Suspended') await deleteWorkers(this.deps.client, job, log);
    if (run) {
      await this.stopRun(key, run);
      this.deps.client
        .event(
          job,
          { type: 'Normal', reason: 'Suspended', message: 'suspended: in-flight objects finished, checkpoint saved' },
          's3-encryption-operator',
        )
        .catch(() => undefined);
    }
    if (isTrue(status.conditions, 'Suspended') && status.observedGeneration === gen) return undefined;
    let conditions = setCondition(status.conditions, {
      type: 'Suspended',
      status: 'True',
      reason: 'Suspended',
      message: 'spec.suspend is true',
      observedGeneration: gen,
    });
    conditions = setCondition(conditions, {
      type: 'Progressing',
      status: 'False',
      reason: 'Suspended',
      message: 'spec.suspend is true',
      observedGeneration: gen,
    });
    await this.deps.client.patchStatus(namespace, name, {
      ...forGeneration(status, gen),
      phase: 'Suspended',
      conditions,
    });
    this.deps.metrics.setJobCondition(namespace, name, 'Suspended');
    return undefined;
  }

  /**
   * A finished job is looked at again only for a new s3encryption.dev/retry-failed value; one
   * with nothing to retry is answered here, before any credential is read.
   */
  private async retryWanted(job: EncryptionJob): Promise<boolean> {
    const asked = retryAsked(job);
    if (asked?.kind === 'nothing') {
      await this.answerRetry(job, asked);
      return false;
    }
    if (asked) return true;
    // After a restart or a leader change, finished jobs still need their condition series (alerts read them).
    const failed = isTrue(job.status?.conditions, 'Failed');
    this.deps.metrics.setJobCondition(
      job.metadata?.namespace ?? '',
      job.metadata?.name ?? '',
      failed ? 'Failed' : 'Complete',
    );
    return false;
  }

  /**
   * The job may run: the tenancy policy allows it and its Secret is there. A refused job fails; one
   * whose Secret is not there yet waits for it.
   */
  private async admit(key: string, job: EncryptionJob, log: Logger): Promise<Admitted | Stop> {
    const refused = checkTenancy(job, this.deps.policy);
    if (refused) {
      log.warn({ reason: refused.reason }, refused.message);
      await this.failJob(job, refused.reason, refused.message);
      return { requeueAfterMs: undefined };
    }
    let credentials: Credentials | undefined;
    try {
      credentials = await this.credentials(job);
    } catch (err) {
      if (err instanceof SecretNotReady) return { requeueAfterMs: await this.waitForSecret(key, job, err) };
      // The API server did not answer (network, 5xx): the work queue tries again with backoff.
      if (err instanceof SecretReadFailed) throw err;
      await this.failJob(job, 'CredentialsUnavailable', (err as Error).message);
      return { requeueAfterMs: undefined };
    }
    this.secretWaits.delete(key);
    return { credentials };
  }

  /**
   * Re-reads the job: the cache may lag behind a status the last run just wrote (its checkpoint,
   * or its end), so whether to run is decided on the fresh object, never on the cache.
   */
  private async readFresh(job: EncryptionJob, log: Logger): Promise<Fresh | Stop> {
    const gen = job.metadata?.generation ?? 0;
    const fresh = await this.deps.client.getJob(job.metadata?.namespace ?? '', job.metadata?.name ?? '');
    // The cache is behind (suspend, delete or a newer spec): its event is on the
    // way; look again shortly rather than in a tight loop of GETs.
    if (fresh.spec.suspend || fresh.metadata?.deletionTimestamp) return { requeueAfterMs: 1000 };
    if ((fresh.metadata?.generation ?? 0) !== gen) return { requeueAfterMs: 1000 };
    // The run takes its spec from the fresh object: a spec edited since the cache was read is judged again.
    if (checkTenancy(fresh, this.deps.policy)) return { requeueAfterMs: 1000 };
    const ask = retryAsked(fresh);
    if (isFinished(fresh) && !ask) {
      log.debug('the cache lagged: the job is already finished for this generation');
      return { requeueAfterMs: undefined };
    }
    if (ask?.kind === 'nothing') return { requeueAfterMs: undefined }; // answered from the cache
    return { job: fresh, ask };
  }

  /** Starts the run the fresh job asks for and tracks it until it ends. */
  private async startRun(
    key: string,
    fresh: EncryptionJob,
    ask: RetryAsk | undefined,
    credentials: Credentials | undefined,
    log: Logger,
  ): Promise<void> {
    // The failed keys are not all kept: the job runs again over its whole selection (a new run below).
    const rescanned = ask?.kind === 'rescan' ? await this.rescan(fresh, ask) : fresh;
    // The shards are objects of their own: the run sees them in the job's status (shardstore.ts hydrate).
    const toRun = await this.withShards(rescanned, log);
    log.info({ generation: fresh.metadata?.generation ?? 0, dryRun: fresh.spec.dryRun ?? false }, 'starting run');
    // A job that ran as worker pods and now runs in the operator: no pod of the old Job may still work on its shards.
    if (!toRun.spec.workers && hadShards(toRun)) await deleteWorkers(this.deps.client, toRun, log);
    this.track(key, this.newRun(toRun, credentials, ask, log), log);
  }

  /** The kind of run the job asks for. */
  private newRun(
    job: EncryptionJob,
    credentials: Credentials | undefined,
    ask: RetryAsk | undefined,
    log: Logger,
  ): ActiveRun {
    const runDeps = {
      client: this.deps.client,
      metrics: this.deps.metrics,
      log,
      ...(this.deps.budget ? { budget: this.deps.budget } : {}),
      ...(this.deps.retryBaseMs ? { retryBaseMs: this.deps.retryBaseMs } : {}),
    };
    if (ask?.kind === 'keys') return new RetryRun(job, credentials, ask, runDeps);
    // With spec.workers the pods get the Secret as env from the Job: its value is read only to wait for it.
    if (job.spec.workers)
      return new WorkerRun(job, {
        ...runDeps,
        template: this.workerTemplate(),
        getJob: this.deps.getJob,
        ...(this.deps.shardCache ? { shardCache: this.deps.shardCache } : {}),
        ...(this.deps.workerJobs ? { workerJobs: this.deps.workerJobs } : {}),
      });
    return usesShards(job) ? new ShardRun(job, credentials, runDeps) : new JobRun(job, credentials, runDeps);
  }

  /** Forgets the run when it ends; one that ended on a passing error holds the job back, then looks again. */
  private track(key: string, run: ActiveRun, log: Logger): void {
    this.runs.set(key, run);
    run.done
      .then(() => {
        if (this.runs.get(key) === run) this.runs.delete(key);
        if (run.retryAfterMs !== undefined) {
          this.notBefore.set(key, Date.now() + run.retryAfterMs);
          // Not left to the next watch event or the resync: that event may already
          // have been handled while this run was still finishing.
          this.deps.requeue?.(key, run.retryAfterMs);
        }
      })
      .catch((err: unknown) => log.error({ err: String(err) }, 'cleaning up after a run failed'));
  }

  /**
   * The job with its shard objects read into its status (hydrate). Shard objects no run of it will
   * use (of another selection, a plan cut short, or a job that now runs unsharded) are retired first:
   * their open uploads handed to the job's checkpoint, then deleted. A workers job's run does that
   * itself, before it starts a planning pod (one may be making objects now).
   */
  private async withShards(job: EncryptionJob, log: Logger): Promise<EncryptionJob> {
    const store = new ShardStore(this.deps.client, log);
    const { job: view, stale } = await store.hydrate(job);
    if (job.spec.workers) return view;
    const dryRun = job.spec.dryRun ?? false;
    const unused = usesShards(view) ? stale : (await store.list(job)).filter((o) => !dryRun || o.spec.dryRun);
    if (unused.length === 0) return view;
    await store.retire(job, unused);
    return (await store.hydrate(await this.deps.client.getJob(job.metadata?.namespace ?? '', job.metadata?.name ?? '')))
      .job;
  }

  /** A retry-failed value with nothing to retry: answered in status and an event, once. */
  private async answerRetry(job: EncryptionJob, ask: RetryAsk): Promise<void> {
    const why = ask.kind === 'keys' ? '' : ask.why;
    const message = `nothing retried (${RETRY_FAILED_ANNOTATION}: ${ask.value}): ${why}`;
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    await this.deps.client.patchStatus(ns, name, {
      retryFailed: { handled: ask.value, message, time: new Date().toISOString() },
    });
    await this.deps.client
      .event(job, { type: 'Normal', reason: 'RetriedFailures', message }, 's3-encryption-operator')
      .catch(() => undefined);
  }

  /**
   * The failed keys of a Complete job are not all kept (more than fit, or a sharded job): its
   * checkpoint and shards are dropped, so the run started next looks at its whole selection again.
   */
  private async rescan(job: EncryptionJob, ask: RetryAsk): Promise<EncryptionJob> {
    const log = this.deps.log.child({ namespace: job.metadata?.namespace, name: job.metadata?.name });
    // No pod of the finished worker Job may write to the shards the new run plans.
    if (job.spec.workers || hadShards(job)) await deleteWorkers(this.deps.client, job, log);
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    // The shards go (the run plans again): their open uploads are handed to the checkpoint first.
    const store = new ShardStore(this.deps.client, log);
    const shards = (await store.list(job)).filter((o) => !o.spec.dryRun);
    let current = job;
    if (shards.length > 0) {
      await store.retire(job, shards);
      current = await this.deps.client.getJob(ns, name);
    }
    const status = rescanStatus(current, ask, new Date().toISOString());
    const updated = await this.deps.client.patchStatus(ns, name, status);
    const message = status.retryFailed?.message ?? '';
    log.info({ value: ask.value }, message);
    await this.deps.client
      .event(job, { type: 'Warning', reason: 'RetryingFailures', message }, 's3-encryption-operator')
      .catch(() => undefined);
    return updated;
  }

  /** Says the job waits for its Secret (once per change), and when to look again. */
  private async waitForSecret(key: string, job: EncryptionJob, why: SecretNotReady): Promise<number> {
    const n = this.secretWaits.get(key) ?? 0;
    this.secretWaits.set(key, n + 1);
    const delay = Math.min(SECRET_WAIT_FIRST_MS * 2 ** n, SECRET_WAIT_MAX_MS);
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const gen = job.metadata?.generation ?? 0;
    const status = job.status ?? {};
    const progressing = findCondition(status.conditions, 'Progressing');
    const message = `${why.message}; the job starts when it appears (looking again with backoff)`;
    const unchanged =
      status.phase === 'Pending' &&
      status.observedGeneration === gen &&
      progressing?.reason === why.reason &&
      progressing.message === message;
    if (!unchanged) {
      let conditions = setCondition(status.conditions, {
        type: 'Progressing',
        status: 'False',
        reason: why.reason,
        message,
        observedGeneration: gen,
      });
      for (const type of ['Complete', 'Failed'] as const) {
        conditions = setCondition(conditions, {
          type,
          status: 'False',
          reason: why.reason,
          message: '',
          observedGeneration: gen,
        });
      }
      await this.deps.client.patchStatus(ns, name, { ...forGeneration(status, gen), phase: 'Pending', conditions });
      this.deps.metrics.setJobCondition(ns, name, 'Pending'); // none of the four conditions is true
      await this.deps.client
        .event(job, { type: 'Warning', reason: why.reason, message }, 's3-encryption-operator')
        .catch(() => undefined);
      this.deps.log
        .child({ namespace: ns, name })
        .info({ reason: why.reason, retryInMs: delay }, 'waiting for the credentials Secret');
    }
    return delay;
  }

  private workerTemplate(): WorkerTemplate {
    return this.deps.workerTemplate ?? { image: 's3-encryption-operator:latest', command: ['node', 'dist/worker.js'] };
  }

  private async stopRun(key: string, run: ActiveRun): Promise<void> {
    await run.stop();
    if (this.runs.get(key) === run) this.runs.delete(key);
  }

  /** Stops every run (shutdown): each saves its checkpoint. */
  async stopAll(): Promise<void> {
    // Worker pods go on without the operator: the next leader adopts their Job.
    await Promise.all(
      [...this.runs.entries()].map(([key, run]) =>
        run instanceof WorkerRun ? run.detach().then(() => this.runs.delete(key)) : this.stopRun(key, run),
      ),
    );
  }

  private async credentials(job: EncryptionJob): Promise<Credentials | undefined> {
    const ref = job.spec.connection?.credentialsSecretRef;
    if (!ref) return undefined;
    const namespace = job.metadata?.namespace ?? '';
    let data: Record<string, string>;
    try {
      // Always the job's own namespace: a job can never name another namespace's Secret.
      data = await this.deps.client.readSecret(namespace, ref.name);
    } catch (err) {
      const code = apiStatus(err);
      if (code === 404)
        throw new SecretNotReady('SecretNotFound', `Secret "${ref.name}" not found in namespace "${namespace}"`);
      if (code === 403) throw new Error(`the operator may not read Secret "${ref.name}" in namespace "${namespace}"`);
      throw new SecretReadFailed(`reading Secret "${ref.name}" in namespace "${namespace}" failed: ${String(err)}`, {
        cause: err,
      });
    }
    const accessKeyId = data.AWS_ACCESS_KEY_ID;
    const secretAccessKey = data.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new SecretNotReady(
        'SecretIncomplete',
        `Secret "${ref.name}" in namespace "${namespace}" must have AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      );
    }
    return {
      accessKeyId,
      secretAccessKey,
      ...(data.AWS_SESSION_TOKEN ? { sessionToken: data.AWS_SESSION_TOKEN } : {}),
    };
  }

  private async failJob(job: EncryptionJob, reason: string, text: string): Promise<void> {
    const message = clip(text);
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const gen = job.metadata?.generation ?? 0;
    let conditions = setCondition(job.status?.conditions, {
      type: 'Failed',
      status: 'True',
      reason,
      message,
      observedGeneration: gen,
    });
    conditions = setCondition(conditions, {
      type: 'Progressing',
      status: 'False',
      reason,
      message,
      observedGeneration: gen,
    });
    await this.deps.client.patchStatus(ns, name, {
      ...forGeneration(job.status, gen),
      phase: 'Failed',
      conditions,
      completionTime: new Date().toISOString(),
    });
    this.deps.metrics.setJobCondition(ns, name, 'Failed');
    await this.deps.client
      .event(job, { type: 'Warning', reason, message }, 's3-encryption-operator')
      .catch(() => undefined);
  }

  /**
   * Removes our finalizer from the job as it is now: the cached copy is older
   * than the run's last status write, so its resourceVersion would get a 409.
   */
  private async removeFinalizer(namespace: string, name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const job = await this.deps.client.getJob(namespace, name);
        const finalizers = (job.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
        if (finalizers.length === (job.metadata?.finalizers ?? []).length) return;
        await this.deps.client.patchJob(namespace, name, {
          metadata: { finalizers, resourceVersion: job.metadata?.resourceVersion },
        });
        return;
      } catch (err) {
        const code = apiStatus(err);
        if (code === 404) return;
        // Someone wrote the job between our read and our patch: read it again.
        if (code !== 409 || attempt >= 3) throw err;
      }
    }
  }
}
