// Reconciling one EncryptionJob: compare what the job asks for with the run in
// progress (if any) and start, stop or leave it; write what it means to status.
import type { Budget } from '../engine/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { FINALIZER, type EncryptionJob } from './api.js';
import { isTrue, setCondition } from './conditions.js';
import { JobRun } from './jobrun.js';
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
}

export class Reconciler {
  private readonly runs = new Map<string, JobRun>();
  /** Jobs whose last run ended on a passing error: not started again before this time. */
  private readonly notBefore = new Map<string, number>();

  constructor(private readonly deps: ReconcilerDeps) {}

  get activeRuns(): number {
    return this.runs.size;
  }

  /** Returns a delay in ms to look again, or undefined. Throws to be retried with backoff. */
  async reconcile(key: string): Promise<number | undefined> {
    const [namespace = '', name = ''] = key.split('/');
    const log = this.deps.log.child({ namespace, name });
    const job = this.deps.getJob(namespace, name);
    const run = this.runs.get(key);

    if (!job) {
      this.notBefore.delete(key);
      if (run) await this.stopRun(key, run);
      await this.deps.metrics.forgetJob(namespace, name);
      return undefined;
    }
    if (job.metadata?.deletionTimestamp) {
      if (run) await this.stopRun(key, run);
      await this.removeFinalizer(job);
      await this.deps.metrics.forgetJob(namespace, name);
      log.info('job deleted: run stopped, finalizer removed');
      return undefined;
    }
    if (!(job.metadata?.finalizers ?? []).includes(FINALIZER)) {
      // The finalizer lets a delete wait until the run has stopped cleanly.
      await this.deps.client.patchJob(namespace, name, {
        metadata: { finalizers: [...(job.metadata?.finalizers ?? []), FINALIZER], resourceVersion: job.metadata?.resourceVersion },
      });
      return undefined; // the update event brings us back
    }

    const gen = job.metadata?.generation ?? 0;
    const status = job.status ?? {};
    if (job.spec.suspend) {
      if (run) {
        await this.stopRun(key, run);
        this.deps.client.event(job, { type: 'Normal', reason: 'Suspended', message: 'suspended: in-flight objects finished, checkpoint saved' }, 's3-encryption-operator').catch(() => undefined);
      }
      if (!isTrue(status.conditions, 'Suspended') || status.observedGeneration !== gen) {
        let conditions = setCondition(status.conditions, { type: 'Suspended', status: 'True', reason: 'Suspended', message: 'spec.suspend is true', observedGeneration: gen });
        conditions = setCondition(conditions, { type: 'Progressing', status: 'False', reason: 'Suspended', message: 'spec.suspend is true', observedGeneration: gen });
        await this.deps.client.patchStatus(namespace, name, { observedGeneration: gen, phase: 'Suspended', conditions });
        this.deps.metrics.setJobCondition(namespace, name, 'Suspended');
      }
      return undefined;
    }

    const finished =
      (isTrue(status.conditions, 'Complete') || isTrue(status.conditions, 'Failed')) && status.observedGeneration === gen;
    if (run) {
      if (run.generation === gen) return undefined;
      // The spec changed (concurrency, dryRun): restart from the checkpoint with the new spec.
      await this.stopRun(key, run);
    }
    if (finished) {
      // After a restart or a leader change, finished jobs still need their condition series (alerts read them).
      this.deps.metrics.setJobCondition(namespace, name, isTrue(status.conditions, 'Failed') ? 'Failed' : 'Complete');
      return undefined;
    }

    const wait = (this.notBefore.get(key) ?? 0) - Date.now();
    if (wait > 0) return wait;
    this.notBefore.delete(key);

    const refused = checkTenancy(job, this.deps.policy);
    if (refused) {
      log.warn({ reason: refused.reason }, refused.message);
      await this.failJob(job, refused.reason, refused.message);
      return undefined;
    }
    let credentials: Credentials | undefined;
    try {
      credentials = await this.credentials(job);
    } catch (err) {
      await this.failJob(job, 'CredentialsUnavailable', (err as Error).message);
      return undefined;
    }
    // Re-read: the cache may lag behind a status the last run just wrote (its checkpoint).
    const fresh = await this.deps.client.getJob(namespace, name);
    if (fresh.spec.suspend || fresh.metadata?.deletionTimestamp) return 0;
    // The run takes its spec from the fresh object: a spec edited since the cache was read is judged again.
    if (checkTenancy(fresh, this.deps.policy)) return 1000;
    log.info({ generation: gen, dryRun: fresh.spec.dryRun ?? false }, 'starting run');
    const next = new JobRun(fresh, credentials, {
      client: this.deps.client,
      metrics: this.deps.metrics,
      log,
      ...(this.deps.budget ? { budget: this.deps.budget } : {}),
      ...(this.deps.retryBaseMs ? { retryBaseMs: this.deps.retryBaseMs } : {}),
    });
    this.runs.set(key, next);
    void next.done.finally(() => {
      if (this.runs.get(key) === next) this.runs.delete(key);
      if (next.retryAfterMs !== undefined) this.notBefore.set(key, Date.now() + next.retryAfterMs);
    });
    return undefined;
  }

  private async stopRun(key: string, run: JobRun): Promise<void> {
    await run.stop();
    if (this.runs.get(key) === run) this.runs.delete(key);
  }

  /** Stops every run (shutdown): each saves its checkpoint. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.runs.entries()].map(([key, run]) => this.stopRun(key, run)));
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
      if (code === 404) throw new Error(`Secret "${ref.name}" not found in namespace "${namespace}"`);
      if (code === 403) throw new Error(`the operator may not read Secret "${ref.name}" in namespace "${namespace}"`);
      throw new Error(`reading Secret "${ref.name}" in namespace "${namespace}" failed: ${String(err)}`);
    }
    const accessKeyId = data.AWS_ACCESS_KEY_ID;
    const secretAccessKey = data.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(`Secret "${ref.name}" in namespace "${namespace}" must have AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
    }
    return { accessKeyId, secretAccessKey, ...(data.AWS_SESSION_TOKEN ? { sessionToken: data.AWS_SESSION_TOKEN } : {}) };
  }

  private async failJob(job: EncryptionJob, reason: string, text: string): Promise<void> {
    const message = clip(text);
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const gen = job.metadata?.generation ?? 0;
    let conditions = setCondition(job.status?.conditions, { type: 'Failed', status: 'True', reason, message, observedGeneration: gen });
    conditions = setCondition(conditions, { type: 'Progressing', status: 'False', reason, message, observedGeneration: gen });
    await this.deps.client.patchStatus(ns, name, { observedGeneration: gen, phase: 'Failed', conditions, completionTime: new Date().toISOString() });
    this.deps.metrics.setJobCondition(ns, name, 'Failed');
    await this.deps.client.event(job, { type: 'Warning', reason, message }, 's3-encryption-operator').catch(() => undefined);
  }

  private async removeFinalizer(job: EncryptionJob): Promise<void> {
    const finalizers = (job.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
    if (finalizers.length === (job.metadata?.finalizers ?? []).length) return;
    try {
      await this.deps.client.patchJob(job.metadata?.namespace ?? '', job.metadata?.name ?? '', {
        metadata: { finalizers, resourceVersion: job.metadata?.resourceVersion },
      });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }
}
