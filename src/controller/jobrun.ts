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
  type RequestObserver,
  type RunResult,
} from '../engine/index.js';
import { ReportWriter } from '../engine/bookkeeping/report.js';
import { uploadSegment } from '../engine/bookkeeping/report-upload.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Condition, EncryptionJob, EncryptionJobStatus, JobProgress } from './api.js';
import { resumePoint, runFingerprint, type ResumePoint } from './checkpoint.js';
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

/** The report a run wrote: its manifest and parts. */
type ReportLocation = { manifest: string; parts: string[] };

/**
 * What this run found replaces what an earlier run found, also when it found nothing; a stopped
 * run has not looked at everything, so it leaves the earlier findings alone.
 */
function foundStatus(result: RunResult, reportLocation: ReportLocation | undefined): EncryptionJobStatus {
  const ended = result.status !== 'Stopped';
  return {
    ...(result.resolvedKmsKeyArn ? { kmsKeyArn: result.resolvedKmsKeyArn } : ended ? { kmsKeyArn: null } : {}),
    ...(result.noncurrentVersions !== undefined
      ? { noncurrentVersions: result.noncurrentVersions }
      : ended
        ? { noncurrentVersions: null }
        : {}),
    ...(reportLocation ? { report: reportLocation.manifest, reportParts: reportLocation.parts } : {}),
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

/** What an earlier run left behind that this run must clean up. */
interface LeftOpen {
  /** A shard plan of another selection (this run is not sharded): its shards' records go. */
  staleShards: boolean;
  /** Multipart uploads a crashed run left open: aborted by this run, whatever it resumes, so kept recorded until then. */
  abandonedUploads: OpenUpload[];
}

function leftOpen(prev: EncryptionJobStatus, dryRun: boolean): LeftOpen {
  // A dry run opens no upload, so it aborts none: the stale shards' uploads wait for a real run.
  const staleShards = !dryRun && (prev.shards?.length ?? 0) > 0;
  return {
    staleShards,
    abandonedUploads: [
      ...(prev.checkpoint?.openUploads ?? []),
      ...(staleShards ? (prev.shards ?? []).flatMap((s) => s.openUploads ?? []) : []),
    ],
  };
}

/** Why a checkpoint was not resumed, as a suffix for the start's condition and event. */
function restartNote(resume: ResumePoint): string {
  return resume.restartReason ? ` (${resume.restartReason})` : '';
}

/** A starting run's conditions: Progressing says what it does; none of the end conditions holds yet. */
function startingConditions(
  conditions: Condition[] | undefined,
  gen: number,
  dryRun: boolean,
  resume: ResumePoint,
): Condition[] {
  const resumed = resume.startAfter !== undefined;
  let out = setCondition(conditions, {
    type: 'Progressing',
    status: 'True',
    reason: dryRun ? 'Planning' : resumed ? 'Resumed' : 'Encrypting',
    message: `${dryRun ? 'dry run: counting what would change' : resumed ? `resuming after "${resume.startAfter}"` : 'encrypting objects'}${restartNote(resume)}`,
    observedGeneration: gen,
  });
  for (const type of ['Complete', 'Failed', 'Suspended'] as const) {
    out = setCondition(out, { type, status: 'False', reason: 'Running', message: '', observedGeneration: gen });
  }
  return out;
}

/**
 * The status a run starts with, written at once. A merge patch keeps what it does not name: what
 * an earlier run left that this one does not carry on (its failures, report, shards) is named null.
 */
function initialStatus(
  job: EncryptionJob,
  conditions: Condition[],
  resume: ResumePoint,
  left: LeftOpen,
  now: string,
): EncryptionJobStatus {
  const { spec } = job;
  const prev = job.status ?? {};
  const gen = job.metadata?.generation ?? 0;
  const dryRun = spec.dryRun ?? false;
  const resumed = resume.startAfter !== undefined;
  return {
    observedGeneration: gen,
    ...(prev.observedGeneration !== gen ? { retries: null } : {}),
    phase: 'Running',
    conditions,
    startTime: resumed && prev.startTime ? prev.startTime : now,
    completionTime: null,
    progress: replacing({ ...resume.base }),
    // A dry run keeps the real checkpoint; a real run changes the bucket, so a dry run's count is void.
    ...(dryRun
      ? resumed
        ? {}
        : { dryRunCheckpoint: null }
      : {
          dryRunCheckpoint: null,
          ...(resumed ? {} : { checkpoint: freshCheckpoint(left.abandonedUploads, now) }),
        }),
    ...(resumed ? {} : { recentFailures: null }),
    ...(!dryRun && !resumed ? { failedKeys: null, ...answeredByFreshRun(job, now) } : {}),
    ...(spec.report ? {} : { report: null, reportParts: null }),
    ...(left.staleShards ? { shards: null, shardPlan: null } : {}),
    ...(spec.source?.inventory ? {} : { inventory: null }),
    // A sharded dry run's count: void once a real run changes objects, or of another selection.
    ...((prev.dryRunShards?.length ?? 0) > 0 ? { dryRunShards: null, dryRunShardPlan: null } : {}),
  };
}

/** What status.checkpoint (a real run's) says now. */
interface CheckpointRecord {
  startAfter?: string;
  spec?: string;
  progress?: JobProgress;
  openUploads: OpenUpload[];
  completedFor?: string;
}

/**
 * Builds the status patches of one run from the engine's progress. It remembers the checkpoint on
 * record: open uploads are written at once (before parts are copied), and a later patch must know
 * whether uploads are on record that it has to clear.
 */
class ProgressStatus {
  private checkpoint: CheckpointRecord;
  private readonly dryRun: boolean;

  constructor(
    private readonly spec: EncryptionJob['spec'],
    private readonly resume: ResumePoint,
    abandonedUploads: OpenUpload[],
    /** The selection's failed keys (a real run's), for a retry of them. */
    private readonly failedKeys: FailedKeys | undefined,
  ) {
    this.dryRun = spec.dryRun ?? false;
    this.checkpoint = { openUploads: abandonedUploads };
  }

  /** The checkpoint patch that records these open uploads. */
  uploads(open: OpenUpload[]): EncryptionJobStatus {
    this.checkpoint = { ...this.checkpoint, openUploads: open };
    return { checkpoint: { ...this.checkpoint, updatedAt: new Date().toISOString() } };
  }

  patch(p: Progress, progress: JobProgress): EncryptionJobStatus {
    const status: EncryptionJobStatus = {
      progress,
      // Messages come from the endpoint: one clipped line each, never a response body.
      recentFailures: p.recentFailures.slice(-20).map((f) => ({ ...f, message: clip(f.message) })),
      ...(p.inventory ? { inventory: p.inventory } : {}),
    };
    // A run that reached the end of its selection says what for (resumePoint, finishedRunChange).
    const completedFor = 'status' in p && p.status === 'Complete' ? runFingerprint(this.spec) : undefined;
    // Written with the checkpoint they belong to (failures are kept as the checkpoint passes them).
    const failed = this.failedKeys?.take();
    if (failed) status.failedKeys = failed;
    if (this.dryRun) this.dryRunCheckpoint(status, p, completedFor);
    else this.realCheckpoint(status, p, completedFor);
    return status;
  }

  private dryRunCheckpoint(status: EncryptionJobStatus, p: Progress, completedFor: string | undefined): void {
    if (p.checkpoint === undefined && !completedFor) return;
    const { base, fingerprint } = this.resume;
    status.dryRunCheckpoint = {
      ...(p.checkpoint !== undefined
        ? { startAfter: p.checkpoint, spec: fingerprint, progress: addCommitted(base, p.committed, true) }
        : {}),
      updatedAt: new Date().toISOString(),
      ...(completedFor ? { completedFor } : {}),
    };
  }

  private realCheckpoint(status: EncryptionJobStatus, p: Progress, completedFor: string | undefined): void {
    // Uploads on record are cleared by the first patch that has none open.
    const changed =
      p.checkpoint !== undefined || p.openUploads.length > 0 || this.checkpoint.openUploads.length > 0 || completedFor;
    if (!changed) return;
    const { base, fingerprint } = this.resume;
    // The counters saved with the checkpoint are those of the keys up to it (committed), not every finished object.
    this.checkpoint = {
      ...(p.checkpoint !== undefined
        ? { startAfter: p.checkpoint, spec: fingerprint, progress: addCounted(base, p.committed) }
        : {}),
      openUploads: p.openUploads,
      ...(completedFor ? { completedFor } : {}),
    };
    status.checkpoint = { ...this.checkpoint, updatedAt: new Date().toISOString() };
  }
}

/** One run's metrics: object counts as increments of the engine's running totals, requests, throttles. */
class RunMetrics {
  private last = { ...ZERO };
  private readonly labels: { namespace: string; name: string };

  constructor(
    private readonly metrics: Metrics,
    namespace: string,
    name: string,
  ) {
    this.labels = { namespace, name };
  }

  /** Every series exists from the start: a rate over a series that appears late misses its first increase. */
  start(): void {
    for (const service of ['s3', 'kms']) this.metrics.throttles.inc({ ...this.labels, service }, 0);
    for (const result of ['encrypted', 'already_encrypted', 'skipped', 'failed'])
      this.metrics.objects.inc({ ...this.labels, result }, 0);
  }

  progress(p: Progress, progress: JobProgress): void {
    const { metrics, labels } = this;
    const c = p.counters;
    const delta = (k: keyof typeof c): number => c[k] - this.last[k];
    metrics.objects.inc({ ...labels, result: 'encrypted' }, delta('encrypted'));
    metrics.objects.inc({ ...labels, result: 'already_encrypted' }, delta('alreadyEncrypted'));
    metrics.objects.inc({ ...labels, result: 'skipped' }, delta('skipped'));
    metrics.objects.inc({ ...labels, result: 'failed' }, delta('failed'));
    metrics.bytes.inc(labels, delta('bytesEncrypted'));
    this.last = { ...c };
    metrics.inFlight.set(labels, p.inFlight);
    // Finished objects over all objects, once the count beside the run has a total.
    if (progress.total) metrics.progressRatio.set(labels, progress.scanned / progress.total);
  }

  readonly request: RequestObserver = (e) => {
    this.metrics.requestDuration.observe(
      { ...this.labels, service: e.service, operation: e.operation, outcome: e.error ? 'error' : 'ok' },
      e.seconds,
    );
    if (e.throttled) this.metrics.throttles.inc({ ...this.labels, service: e.service });
  };

  done(): void {
    this.metrics.progressRatio.set(this.labels, 1);
  }
}

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

/** What a run carries from its start to its end. */
interface RunContext {
  plan: Plan;
  base: JobProgress;
  prevRetries: number;
  dryRun: boolean;
  resumed: boolean;
}

export class JobRun {
  readonly generation: number;
  private readonly abort = new AbortController();
  private readonly writer: StatusWriter;
  readonly done: Promise<RunResult | undefined>;
  private conditions;
  private readonly ns: string;
  private readonly name: string;
  private readonly metrics: RunMetrics;
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
    this.metrics = new RunMetrics(deps.metrics, this.ns, this.name);
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
    const { job } = this;
    const dryRun = job.spec.dryRun ?? false;
    const prev = job.status ?? {};
    // The checkpoint is resumed only for the selection it was made for (checkpoint.ts).
    const resume = resumePoint(job);
    // status.retries belongs to a generation: a spec edit starts the count again.
    const prevRetries = prev.observedGeneration === this.generation ? (prev.retries ?? 0) : 0;
    const left = leftOpen(prev, dryRun);
    await this.start(resume, left);
    // The failed keys of the selection, for a retry of them: those up to the checkpoint are the earlier runs'.
    const failedKeys = dryRun ? undefined : FailedKeys.resuming(prev.failedKeys, resume.startAfter);
    const progress = new ProgressStatus(job.spec, resume, left.abandonedUploads, failedKeys);
    // maxObjects counts over the checkpoint's life: a resumed run gets what is left.
    const plan = {
      ...planFor(job, this.credentials, resume.startAfter),
      ...this.deps.planTuning,
      ...(resume.maxObjects !== undefined ? { maxObjects: resume.maxObjects } : {}),
      ...(left.abandonedUploads.length > 0 ? { abandonedUploads: left.abandonedUploads } : {}),
    };
    const ctx: RunContext = { plan, base: resume.base, prevRetries, dryRun, resumed: resume.startAfter !== undefined };
    if (resume.maxObjects !== undefined && resume.maxObjects <= 0) return this.finish(nothingToDo(), ctx, undefined);
    const report = job.spec.report
      ? new ReportWriter({ destination: job.spec.report.destination, all: job.spec.report.all ?? false })
      : undefined;
    const result = await this.execute(ctx, progress, failedKeys, report);
    // A resumed run adds a part to the report of the runs before it; a run from the start begins a new report.
    const reportLocation = report
      ? await this.writeReport(report, plan.connection, ctx.resumed ? (prev.reportParts ?? []) : [])
      : undefined;
    return this.finish(result, ctx, reportLocation);
  }

  /** Says the run has started: its first status (written at once), an event and the condition metric. */
  private async start(resume: ResumePoint, left: LeftOpen): Promise<void> {
    const { spec } = this.job;
    const dryRun = spec.dryRun ?? false;
    const resumed = resume.startAfter !== undefined;
    const now = new Date().toISOString();
    this.conditions = startingConditions(this.conditions, this.generation, dryRun, resume);
    await this.writer.update(initialStatus(this.job, this.conditions, resume, left, now), true);
    void this.event(
      'Normal',
      resumed ? 'Resumed' : 'Started',
      `${dryRun ? 'dry run' : 'run'} started on s3://${spec.bucket}/${spec.prefix ?? ''} to ${spec.encryption.type}${resumed ? ` after "${resume.startAfter}"` : ''}${restartNote(resume)}`,
    );
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Progressing');
    this.metrics.start();
  }

  /** The engine's run, its progress into status and metrics, its outcomes into the report and failed keys. */
  private async execute(
    { plan, base, dryRun }: RunContext,
    status: ProgressStatus,
    failedKeys: FailedKeys | undefined,
    report: ReportWriter | undefined,
  ): Promise<RunResult> {
    const onProgress = (p: Progress): void => {
      const progress = add(base, p, dryRun);
      this.metrics.progress(p, progress);
      void this.writer.update(status.patch(p, progress));
    };
    // Rejects when the record could not be written: the engine then aborts the upload and fails the object as transient.
    const recordUploads = (open: OpenUpload[]): Promise<void> => this.writer.durable(status.uploads(open));
    let result: RunResult;
    try {
      result = await runEngine(plan, {
        onOutcome: (key, outcome) => {
          report?.add(key, outcome);
          if (outcome.kind === 'failed') failedKeys?.add(key);
        },
        signal: this.abort.signal,
        ...(this.deps.budget ? { budget: this.deps.budget } : {}),
        onProgress,
        ...(!dryRun ? { recordUploads } : {}),
        observer: this.metrics.request,
      });
    } catch (err) {
      report?.dispose();
      throw err;
    }
    onProgress(result);
    return result;
  }

  /** The final status of a run: conditions, counters, events, metrics; retry or not. */
  private async finish(
    result: RunResult,
    { plan, base, prevRetries, dryRun }: RunContext,
    reportLocation: ReportLocation | undefined,
  ): Promise<RunResult> {
    const progress = add(base, result, dryRun);
    // From the totals, not result.estimate: that one knows only the objects after the checkpoint.
    if (dryRun) progress.estimatedCostUSD = dryRunCostUSD(plan, progress).toFixed(4);
    const end = new Date().toISOString();
    const final = foundStatus(result, reportLocation);
    if (result.status === 'Complete') Object.assign(final, this.completed(result, progress, dryRun, end));
    else if (result.status === 'Failed' && result.retryable && retriesBefore(result, prevRetries) < MAX_RETRIES)
      Object.assign(final, this.retrying(result, prevRetries));
    else if (result.status === 'Failed') Object.assign(final, this.failed(result, end));
    // Stopped: keep the checkpoint and counters; the reconciler writes why (suspend, shutdown).
    final.progress = replacing(progress);
    await this.writer.update(final, true);
    await this.writer.settle();
    this.writer.dispose();
    this.deps.log.info(
      { status: result.status, reason: result.reason, counters: result.counters, writes: this.writer.writes },
      'run ended',
    );
    return result;
  }

  /** Done: the total is what was seen, and the summary says how many are at the target. */
  private completed(result: RunResult, progress: JobProgress, dryRun: boolean, end: string): EncryptionJobStatus {
    progress.total = progress.scanned;
    progress.summary = `${progress.encrypted + progress.alreadyEncrypted}/${progress.scanned}`;
    const done = completedStatus(this.conditions, {
      progress,
      dryRun,
      warnings: result.warnings ?? [],
      failuresAt: 'status.recentFailures',
      generation: this.generation,
    });
    this.conditions = done.conditions;
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
    this.metrics.done();
    for (const e of done.events) void this.event(e.type, e.reason, e.message);
    return { phase: 'Complete', completionTime: end, conditions: this.conditions };
  }

  /** A transient error: keep the checkpoint, say so, and let the reconciler try again later. */
  private retrying(result: RunResult, prevRetries: number): EncryptionJobStatus {
    const retries = retriesBefore(result, prevRetries) + 1;
    const msg = `attempt ${retries} of ${MAX_RETRIES} failed, retrying from the checkpoint: ${clip(result.message ?? result.reason ?? '')}`;
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: 'Retrying',
      message: msg,
      observedGeneration: this.generation,
    });
    this.retryAfterMs = Math.min((this.deps.retryBaseMs ?? 5000) * 2 ** (retries - 1), 300_000);
    void this.event('Warning', 'Retrying', msg);
    return { conditions: this.conditions, retries };
  }

  private failed(result: RunResult, end: string): EncryptionJobStatus {
    const msg = clip(result.message ?? 'the run failed');
    const reason = result.reason ?? 'Failed';
    for (const type of ['Progressing', 'Failed'] as const) {
      this.conditions = setCondition(this.conditions, {
        type,
        status: type === 'Failed' ? 'True' : 'False',
        reason,
        message: msg,
        observedGeneration: this.generation,
      });
    }
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Failed');
    void this.event('Warning', reason, msg);
    return { phase: 'Failed', completionTime: end, conditions: this.conditions };
  }

  /** Uploads the run's report as the job's next part; a failure to write it is an event, not a failed job. */
  private async writeReport(
    report: ReportWriter,
    connection: Connection,
    previous: string[],
  ): Promise<ReportLocation | undefined> {
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
