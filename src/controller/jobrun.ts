// One engine run of one EncryptionJob: starts the engine, turns its progress
// into status, metrics and events, and ends with the right conditions.
import { addCounters, createClients, runEngine, type Budget, type Connection, type OpenUpload, type Progress, type RunResult } from '../engine/index.js';
import { ReportWriter } from '../engine/report.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EncryptionJob, EncryptionJobStatus, JobProgress } from './api.js';
import { setCondition } from './conditions.js';
import type { KubeClient } from './kubeclient.js';
import { planFor, type Credentials } from './plan.js';
import { StatusWriter } from './status.js';

export const COMPONENT = 's3-encryption-operator';

function addCounted(base: JobProgress, counted: Pick<Progress, 'counters' | 'skippedByReason'>): JobProgress {
  return {
    ...addCounters(base, counted.counters),
    skippedByReason: Object.fromEntries(
      Object.entries(counted.skippedByReason).map(([k, v]) => [k, (base.skippedByReason?.[k] ?? 0) + v]),
    ),
  };
}

function add(base: JobProgress, p: Progress, dryRun: boolean): JobProgress {
  const out = addCounted(base, p);
  // The total counts keys after the checkpoint: the objects before it are in base.scanned.
  if (p.total !== undefined) out.total = Math.max(base.scanned + p.total, out.scanned);
  out.summary =
    out.total !== undefined && out.total > 0
      ? `${Math.floor((100 * out.scanned) / out.total)}%`
      : `${out.encrypted + out.alreadyEncrypted}/${out.scanned}`;
  if (dryRun) {
    out.wouldEncrypt = p.planned.objects;
    out.wouldEncryptBytes = p.planned.bytes;
  }
  return out;
}

/** Runs that end on a passing error are started again this many times, like a Job's backoffLimit. */
export const MAX_RETRIES = 6;

const ZERO: JobProgress = { scanned: 0, encrypted: 0, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 0 };

export interface JobRunDeps {
  client: KubeClient;
  metrics: Metrics;
  log: Logger;
  /** Objects in flight across all jobs of this operator. */
  budget?: Budget;
  /** First delay before a run that ended on a passing error is tried again (doubles each time). */
  retryBaseMs?: number;
}

export class JobRun {
  readonly generation: number;
  private readonly abort = new AbortController();
  private readonly writer: StatusWriter;
  readonly done: Promise<RunResult | undefined>;
  private conditions;
  private readonly ns: string;
  private readonly name: string;
  /** Set when the run ended on a passing error: look at the job again after this long. */
  retryAfterMs: number | undefined;

  constructor(
    private readonly job: EncryptionJob,
    private readonly credentials: Credentials | undefined,
    private readonly deps: JobRunDeps,
  ) {
    this.generation = job.metadata?.generation ?? 0;
    this.ns = job.metadata?.namespace ?? '';
    this.name = job.metadata?.name ?? '';
    this.conditions = job.status?.conditions;
    this.writer = new StatusWriter(deps.client, this.ns, this.name, deps.log);
    this.done = this.run();
  }

  /** Stop taking new objects; in-flight ones finish and the checkpoint is saved. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  private async run(): Promise<RunResult | undefined> {
    const { job, deps } = this;
    const spec = job.spec;
    const dryRun = spec.dryRun ?? false;
    const prev = job.status ?? {};
    // Resume only a real run's checkpoint: a dry run's progress is no base for one.
    const startAfter = !dryRun ? (prev.checkpoint?.startAfter ?? undefined) : undefined;
    // The counters saved with the checkpoint (older statuses: progress, which then was the same thing).
    const base = startAfter ? (prev.checkpoint?.progress ?? prev.progress ?? ZERO) : ZERO;
    const resumed = startAfter !== undefined;
    const gen = this.generation;
    const now = new Date().toISOString();

    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: dryRun ? 'Planning' : resumed ? 'Resumed' : 'Encrypting',
      message: dryRun ? 'dry run: counting what would change' : resumed ? `resuming after "${startAfter}"` : 'encrypting objects',
      observedGeneration: gen,
    });
    for (const type of ['Complete', 'Failed', 'Suspended'] as const) {
      this.conditions = setCondition(this.conditions, { type, status: 'False', reason: 'Running', message: '', observedGeneration: gen });
    }
    const initial: EncryptionJobStatus = {
      observedGeneration: gen,
      phase: 'Running',
      conditions: this.conditions,
      startTime: resumed && prev.startTime ? prev.startTime : now,
      completionTime: null,
      progress: base,
      ...(dryRun ? { checkpoint: null } : {}),
    };
    await this.writer.update(initial, true);
    void this.event('Normal', resumed ? 'Resumed' : 'Started', `${dryRun ? 'dry run' : 'run'} started on s3://${spec.bucket}/${spec.prefix ?? ''} to ${spec.encryption.type}${resumed ? ` after "${startAfter}"` : ''}`);
    deps.metrics.setJobCondition(this.ns, this.name, 'Progressing');

    let lastCounters = { ...ZERO };
    const labels = { namespace: this.ns, name: this.name };
    for (const service of ['s3', 'kms']) deps.metrics.throttles.inc({ ...labels, service }, 0);
    for (const result of ['encrypted', 'already_encrypted', 'skipped', 'failed']) deps.metrics.objects.inc({ ...labels, result }, 0);
    // What status.checkpoint says now; the open uploads are written at once (before parts are copied).
    const abandonedUploads = prev.checkpoint?.openUploads ?? [];
    let checkpoint: { startAfter?: string; progress?: JobProgress; openUploads: OpenUpload[] } = { openUploads: abandonedUploads };
    const recordUploads = async (open: OpenUpload[]): Promise<void> => {
      checkpoint = { ...checkpoint, openUploads: open };
      await this.writer.update({ checkpoint: { ...checkpoint, updatedAt: new Date().toISOString() } }, true);
    };
    const onProgress = (p: Progress): void => {
      const progress = add(base, p, dryRun);
      const c = p.counters;
      const delta = (k: keyof typeof c): number => c[k] - (lastCounters[k as keyof JobProgress] as number);
      deps.metrics.objects.inc({ ...labels, result: 'encrypted' }, delta('encrypted'));
      deps.metrics.objects.inc({ ...labels, result: 'already_encrypted' }, delta('alreadyEncrypted'));
      deps.metrics.objects.inc({ ...labels, result: 'skipped' }, delta('skipped'));
      deps.metrics.objects.inc({ ...labels, result: 'failed' }, delta('failed'));
      deps.metrics.bytes.inc(labels, delta('bytesEncrypted'));
      lastCounters = { ...c };
      deps.metrics.inFlight.set(labels, p.inFlight);
      // Finished objects over all objects, once the count beside the run has a total.
      if (progress.total) deps.metrics.progressRatio.set(labels, progress.scanned / progress.total);
      const status: EncryptionJobStatus = {
        progress,
        recentFailures: p.recentFailures.slice(-20),
      };
      if (!dryRun && (p.checkpoint !== undefined || p.openUploads.length > 0 || checkpoint.openUploads.length > 0)) {
        checkpoint = {
          ...(p.checkpoint !== undefined ? { startAfter: p.checkpoint, progress: addCounted(base, p.committed) } : {}),
          openUploads: p.openUploads,
        };
        status.checkpoint = { ...checkpoint, updatedAt: new Date().toISOString() };
      }
      void this.writer.update(status);
    };

    const plan = { ...planFor(job, this.credentials, startAfter), ...(abandonedUploads.length > 0 ? { abandonedUploads } : {}) };
    const report = spec.report ? new ReportWriter({ destination: spec.report.destination, all: spec.report.all ?? false }) : undefined;
    const result = await runEngine(plan, {
      ...(report ? { onOutcome: (key, outcome) => report.add(key, outcome) } : {}),
      signal: this.abort.signal,
      ...(deps.budget ? { budget: deps.budget } : {}),
      onProgress,
      ...(!dryRun ? { recordUploads } : {}),
      observer: (e) => {
        deps.metrics.requestDuration.observe(
          { ...labels, service: e.service, operation: e.operation, outcome: e.error ? 'error' : 'ok' },
          e.seconds,
        );
        if (e.throttled) deps.metrics.throttles.inc({ ...labels, service: e.service });
      },
    });
    onProgress(result);
    const reportLocation = report ? await this.writeReport(report, plan.connection) : undefined;
    const progress = add(base, result, dryRun);
    if (dryRun && result.estimate) progress.estimatedCostUSD = result.estimate.usd.toFixed(4);
    const end = new Date().toISOString();
    const final: EncryptionJobStatus = {
      progress,
      ...(result.resolvedKmsKeyArn ? { kmsKeyArn: result.resolvedKmsKeyArn } : {}),
      ...(result.noncurrentVersions !== undefined ? { noncurrentVersions: result.noncurrentVersions } : {}),
      ...(reportLocation ? { report: reportLocation } : {}),
    };
    if (result.status === 'Complete') {
      // Done: the total is what was seen, and the summary says how many are at the target.
      progress.total = progress.scanned;
      progress.summary = `${progress.encrypted + progress.alreadyEncrypted}/${progress.scanned}`;
      const failed = progress.failed;
      let msg = dryRun
        ? `dry run: ${progress.wouldEncrypt ?? 0} of ${progress.scanned} objects would change (${progress.wouldEncryptBytes ?? 0} bytes, about $${progress.estimatedCostUSD ?? '0'})`
        : `${progress.encrypted} encrypted, ${progress.alreadyEncrypted} already encrypted, ${progress.skipped} skipped, ${failed} failed of ${progress.scanned} objects`;
      // Bookkeeping that failed after the work (e.g. counting noncurrent versions) is said, and does not undo Complete.
      const warnings = result.warnings ?? [];
      for (const w of warnings) void this.event('Warning', 'CompletedWithWarning', w);
      if (warnings.length > 0) msg += `; warning: ${warnings.join('; ')}`;
      this.conditions = setCondition(this.conditions, { type: 'Progressing', status: 'False', reason: 'Completed', message: msg, observedGeneration: gen });
      this.conditions = setCondition(this.conditions, {
        type: 'Complete',
        status: 'True',
        reason: dryRun ? 'DryRunCompleted' : failed > 0 ? 'CompletedWithFailures' : 'Completed',
        message: failed > 0 ? `${msg}; see status.recentFailures` : msg,
        observedGeneration: gen,
      });
      Object.assign(final, { phase: 'Complete', completionTime: end, conditions: this.conditions });
      deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
      deps.metrics.progressRatio.set(labels, 1);
      void this.event(failed > 0 ? 'Warning' : 'Normal', 'Completed', msg);
    } else if (result.status === 'Failed' && result.retryable && (prev.retries ?? 0) < MAX_RETRIES) {
      // A passing error: keep the checkpoint, say so, and let the reconciler try again later.
      const retries = (prev.retries ?? 0) + 1;
      const msg = `attempt ${retries} of ${MAX_RETRIES} failed, retrying from the checkpoint: ${result.message ?? result.reason ?? ''}`;
      this.conditions = setCondition(this.conditions, { type: 'Progressing', status: 'True', reason: 'Retrying', message: msg, observedGeneration: gen });
      Object.assign(final, { conditions: this.conditions, retries });
      this.retryAfterMs = Math.min((deps.retryBaseMs ?? 5000) * 2 ** (retries - 1), 300_000);
      void this.event('Warning', 'Retrying', msg);
    } else if (result.status === 'Failed') {
      const msg = result.message ?? 'the run failed';
      this.conditions = setCondition(this.conditions, { type: 'Progressing', status: 'False', reason: result.reason ?? 'Failed', message: msg, observedGeneration: gen });
      this.conditions = setCondition(this.conditions, { type: 'Failed', status: 'True', reason: result.reason ?? 'Failed', message: msg, observedGeneration: gen });
      Object.assign(final, { phase: 'Failed', completionTime: end, conditions: this.conditions });
      deps.metrics.setJobCondition(this.ns, this.name, 'Failed');
      void this.event('Warning', result.reason ?? 'Failed', msg);
    }
    // Stopped: keep the checkpoint and counters; the reconciler writes why (suspend, shutdown).
    await this.writer.update(final, true);
    await this.writer.settle();
    this.writer.dispose();
    deps.log.info({ status: result.status, reason: result.reason, counters: result.counters, writes: this.writer.writes }, 'run ended');
    return result;
  }

  /** Uploads the run's report; a failure to write it is an event, not a failed job. */
  private async writeReport(report: ReportWriter, connection: Connection): Promise<string | undefined> {
    const clients = createClients(connection);
    try {
      return await report.close(clients.s3);
    } catch (err) {
      void this.event('Warning', 'ReportFailed', `writing the report to ${this.job.spec.report?.destination ?? ''} failed: ${String(err)}`);
      return undefined;
    } finally {
      clients.destroy();
    }
  }

  get statusWrites(): number {
    return this.writer.writes;
  }

  private async event(type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.deps.client.event(this.job, { type, reason, message }, COMPONENT);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'could not record event');
    }
  }
}
