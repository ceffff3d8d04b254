// A retry of a Complete job's failed keys (s3encryption.dev/retry-failed): one
// engine run over exactly the keys kept in status.failedKeys (Plan.keys), each
// HEADed and brought to the target like a listed object. The job stays
// Complete meanwhile (its last verdict stands until the retry replaces it);
// Progressing says a retry runs. As the keys pass the run's checkpoint, they
// move out of status.failedKeys and their counts from `failed` to what the retry
// found, in the same status write, so a retry cut short (a restart) leaves the
// job consistent and the next one looks only at the keys still failed.
import { runEngine, type Plan, type Progress, type RunResult } from '../engine/index.js';
import type { EncryptionJob, EncryptionJobStatus, JobProgress } from './api.js';
import { checkpointCounters, ZERO_PROGRESS } from './checkpoint.js';
import { completedStatus, setCondition } from './conditions.js';
import { COMPONENT, type JobRunDeps } from './jobrun.js';
import { planFor, type Credentials } from './plan.js';
import { afterRetry, RETRY_FAILED_ANNOTATION, retryMessage } from './retryfailed.js';
import { StatusWriter } from './status.js';
import { clip } from './tenancy.js';

export class RetryRun {
  readonly generation: number;
  readonly done: Promise<void>;
  retryAfterMs: number | undefined;
  private readonly abort = new AbortController();
  private readonly writer: StatusWriter;
  private readonly ns: string;
  private readonly name: string;
  /** The retried keys whose outcome passed the checkpoint and is not a failure. */
  private readonly resolved = new Set<string>();

  constructor(
    private readonly job: EncryptionJob,
    private readonly credentials: Credentials | undefined,
    private readonly ask: { value: string; keys: string[] },
    private readonly deps: JobRunDeps,
  ) {
    this.generation = job.metadata?.generation ?? 0;
    this.ns = job.metadata?.namespace ?? '';
    this.name = job.metadata?.name ?? '';
    this.writer = new StatusWriter(deps.client, this.ns, this.name, deps.log);
    this.done = this.run()
      .catch((err: unknown) => {
        deps.log.error({ err: String(err), stack: (err as Error).stack }, 'retry of failed keys failed unexpectedly');
        this.retryAfterMs = deps.retryBaseMs ?? 5000;
        void this.event(
          'Warning',
          'RunError',
          `the retry of failed keys stopped on an unexpected error: ${String(err)}`,
        );
      })
      .finally(() => this.writer.dispose());
  }

  /** Stop: the keys looked at so far are recorded; the request stays open and is taken up again later. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  get statusWrites(): number {
    return this.writer.writes;
  }

  private async run(): Promise<void> {
    const { job, ask, deps } = this;
    const prev = job.status ?? {};
    const n = ask.keys.length;
    const started = `retrying the ${n} failed keys of the last run (${RETRY_FAILED_ANNOTATION}: ${ask.value})`;
    const conditions = setCondition(prev.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: 'RetryingFailures',
      message: started,
      observedGeneration: this.generation,
    });
    await this.writer.update({ conditions }, true);
    void this.event('Normal', 'RetryingFailures', started);
    deps.log.info({ keys: n, value: ask.value }, 'retrying the failed keys');

    const abandoned = prev.checkpoint?.openUploads ?? [];
    const plan: Plan = {
      ...planFor(job, this.credentials, undefined),
      ...deps.planTuning,
      keys: ask.keys,
      ...(abandoned.length > 0 ? { abandonedUploads: abandoned } : {}),
    };
    // The keys were counted against spec.maxObjects when they first failed, and each is HEADed
    // (an inventory's row of them is not read again).
    delete plan.maxObjects;
    delete plan.inventoryManifest;
    const labels = { namespace: this.ns, name: this.name };
    const result = await runEngine(plan, {
      signal: this.abort.signal,
      ...(deps.budget ? { budget: deps.budget } : {}),
      onOutcome: (key, outcome) => {
        if (outcome.kind !== 'failed') this.resolved.add(key);
      },
      onProgress: (p) => void this.writer.update(this.counted(p)),
      // Rejects when the record could not be written: the engine then aborts the upload and fails the object.
      recordUploads: (open) =>
        this.writer.durable({ checkpoint: { openUploads: open, updatedAt: new Date().toISOString() } }),
      observer: (e) => {
        deps.metrics.requestDuration.observe(
          { ...labels, service: e.service, operation: e.operation, outcome: e.error ? 'error' : 'ok' },
          e.seconds,
        );
        if (e.throttled) deps.metrics.throttles.inc({ ...labels, service: e.service });
      },
    });
    await this.finish(result, conditions);
  }

  /** The job's counters, its checkpoint's and the keys still failed, after the keys the retry finished so far. */
  private counted(p: Progress): EncryptionJobStatus {
    const prev = this.job.status ?? {};
    const stillFailed = this.ask.keys.filter((k) => !this.resolved.has(k));
    const checkpointProgress = prev.checkpoint?.progress;
    return {
      progress: afterRetry(prev.progress ?? ZERO_PROGRESS, p.committed),
      ...(checkpointProgress
        ? { checkpoint: { progress: checkpointCounters(afterRetry(checkpointProgress, p.committed)) } }
        : {}),
      failedKeys: { keys: stillFailed },
    };
  }

  private async finish(result: RunResult, conditions: EncryptionJobStatus['conditions']): Promise<void> {
    const { ask, deps } = this;
    const gen = this.generation;
    const status = this.counted(result);
    if (result.status === 'Stopped') {
      // Not handled: the next look at the job retries the keys still failed.
      await this.writer.update(status, true);
      await this.writer.settle(20_000);
      return;
    }
    const summary = retryMessage(ask.keys.length, { ...result, counters: result.committed.counters });
    const ended = result.status === 'Complete';
    const message = ended
      ? summary
      : `${summary}; the retry ended early: ${result.reason ?? 'Failed'}: ${clip(result.message ?? '')}; set a new value to try again`;
    const progress = status.progress as JobProgress;
    const done = completedStatus(conditions, {
      progress,
      dryRun: false,
      note: `(${message})`,
      warnings: result.warnings ?? [],
      failuresAt: 'status.recentFailures',
      generation: gen,
    });
    const now = new Date().toISOString();
    Object.assign(status, {
      conditions: done.conditions,
      phase: 'Complete',
      completionTime: now,
      recentFailures:
        result.recentFailures.length > 0
          ? result.recentFailures.slice(-20).map((f) => ({ ...f, message: clip(f.message) }))
          : progress.failed > 0
            ? undefined
            : null,
      retryFailed: { handled: ask.value, message, time: now },
      ...(result.noncurrentVersions !== undefined ? { noncurrentVersions: result.noncurrentVersions } : {}),
    });
    if (status.recentFailures === undefined) delete status.recentFailures;
    await this.writer.update(status, true);
    await this.writer.settle();
    for (const e of done.events) void this.event(e.type, e.reason, e.message);
    void this.event(ended && progress.failed === 0 ? 'Normal' : 'Warning', 'RetriedFailures', message);
    const c = result.counters;
    const labels = { namespace: this.ns, name: this.name };
    deps.metrics.objects.inc({ ...labels, result: 'encrypted' }, c.encrypted);
    deps.metrics.objects.inc({ ...labels, result: 'already_encrypted' }, c.alreadyEncrypted);
    deps.metrics.objects.inc({ ...labels, result: 'skipped' }, c.skipped);
    deps.metrics.objects.inc({ ...labels, result: 'failed' }, c.failed);
    deps.metrics.bytes.inc(labels, c.bytesEncrypted);
    deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
    deps.log.info({ status: result.status, counters: result.counters, message }, 'retry of failed keys ended');
  }

  private async event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.deps.client.event(this.job, { type, reason, message }, COMPONENT);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'could not record event');
    }
  }
}
