// A sharded job run in the operator's process (spec.parallelism): the key space
// under the prefix is cut once per selection into shards `(startAfter, endAt]`,
// kept in status.shards so the plan never changes under a running job, and up
// to `parallelism` shards run at once, each an engine run with its own
// watermark checkpoint and counters. One status writer for the whole job: the
// shards' progress is summed into status.progress and written coalesced.
import {
  JobError,
  validatePlan,
  type Counters,
  type ObjectFailure,
  type Plan,
  type RunResult,
} from '../engine/index.js';
import type { Condition, EncryptionJob, EncryptionJobStatus, JobProgress, ShardCounts, ShardStatus } from './api.js';
import { runFingerprint, ZERO_PROGRESS } from './checkpoint.js';
import { completedStatus, setCondition } from './conditions.js';
import {
  planFitsSelection,
  planJobShards,
  resumeShards,
  type PlannedShards,
  type PlanningFailure,
} from './shardplan.js';
import { addCounted, COMPONENT, dryRunCostUSD, MAX_RETRIES, replacing, type JobRunDeps } from './jobrun.js';
import { planFor, type Credentials } from './plan.js';
import { answeredByFreshRun } from './retryfailed.js';
import { StatusWriter } from './status.js';
import { clip } from './tenancy.js';
import { ShardRunner, type ShardRunHooks } from './shardwork.js';
import { ShardStore, shardWriteIntervalMs } from './shardstore.js';
import { JobAllowance, reachedMaxObjects, ShardReports } from './shardjob.js';
import type { ReportWriter } from '../engine/bookkeeping/report.js';

/**
 * Whether a job runs as shards: a run with parallelism above 1, or one whose
 * status already holds a shard plan for its selection (lowering parallelism to
 * 1 mid-job keeps the plan and runs one shard at a time). A dry run has shards
 * of its own (dryRunShards) and never looks at or touches the real ones.
 */
export function usesShards(job: EncryptionJob): boolean {
  const spec = job.spec;
  if ((spec.parallelism ?? 1) > 1 || (spec.shards ?? 1) > 1) return true;
  const status = job.status ?? {};
  const { shards, plan } = ownShards(status, spec.dryRun ?? false);
  return (shards?.length ?? 0) > 0 && planFitsSelection(plan, job);
}

/** The shards and plan a run works with: a dry run's own, or the real runs'. */
function ownShards(
  status: EncryptionJobStatus,
  dryRun: boolean,
): { shards: ShardStatus[] | null | undefined; plan: EncryptionJobStatus['shardPlan'] } {
  return dryRun
    ? { shards: status.dryRunShards, plan: status.dryRunShardPlan }
    : { shards: status.shards, plan: status.shardPlan };
}

/** Sums the shards' counters; the total only once every shard has one. */
export function sumProgress(shards: ShardStatus[]): JobProgress {
  let out: JobProgress = { ...ZERO_PROGRESS, skippedByReason: {} };
  let total: number | undefined = 0;
  let would: { objects: number; bytes?: number } | undefined;
  let byMethod: Record<string, number> | undefined;
  for (const s of shards) {
    const p = s.progress ?? ZERO_PROGRESS;
    out = {
      ...addCounted(out, {
        counters: p,
        skippedByReason: { archived: 0, filtered: 0, vanished: 0, unsupported: 0, ...(p.skippedByReason ?? {}) },
      }),
    };
    total = typeof p.total === 'number' && total !== undefined ? total + p.total : undefined;
    // A dry run's shards say what a real run would change.
    if (typeof p.wouldEncrypt === 'number') would = { ...would, objects: (would?.objects ?? 0) + p.wouldEncrypt };
    if (typeof p.wouldEncryptBytes === 'number')
      would = { objects: would?.objects ?? 0, bytes: (would?.bytes ?? 0) + p.wouldEncryptBytes };
    if (p.wouldEncryptByMethod) {
      byMethod ??= {};
      for (const [method, n] of Object.entries(p.wouldEncryptByMethod)) byMethod[method] = (byMethod[method] ?? 0) + n;
    }
  }
  if (would) {
    out.wouldEncrypt = would.objects;
    out.wouldEncryptBytes = would.bytes ?? 0;
    out.wouldEncryptByMethod = byMethod ?? {};
  }
  if (total !== undefined) out.total = Math.max(total, out.scanned);
  out.summary =
    typeof out.total === 'number' && out.total > 0
      ? `${Math.floor((100 * out.scanned) / out.total)}%`
      : `${out.encrypted + out.alreadyEncrypted}/${out.scanned}`;
  return out;
}

export function describeShard(s: ShardStatus): string {
  return `shard ${s.index} ("${s.startAfter}", ${s.endAt !== undefined ? `"${s.endAt}"` : 'end'}]`;
}

interface Ended {
  shard: ShardStatus;
  result: RunResult;
}

/** The shards a run works on and what it says about them when it starts. */
interface Prepared {
  plan: NonNullable<EncryptionJobStatus['shardPlan']>;
  resumed: boolean;
  restartReason?: string;
  /** The inventory a new plan read (null: none), or undefined when the plan was resumed. */
  inventory?: EncryptionJobStatus['inventory'];
}

/** How many key ranges the job's plan cuts: spec.shards, else one per shard worked on at once. */
export function shardCount(spec: EncryptionJob['spec']): number {
  return Math.max(1, spec.shards ?? spec.parallelism ?? 1);
}

/** The shards by phase, for the job's status. */
export function countShards(shards: readonly ShardStatus[]): ShardCounts {
  const counts: ShardCounts = { total: shards.length, pending: 0, running: 0, complete: 0, failed: 0 };
  for (const s of shards) {
    if (s.phase === 'Running') counts.running++;
    else if (s.phase === 'Complete') counts.complete++;
    else if (s.phase === 'Failed') counts.failed++;
    else counts.pending++;
  }
  return counts;
}

/** Complete, Failed and Suspended are False while a run of generation `gen` is under way. */
export function runningConditions(conditions: Condition[] | undefined, gen: number): Condition[] | undefined {
  let out = conditions;
  for (const type of ['Complete', 'Failed', 'Suspended'] as const)
    out = setCondition(out, { type, status: 'False', reason: 'Running', message: '', observedGeneration: gen });
  return out;
}

export class ShardRun {
  readonly generation: number;
  private readonly abort = new AbortController();
  /** Stops the other shards when one fails for good. */
  private readonly failStop = new AbortController();
  private readonly writer: StatusWriter;
  readonly done: Promise<void>;
  private conditions;
  private readonly ns: string;
  private readonly name: string;
  private shards: ShardStatus[] = [];
  private readonly failures = new Map<number, ObjectFailure[]>();
  private readonly lastCounters = new Map<number, Counters>();
  /** spec.maxObjects, shared by the shards. */
  private allowance: JobAllowance | undefined;
  /** The plan the shards were cut by; written with what it was for once every shard completed. */
  private shardPlan: EncryptionJobStatus['shardPlan'] = null;
  /** spec.report: one part per shard run. */
  private reports: ShardReports | undefined;
  /** A dry run: its own shards (dry-run shard objects), no uploads recorded, nothing real touched. */
  private readonly dry: boolean;
  private readonly store: ShardStore;
  private shardIntervalMs = 1000;
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
    this.dry = job.spec.dryRun ?? false;
    this.writer = new StatusWriter(deps.client, this.ns, this.name, deps.log);
    this.store = new ShardStore(deps.client, deps.log);
    this.done = this.run().catch((err: unknown) => {
      deps.log.error(
        { err: String(err), stack: (err as Error).stack },
        'sharded run failed unexpectedly; will try again',
      );
      this.retryAfterMs = deps.retryBaseMs ?? 5000;
      void this.event('Warning', 'RunError', `the run stopped on an unexpected error: ${String(err)}`);
    });
  }

  /** Stops every shard run: in-flight objects finish and each shard's checkpoint is saved. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  get statusWrites(): number {
    return this.writer.writes;
  }

  private async run(): Promise<void> {
    const { job } = this;
    const prev = job.status ?? {};
    const prevRetries = prev.observedGeneration === this.generation ? (prev.retries ?? 0) : 0;
    const basePlan = planFor(job, this.credentials, undefined);
    // maxObjects is the job's, shared by the shards (JobAllowance), not each shard's.
    delete basePlan.maxObjects;
    try {
      validatePlan(basePlan);
    } catch (err) {
      if (err instanceof JobError) return this.failJob(err.reason, err.message);
      throw err;
    }
    const planned = await this.prepare(basePlan);
    if (planned === undefined) return; // stopped while sampling: nothing was written
    if ('reason' in planned) {
      if (planned.retryable) return this.retryOrFail(prevRetries, planned.reason, planned.message);
      return this.failJob(planned.reason, planned.message);
    }
    if (job.spec.maxObjects !== undefined) this.allowance = new JobAllowance(job.spec.maxObjects, this.shards);
    if (job.spec.report) this.reports = this.reportsFor(basePlan, planned.resumed);
    await this.start(planned);
    const ended = await this.runShards(basePlan);
    await this.finish(ended, basePlan, prevRetries);
  }

  /**
   * The shards this run works on, as objects: those of the job's plan for this selection (resumed),
   * or a new plan. The objects are written before the job says the run started.
   */
  private async prepare(basePlan: Plan): Promise<Prepared | PlanningFailure | undefined> {
    const { job } = this;
    const own = ownShards(job.status ?? {}, this.dry);
    const known = own.shards ?? undefined;
    let prepared: Prepared;
    if ((known?.length ?? 0) > 0 && own.plan && planFitsSelection(own.plan, job)) {
      // A new generation looks at every shard again from its checkpoint, or from its start after a finished
      // run of another spec (resumeShards).
      const next = resumeShards(job, known ?? [], own.plan);
      this.shards = next.shards;
      prepared = {
        plan: next.plan,
        resumed: next.restartReason === undefined,
        ...(next.restartReason ? { restartReason: next.restartReason } : {}),
      };
    } else {
      // The shards of an earlier plan go first, their open upload ids handed to the job's checkpoint
      // (a durable write): the new plan's objects reuse their names, and a kill between deleting an
      // old object and writing the new one must not lose an id.
      const old = (await this.store.list(job)).filter((o) => (o.spec.dryRun ?? false) === this.dry);
      if (old.length > 0) await this.store.retire(job, old);
      const planned = await this.plan(basePlan, shardCount(job.spec));
      if (planned === undefined || 'reason' in planned) return planned;
      this.shards = planned.shards;
      prepared = {
        plan: planned.shardPlan,
        resumed: this.shards[0]?.checkpoint !== undefined,
        inventory: planned.inventory ?? null,
      };
    }
    prepared.plan = { ...prepared.plan, shards: this.shards.length };
    this.shardPlan = prepared.plan;
    // A list an earlier operator kept in the job's status (its plan has no count) is carried into objects here.
    const carried = own.plan?.shards === undefined;
    await this.store.sync(job, this.shards, prepared.plan.spec, this.dry, carried ? undefined : known);
    // A real run changes objects: a dry run's count (its shards too) is void.
    if (!this.dry) await this.store.deleteKind(job, true);
    return prepared;
  }

  private reportsFor(basePlan: Plan, resumed: boolean): ShardReports {
    const prev = this.job.status ?? {};
    const report = this.job.spec.report ?? { destination: '' };
    // A resumed job adds parts to the report of the runs before it; a new plan begins a new report.
    return new ShardReports(
      {
        destination: report.destination,
        all: report.all ?? false,
        connection: basePlan.connection,
        job: `${this.ns}/${this.name}`,
      },
      // An earlier operator kept the parts in the status; now the manifest lists them.
      resumed ? (prev.reportParts ?? undefined) : [],
      resumed ? (prev.report ?? undefined) : undefined,
    );
  }

  /** The job's status and event say the run started (how many shards, how many at once, resumed or not). */
  private async start({ plan, resumed, restartReason, inventory }: Prepared): Promise<void> {
    const { job } = this;
    const spec = job.spec;
    const prev = job.status ?? {};
    const gen = this.generation;
    const parallelism = Math.max(1, spec.parallelism ?? 1);
    const now = new Date().toISOString();
    const todo = this.shards.filter((s) => s.phase !== 'Complete').length;
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: this.dry ? 'Planning' : resumed ? 'Resumed' : 'Encrypting',
      message: `${this.dry ? 'dry run: counting what would change' : 'encrypting objects'} in ${this.shards.length} shards, ${Math.min(parallelism, todo)} at a time${resumed ? `; ${todo} shards not complete, each resuming from its checkpoint` : ''}${restartReason ? ` (${restartReason})` : ''}`,
      observedGeneration: gen,
    });
    this.conditions = runningConditions(this.conditions, gen);
    await this.writer.update(
      {
        observedGeneration: gen,
        ...(prev.observedGeneration !== gen ? { retries: null } : {}),
        phase: 'Running',
        conditions: this.conditions,
        startTime: resumed && prev.startTime ? prev.startTime : now,
        completionTime: null,
        progress: replacing(sumProgress(this.shards)),
        shardCounts: countShards(this.shards),
        // The shards carry the checkpoints now; a dry run's count is void once objects change.
        // A dry run's shards carry its own checkpoints: the real ones stay as they are.
        ...(this.dry ? {} : { checkpoint: null, dryRunShardPlan: null }),
        // Failed keys are kept for unsharded runs only: a retry of a sharded job looks at its whole selection.
        ...(this.dry ? {} : { failedKeys: null, ...(resumed ? {} : answeredByFreshRun(job, now)) }),
        dryRunCheckpoint: null,
        ...(resumed ? {} : { recentFailures: null }),
        ...(resumed && spec.report ? {} : { report: null, reportParts: null }),
        // The shards are objects now: a list an earlier operator kept here is carried over (prepare).
        ...(this.dry
          ? { dryRunShards: null, dryRunShardPlan: plan }
          : { shards: null, dryRunShards: null, shardPlan: plan }),
        ...(inventory !== undefined ? { inventory } : {}),
      },
      true,
    );
    void this.event(
      'Normal',
      resumed ? 'Resumed' : 'Started',
      `${this.dry ? 'dry run' : 'run'} started on s3://${spec.bucket}/${spec.prefix ?? ''} to ${spec.encryption.type} in ${this.shards.length} shards, ${parallelism} at a time${restartReason ? ` (${restartReason})` : ''}`,
    );
    const labels = this.labels();
    this.deps.metrics.setJobCondition(this.ns, this.name, 'Progressing');
    for (const service of ['s3', 'kms']) this.deps.metrics.throttles.inc({ ...labels, service }, 0);
    for (const result of ['encrypted', 'already_encrypted', 'skipped', 'failed'])
      this.deps.metrics.objects.inc({ ...labels, result }, 0);
  }

  /** Up to spec.parallelism shards at once, in key order, until all ran or one failed for good. */
  private async runShards(basePlan: Plan): Promise<Ended[]> {
    const parallelism = Math.max(1, this.job.spec.parallelism ?? 1);
    const queue = this.shards.filter((s) => s.phase !== 'Complete');
    const running = Math.min(parallelism, queue.length);
    this.shardIntervalMs = this.deps.shardStatusIntervalMs ?? shardWriteIntervalMs(running);
    const ended: Ended[] = [];
    const worker = async (): Promise<void> => {
      for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) {
        if (this.abort.signal.aborted || this.failStop.signal.aborted) return;
        const result = await this.runShard(shard, basePlan);
        ended.push({ shard, result });
        if (result.status === 'Failed' && !result.retryable) this.failStop.abort();
      }
    };
    await Promise.all(Array.from({ length: running }, worker));
    return ended;
  }

  /** Cuts the key space (shardplan.ts); carries over the checkpoint of an unsharded run of this selection. */
  private async plan(basePlan: Plan, n: number): Promise<PlannedShards | PlanningFailure | undefined> {
    const planned = await planJobShards(this.job, basePlan, n, { signal: this.abort.signal, dryRun: this.dry });
    if (planned && 'shards' in planned)
      this.deps.log.info(
        {
          shards: planned.shards.length,
          requests: planned.requests,
          estimatedObjects: planned.shardPlan.estimatedObjects,
        },
        'planned shards',
      );
    return planned;
  }

  private async runShard(shard: ShardStatus, basePlan: Plan): Promise<RunResult> {
    const report = this.reports?.writer();
    const allowance = this.allowance?.forShard(shard);
    const writer = this.store.writer(this.job, shard.index, this.dry, this.shardIntervalMs);
    const runner = new ShardRunner(shard, writer);
    this.publish();
    let result: RunResult;
    let written: boolean;
    try {
      ({ result, written } = await runner.run(basePlan, {
        engine: this.engineOptions(report, allowance),
        dryRun: this.dry,
        onProgress: (p) => {
          this.countObjects(shard.index, p.counters);
          this.failures.set(shard.index, p.recentFailures);
          this.publish();
        },
        beforeEnd: async (r, base) => {
          if (report) await this.uploadReport(report, shard);
          // The budget this shard took above its checkpoint stays its own until a run of it completes.
          const held =
            allowance && r.status !== 'Complete'
              ? allowance.stillHeld((shard.checkpointProgress?.scanned ?? 0) - base.scanned)
              : 0;
          if (held > 0) shard.budgetHeld = held;
          else delete shard.budgetHeld;
        },
      }));
    } catch (err) {
      report?.dispose();
      throw err;
    }
    this.lastCounters.delete(shard.index);
    this.publish();
    // Its next run starts from the checkpoint its object holds: nothing is lost, some work is done again.
    if (!written) this.deps.log.error({ shard: shard.index }, "the shard's final status was not written");
    this.deps.log.info(
      { shard: shard.index, status: result.status, reason: result.reason, counters: result.counters },
      'shard run ended',
    );
    return result;
  }

  /** The job's object and byte counters: what the shard's run finished since its last progress. */
  private countObjects(index: number, c: Counters): void {
    const { metrics } = this.deps;
    const labels = this.labels();
    const last = this.lastCounters.get(index) ?? { ...ZERO_PROGRESS };
    const delta = (k: keyof Counters): number => c[k] - last[k];
    metrics.objects.inc({ ...labels, result: 'encrypted' }, delta('encrypted'));
    metrics.objects.inc({ ...labels, result: 'already_encrypted' }, delta('alreadyEncrypted'));
    metrics.objects.inc({ ...labels, result: 'skipped' }, delta('skipped'));
    metrics.objects.inc({ ...labels, result: 'failed' }, delta('failed'));
    metrics.bytes.inc(labels, delta('bytesEncrypted'));
    this.lastCounters.set(index, { ...c });
  }

  private engineOptions(
    report: ReportWriter | undefined,
    allowance: { take(): boolean } | undefined,
  ): ShardRunHooks['engine'] {
    const { deps } = this;
    const labels = this.labels();
    return {
      signal: AbortSignal.any([this.abort.signal, this.failStop.signal]),
      ...(deps.budget ? { budget: deps.budget } : {}),
      ...(allowance ? { allowance } : {}),
      ...(report ? { onOutcome: (key, outcome) => report.add(key, outcome) } : {}),
      observer: (e) => {
        deps.metrics.requestDuration.observe(
          { ...labels, service: e.service, operation: e.operation, outcome: e.error ? 'error' : 'ok' },
          e.seconds,
        );
        if (e.throttled) deps.metrics.throttles.inc({ ...labels, service: e.service });
      },
    };
  }

  /** One shard run's part of the job's report; a failure to write it is an event, not a failed job (as unsharded). */
  private async uploadReport(report: ReportWriter, shard: ShardStatus): Promise<void> {
    if (!this.reports) return;
    try {
      const out = await this.reports.upload(report);
      // The manifest lists every part: the job keeps its address only, not a list that grows per shard run.
      await this.writer.update({ report: out.manifest, reportParts: null }, true);
    } catch (err) {
      void this.event(
        'Warning',
        'ReportFailed',
        clip(
          `writing ${describeShard(shard)}'s part of the report to ${this.job.spec.report?.destination ?? ''} failed: ${String(err)}`,
        ),
      );
    }
  }

  /** The shards' sum, counts and recent failures in the job's status: at most one write a second. */
  private publish(): void {
    const progress = sumProgress(this.shards);
    if (progress.total) this.deps.metrics.progressRatio.set(this.labels(), progress.scanned / progress.total);
    const failures = [...this.failures.values()].flat().slice(-20);
    void this.writer.update({
      progress: replacing(progress),
      shardCounts: countShards(this.shards),
      recentFailures: failures.map((f) => ({ ...f, message: clip(f.message) })),
    });
  }

  private labels(): { namespace: string; name: string } {
    return { namespace: this.ns, name: this.name };
  }

  private async finish(ended: Ended[], basePlan: Plan, prevRetries: number): Promise<void> {
    const gen = this.generation;
    const progress = sumProgress(this.shards);
    const final: EncryptionJobStatus = {};
    const arn = ended.find((e) => e.result.resolvedKmsKeyArn)?.result.resolvedKmsKeyArn;
    if (arn) final.kmsKeyArn = arn;
    const terminal = ended.find((e) => e.result.status === 'Failed' && !e.result.retryable);
    const retryable = ended.find((e) => e.result.status === 'Failed' && e.result.retryable);
    const allComplete = this.shards.every((s) => s.phase === 'Complete');
    if (terminal) {
      const { shard, result } = terminal;
      await this.publishFinal(progress, final);
      return this.failJob(
        result.reason ?? 'Failed',
        `${describeShard(shard)}: ${result.message ?? 'the run failed'}`,
        false,
      );
    }
    if (retryable && !this.abort.signal.aborted) {
      await this.publishFinal(progress, final);
      const { shard, result } = retryable;
      return this.retryOrFail(
        prevRetries,
        result.reason ?? 'Failed',
        `${describeShard(shard)}: ${result.message ?? result.reason ?? ''}`,
      );
    }
    if (allComplete) {
      // What the finished shards were for: a later generation of another spec runs them from their start.
      if (this.shardPlan) {
        const plan = { ...this.shardPlan, completedFor: runFingerprint(this.job.spec) };
        Object.assign(final, this.dry ? { dryRunShardPlan: plan } : { shardPlan: plan });
      }
      progress.total = progress.scanned;
      progress.summary = `${progress.encrypted + progress.alreadyEncrypted}/${progress.scanned}`;
      const noncurrent = this.shards.map((s) => s.noncurrentVersions);
      final.noncurrentVersions = noncurrent.every((n) => n !== undefined)
        ? noncurrent.reduce((a: number, b) => a + b, 0)
        : null;
      // Each shard's estimate from its totals (checkpoint base included), shards done before a restart too.
      const cost = this.shards.reduce((sum, s) => sum + dryRunCostUSD(basePlan, s.progress ?? ZERO_PROGRESS), 0);
      if (this.dry) progress.estimatedCostUSD = cost.toFixed(4);
      const maxObjects = this.job.spec.maxObjects;
      const done = completedStatus(this.conditions, {
        progress,
        dryRun: this.dry,
        where: `in ${this.shards.length} shards`,
        ...(reachedMaxObjects(maxObjects, progress) ? { note: `(spec.maxObjects ${maxObjects} reached)` } : {}),
        // Each shard run says the same of the job's inventory: once.
        warnings: [...new Set(ended.flatMap((e) => e.result.warnings ?? []))],
        failuresAt: 'status.recentFailures',
        generation: gen,
      });
      this.conditions = done.conditions;
      Object.assign(final, {
        phase: 'Complete',
        completionTime: new Date().toISOString(),
        conditions: this.conditions,
      });
      this.deps.metrics.setJobCondition(this.ns, this.name, 'Complete');
      this.deps.metrics.progressRatio.set(this.labels(), 1);
      for (const e of done.events) void this.event(e.type, e.reason, e.message);
    }
    // Stopped (suspend, delete, spec change, shutdown): the shards keep their checkpoints; the reconciler says why.
    await this.publishFinal(progress, final);
    this.writer.dispose();
    this.deps.log.info({ progress, writes: this.writer.writes }, 'sharded run ended');
  }

  private async publishFinal(progress: JobProgress, extra: EncryptionJobStatus): Promise<void> {
    await this.writer.update({ ...extra, progress: replacing(progress), shardCounts: countShards(this.shards) }, true);
    await this.writer.settle();
  }

  /** A passing error: let the reconciler start the run again later (each shard from its checkpoint), or give up. */
  private async retryOrFail(prevRetries: number, reason: string, text: string): Promise<void> {
    if (prevRetries >= MAX_RETRIES) return this.failJob(reason, text);
    const retries = prevRetries + 1;
    const msg = `attempt ${retries} of ${MAX_RETRIES} failed, retrying from the checkpoints: ${clip(text)}`;
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'True',
      reason: 'Retrying',
      message: msg,
      observedGeneration: this.generation,
    });
    await this.writer.update({ observedGeneration: this.generation, conditions: this.conditions, retries }, true);
    await this.writer.settle();
    this.writer.dispose();
    this.retryAfterMs = Math.min((this.deps.retryBaseMs ?? 5000) * 2 ** (retries - 1), 300_000);
    void this.event('Warning', 'Retrying', msg);
  }

  private async failJob(reason: string, text: string, fresh = true): Promise<void> {
    const msg = clip(text);
    const gen = this.generation;
    this.conditions = setCondition(this.conditions, {
      type: 'Progressing',
      status: 'False',
      reason,
      message: msg,
      observedGeneration: gen,
    });
    this.conditions = setCondition(this.conditions, {
      type: 'Failed',
      status: 'True',
      reason,
      message: msg,
      observedGeneration: gen,
    });
    const prev = this.job.status ?? {};
    await this.writer.update(
      {
        observedGeneration: gen,
        ...(fresh && prev.observedGeneration !== gen ? { retries: null } : {}),
        phase: 'Failed',
        completionTime: new Date().toISOString(),
        conditions: this.conditions,
      },
      true,
    );
    await this.writer.settle();
    this.writer.dispose();
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
