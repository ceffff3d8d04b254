// One engine run of one EncryptionJob: starts the engine, turns its progress
// into status, metrics and events, and ends with the right conditions.
import {
  addCounters,
  createClients,
  estimateCost,
  runEngine,
  type Budget,
  type Connection,
  type Counters,
  type OpenUpload,
  type Plan,
  type Progress,
  type RunResult,
} from '../engine/index.js';
import { ReportWriter } from '../engine/bookkeeping/report.js';
import { uploadSegment } from '../engine/bookkeeping/report-upload.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EncryptionJob, EncryptionJobStatus, JobProgress } from './api.js';
import { resumePoint, runFingerprint } from './checkpoint.js';
import { completedStatus, setCondition } from './conditions.js';
import type { KubeClient } from './kubeclient.js';
import { planFor, type Credentials } from './plan.js';
import { answeredByFreshRun, FailedKeys } from './retryfailed.js';
import { StatusWriter } from './status.js';
import { clip } from './tenancy.js';

export const COMPONENT = 's3-encryption-operator';

/** A real run's checkpoint when it lists from the beginning: only the open uploads it must still abort survive. */
function freshCheckpoint(openUploads: OpenUpload[], now: string): EncryptionJobStatus['checkpoint'] {
  if (openUploads.length === 0) return null;
  // A merge patch keeps what it does not name: name every field.
  return { startAfter: null, spec: null, progress: null, completedFor: null, updatedAt: now, openUploads };
}

export function addCounted(base: JobProgress, counted: Pick<Progress, 'counters' | 'skippedByReason'>): JobProgress {
  return {
    ...addCounters(base, counted.counters),
    skippedByReason: Object.fromEntries(
      Object.entries(counted.skippedByReason).map(([k, v]) => [k, (base.skippedByReason?.[k] ?? 0) + v]),
    ),
  };
}

/**
 * The counters saved with a checkpoint: the base plus the objects up to it. A dry run's
 * what-would-change counts are kept too, so a resumed dry run adds to them instead of starting at 0.
 */
export function addCommitted(base: JobProgress, committed: Progress['committed'], dryRun: boolean): JobProgress {
  const out = addCounted(base, committed);
  if (dryRun) addPlanned(out, base, committed.planned);
  return out;
}

/** A dry run's what-would-change counts: the base's plus this run's, by method too (the cost estimate needs them). */
function addPlanned(out: JobProgress, base: JobProgress, planned: Progress['planned']): void {
  out.wouldEncrypt = (base.wouldEncrypt ?? 0) + planned.objects;
  out.wouldEncryptBytes = (base.wouldEncryptBytes ?? 0) + planned.bytes;
  const byMethod = { ...(base.wouldEncryptByMethod ?? {}) };
  for (const [method, n] of Object.entries(planned.byMethod)) byMethod[method] = (byMethod[method] ?? 0) + n;
  out.wouldEncryptByMethod = byMethod;
}

/**
 * What a real run would cost, in USD, from a dry run's totals of the whole selection (the base saved
 * with a checkpoint included): a resumed dry run estimates what an uninterrupted one does. Never the
 * sum of the runs' own estimates, which counts a LIST per run and drops the objects under the checkpoint.
 */
export function dryRunCostUSD(plan: Pick<Plan, 'target' | 'multipartPartSize'>, p: JobProgress): number {
  return estimateCost(plan, {
    scanned: p.scanned,
    filtered: p.skippedByReason?.filtered ?? 0,
    planned: { objects: p.wouldEncrypt ?? 0, bytes: p.wouldEncryptBytes ?? 0, byMethod: p.wouldEncryptByMethod ?? {} },
  }).usd;
}

export function add(base: JobProgress, p: Progress, dryRun: boolean): JobProgress {
  const out = addCounted(base, p);
  // The total counts keys after the checkpoint: the objects before it are in base.scanned.
  if (p.total !== undefined) out.total = Math.max(base.scanned + p.total, out.scanned);
  out.summary =
    typeof out.total === 'number' && out.total > 0
      ? `${Math.floor((100 * out.scanned) / out.total)}%`
      : `${out.encrypted + out.alreadyEncrypted}/${out.scanned}`;
  if (dryRun) addPlanned(out, base, p.planned);
  return out;
}

/**
 * A merge patch keeps every field it does not name: the fields of an earlier
 * run (a dry run's estimate, a total) are written as null unless this run sets them.
 */
export function replacing(p: JobProgress): JobProgress {
  return {
    total: null,
    summary: null,
    wouldEncrypt: null,
    wouldEncryptBytes: null,
    wouldEncryptByMethod: null,
    estimatedCostUSD: null,
    skippedByReason: null,
    ...p,
  };
}

/** A run that has nothing to do (maxObjects already reached): Complete without asking S3. */
function nothingToDo(): RunResult {
  return {
    status: 'Complete',
    counters: { ...ZERO },
    skippedByReason: { archived: 0, filtered: 0, vanished: 0, unsupported: 0 },
    planned: { objects: 0, bytes: 0, byMethod: {} },
    requests: {},
    recentFailures: [],
    inFlight: 0,
    committed: {
      counters: { ...ZERO },
      skippedByReason: { archived: 0, filtered: 0, vanished: 0, unsupported: 0 },
      planned: { objects: 0, bytes: 0, byMethod: {} },
    },
    openUploads: [],
  };
}

/** Runs that end on a passing error are started again this many times, like a Job's backoffLimit. */
export const MAX_RETRIES = 6;

/**
 * The retries a retryable end adds to: a run that moved the checkpoint starts
 * the count again, so outages days apart (each a retryable end, issue 20
 * scenario 2) do not add up to a failed job; runs that move nothing still do.
 */
function retriesBefore(result: RunResult, prevRetries: number): number {
  return result.committed.counters.scanned > 0 ? 0 : prevRetries;
}

const ZERO: Counters = { scanned: 0, encrypted: 0, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 0 };

export interface JobRunDeps {
  client: KubeClient;
  metrics: Metrics;
  log: Logger;
  /** Objects in flight across all jobs of this operator. */
  budget?: Budget;
  /** First delay before a run that ended on a passing error is tried again (doubles each time). */
  retryBaseMs?: number;
  /** Engine settings for every run (tests lower the multipart threshold to copy small objects part by part). */
  planTuning?: Pick<Plan, 'multipartThreshold' | 'multipartPartSize'>;
  /** How often one shard object is written (default: from the shards running at once, shardWriteIntervalMs). */
  shardStatusIntervalMs?: number;
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
    // Never rejects: an unexpected error (a temp file that cannot be created, a
    // bug) is logged and the job is looked at again after a backoff.
    this.done = this.run().catch((err: unknown) => {
      deps.log.error({ err: String(err), stack: (err as Error).stack }, 'run failed unexpectedly; will try again');
      this.retryAfterMs = deps.retryBaseMs ?? 5000;
      void this.event('Warning', 'RunError', `the run stopped on an unexpected error: ${String(err)}`);
      return undefined;
    });
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
    const gen = this.generation;
    // The checkpoint is resumed only for the selection it was made for (checkpoint.ts).
    const resume = resumePoint(job);
    const { startAfter, base, fingerprint } = resume;
    const resumed = startAfter !== undefined;
    const now = new Date().toISOString();
    // status.retries belongs to a generation: a spec edit starts the count again.
    const prevRetries = prev.observedGeneration === gen ? (prev.retries ?? 0) : 0;
    // Multipart uploads a crashed run left open: aborted by this run, whatever it resumes, so kept recorded until then.
    // A shard plan of another selection (this run is not sharded): its shards' uploads are aborted here too.
    const staleShards = !dryRun && (prev.shards?.length ?? 0) > 0;
    const abandonedUploads = [
      ...(prev.checkpoint?.openUploads ?? []),
      ...(staleShards ? (prev.shards ?? []).flatMap((s) => s.openUploads ?? []) : []),
    ];

    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: dryRun ? 'Planning' : resumed ? 'Resumed' : 'Encrypting',
      message: `${dryRun ? 'dry run: counting what would change' : resumed ? `resuming after "${startAfter}"` : 'encrypting objects'}${resume.restartReason ? ` (${resume.restartReason})` : ''}`,
      observedGeneration: gen,
    });
    for (const type of ['Complete', 'Failed', 'Suspended'] as const) {
      this.conditions = setCondition(this.conditions, {
        type,
        status: 'False',
        reason: 'Running',
        message: '',
        observedGeneration: gen,
      });
    }
    // The failed keys of the selection, for a retry of them: those up to the checkpoint are the earlier runs'.
    const failedKeys = dryRun ? undefined : FailedKeys.resuming(prev.failedKeys, startAfter);
    const initial: EncryptionJobStatus = {
      observedGeneration: gen,
      ...(prev.observedGeneration !== gen ? { retries: null } : {}),
      phase: 'Running',
      conditions: this.conditions,
      startTime: resumed && prev.startTime ? prev.startTime : now,
      completionTime: null,
      progress: replacing({ ...base }),
      // A dry run keeps the real checkpoint; a real run changes the bucket, so a dry run's count is void.
      ...(dryRun
        ? resumed
          ? {}
          : { dryRunCheckpoint: null }
        : { dryRunCheckpoint: null, ...(resumed ? {} : { checkpoint: freshCheckpoint(abandonedUploads, now) }) }),
      ...(resumed ? {} : { recentFailures: null }),
      ...(!dryRun && !resumed ? { failedKeys: null, ...answeredByFreshRun(job, now) } : {}),
      ...(spec.report ? {} : { report: null, reportParts: null }),
      ...(staleShards ? { shards: null, shardPlan: null } : {}),
      ...(spec.source?.inventory ? {} : { inventory: null }),
      // A sharded dry run's count: void once a real run changes objects, or of another selection.
      ...((prev.dryRunShards?.length ?? 0) > 0 ? { dryRunShards: null, dryRunShardPlan: null } : {}),
    };
    await this.writer.update(initial, true);
    void this.event(
      'Normal',
      resumed ? 'Resumed' : 'Started',
      `${dryRun ? 'dry run' : 'run'} started on s3://${spec.bucket}/${spec.prefix ?? ''} to ${spec.encryption.type}${resumed ? ` after "${startAfter}"` : ''}${resume.restartReason ? ` (${resume.restartReason})` : ''}`,
    );
    deps.metrics.setJobCondition(this.ns, this.name, 'Progressing');

    let lastCounters = { ...ZERO };
    const labels = { namespace: this.ns, name: this.name };
    for (const service of ['s3', 'kms']) deps.metrics.throttles.inc({ ...labels, service }, 0);
    for (const result of ['encrypted', 'already_encrypted', 'skipped', 'failed'])
      deps.metrics.objects.inc({ ...labels, result }, 0);
    // What status.checkpoint says now; the open uploads are written at once (before parts are copied).
    let checkpoint: { startAfter?: string; progress?: JobProgress; openUploads: OpenUpload[] } = {
      openUploads: abandonedUploads,
    };
    // Rejects when the record could not be written: the engine then aborts the upload and fails the object as transient.
    const recordUploads = async (open: OpenUpload[]): Promise<void> => {
      checkpoint = { ...checkpoint, openUploads: open };
      await this.writer.durable({ checkpoint: { ...checkpoint, updatedAt: new Date().toISOString() } });
    };
    const onProgress = (p: Progress): void => {
      const progress = add(base, p, dryRun);
      const c = p.counters;
      const delta = (k: keyof typeof c): number => c[k] - lastCounters[k];
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
        // Messages come from the endpoint: one clipped line each, never a response body.
        recentFailures: p.recentFailures.slice(-20).map((f) => ({ ...f, message: clip(f.message) })),
        ...(p.inventory ? { inventory: p.inventory } : {}),
      };
      // A run that reached the end of its selection says what for (resumePoint, finishedRunChange).
      const completedFor = 'status' in p && p.status === 'Complete' ? runFingerprint(spec) : undefined;
      // Written with the checkpoint they belong to (failures are kept as the checkpoint passes them).
      const failed = failedKeys?.take();
      if (failed) status.failedKeys = failed;
      if (dryRun) {
        if (p.checkpoint !== undefined || completedFor) {
          status.dryRunCheckpoint = {
            ...(p.checkpoint !== undefined
              ? { startAfter: p.checkpoint, spec: fingerprint, progress: addCommitted(base, p.committed, true) }
              : {}),
            updatedAt: new Date().toISOString(),
            ...(completedFor ? { completedFor } : {}),
          };
        }
      } else if (
        p.checkpoint !== undefined ||
        p.openUploads.length > 0 ||
        checkpoint.openUploads.length > 0 ||
        completedFor
      ) {
        // The counters saved with the checkpoint are those of the keys up to it (committed), not every finished object.
        checkpoint = {
          ...(p.checkpoint !== undefined
            ? { startAfter: p.checkpoint, spec: fingerprint, progress: addCounted(base, p.committed) }
            : {}),
          openUploads: p.openUploads,
          ...(completedFor ? { completedFor } : {}),
        };
        status.checkpoint = { ...checkpoint, updatedAt: new Date().toISOString() };
      }
      void this.writer.update(status);
    };

    // maxObjects counts over the checkpoint's life: a resumed run gets what is left.
    const plan = {
      ...planFor(job, this.credentials, startAfter),
      ...deps.planTuning,
      ...(resume.maxObjects !== undefined ? { maxObjects: resume.maxObjects } : {}),
      ...(abandonedUploads.length > 0 ? { abandonedUploads } : {}),
    };
    if (resume.maxObjects !== undefined && resume.maxObjects <= 0) {
      const result = nothingToDo();
      return this.finish(result, plan, base, prevRetries, dryRun, undefined);
    }
    const report = spec.report
      ? new ReportWriter({ destination: spec.report.destination, all: spec.report.all ?? false })
      : undefined;
    let result: RunResult;
    try {
      result = await runEngine(plan, {
        onOutcome: (key, outcome) => {
          report?.add(key, outcome);
          if (outcome.kind === 'failed') failedKeys?.add(key);
        },
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
    } catch (err) {
      report?.dispose();
      throw err;
    }
    onProgress(result);
    // A resumed run adds a part to the report of the runs before it; a run from the start begins a new report.
    const reportLocation = report
      ? await this.writeReport(report, plan.connection, resumed ? (prev.reportParts ?? []) : [])
      : undefined;
    return this.finish(result, plan, base, prevRetries, dryRun, reportLocation);
  }

  /** The final status of a run: conditions, counters, events, metrics; retry or not. */
  private async finish(
    result: RunResult,
    plan: Plan,
    base: JobProgress,
    prevRetries: number,
    dryRun: boolean,
    reportLocation: { manifest: string; parts: string[] } | undefined,
  ): Promise<RunResult> {
    const { deps } = this;
    const gen = this.generation;
    const labels = { namespace: this.ns, name: this.name };
    const progress = add(base, result, dryRun);
    // From the totals, not result.estimate: that one knows only the objects after the checkpoint.
    if (dryRun) progress.estimatedCostUSD = dryRunCostUSD(plan, progress).toFixed(4);
    const end = new Date().toISOString();
    const ended = result.status !== 'Stopped';
    const final: EncryptionJobStatus = {
      // What this run found replaces what an earlier run found, also when it found nothing.
      ...(result.resolvedKmsKeyArn ? { kmsKeyArn: result.resolvedKmsKeyArn } : ended ? { kmsKeyArn: null } : {}),
      ...(result.noncurrentVersions !== undefined
        ? { noncurrentVersions: result.noncurrentVersions }
        : ended
          ? { noncurrentVersions: null }
          : {}),
      ...(reportLocation ? { report: reportLocation.manifest, reportParts: reportLocation.parts } : {}),
    };
    if (result.status === 'Complete') {
      // Done: the total is what was seen, and the summary says how many are at the target.
      progress.total = progress.scanned;
      progress.summary = `${progress.encrypted + progress.alreadyEncrypted}/${progress.scanned}`;
      const done = completedStatus(this.conditions, {
        progress,
        dryRun,
        warnings: result.warnings ?? [],
        failuresAt: 'status.recentFailures',
        generation: gen,
      });
      this.conditions = done.conditions;
      Object.assign(final, { phase: 'Complete', completionTime: end, conditions: this.conditions });
      deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
      deps.metrics.progressRatio.set(labels, 1);
      for (const e of done.events) void this.event(e.type, e.reason, e.message);
    } else if (result.status === 'Failed' && result.retryable && retriesBefore(result, prevRetries) < MAX_RETRIES) {
      // A transient error: keep the checkpoint, say so, and let the reconciler try again later.
      const retries = retriesBefore(result, prevRetries) + 1;
      const msg = `attempt ${retries} of ${MAX_RETRIES} failed, retrying from the checkpoint: ${clip(result.message ?? result.reason ?? '')}`;
      this.conditions = setCondition(this.conditions, {
        type: 'Progressing',
        status: 'True',
        reason: 'Retrying',
        message: msg,
        observedGeneration: gen,
      });
      Object.assign(final, { conditions: this.conditions, retries });
      this.retryAfterMs = Math.min((deps.retryBaseMs ?? 5000) * 2 ** (retries - 1), 300_000);
      void this.event('Warning', 'Retrying', msg);
    } else if (result.status === 'Failed') {
      const msg = clip(result.message ?? 'the run failed');
      this.conditions = setCondition(this.conditions, {
        type: 'Progressing',
        status: 'False',
        reason: result.reason ?? 'Failed',
        message: msg,
        observedGeneration: gen,
      });
      this.conditions = setCondition(this.conditions, {
        type: 'Failed',
        status: 'True',
        reason: result.reason ?? 'Failed',
        message: msg,
        observedGeneration: gen,
      });
      Object.assign(final, { phase: 'Failed', completionTime: end, conditions: this.conditions });
      deps.metrics.setJobCondition(this.ns, this.name, 'Failed');
      void this.event('Warning', result.reason ?? 'Failed', msg);
    }
    // Stopped: keep the checkpoint and counters; the reconciler writes why (suspend, shutdown).
    final.progress = replacing(progress);
    await this.writer.update(final, true);
    await this.writer.settle();
    this.writer.dispose();
    deps.log.info(
      { status: result.status, reason: result.reason, counters: result.counters, writes: this.writer.writes },
      'run ended',
    );
    return result;
  }

  /** Uploads the run's report as the job's next part; a failure to write it is an event, not a failed job. */
  private async writeReport(
    report: ReportWriter,
    connection: Connection,
    previous: string[],
  ): Promise<{ manifest: string; parts: string[] } | undefined> {
    const clients = createClients(connection);
    const destination = this.job.spec.report?.destination ?? '';
    try {
      const file = await report.closeFile();
      return await uploadSegment(clients.s3, {
        destination,
        localPath: file.path,
        contentType: file.contentType,
        previous,
        job: `${this.ns}/${this.name}`,
      });
    } catch (err) {
      void this.event('Warning', 'ReportFailed', clip(`writing the report to ${destination} failed: ${String(err)}`));
      return undefined;
    } finally {
      clients.destroy();
      // The local copy of an s3:// report lives in its own temporary directory: uploaded or not, it goes.
      report.removeTemp();
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
