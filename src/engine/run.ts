// One engine run: list the objects under the prefix, bring each to the target
// encryption with bounded concurrency, and report progress with a checkpoint
// that is safe to resume from. Each object goes inspect → decide → act → verify
// (object-steps.ts), tried again through transient errors (transient-retry.ts),
// then judged here and recorded (record.ts: counters, checkpoint, fail-fast).
import {
  GetBucketOwnershipControlsCommand,
  GetBucketVersioningCommand,
  HeadBucketCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import type { Budget } from './bookkeeping/budget.js';
import { createClients, type Clients, type RequestObserver } from './s3/clients.js';
import {
  errorCode,
  errorMessage,
  isJobLevel,
  isKmsUnusable,
  JobError,
  needsSecondOpinion,
  TransientError,
  TRANSIENT_RETRY_MS,
} from './s3/errors.js';
import { keyFilter } from './keys/filter.js';
import { fromKeys, keysOfRun } from './keys/keylist-source.js';
import { ObjectLockReader } from './object/objectlock.js';
import type { ObjectState } from './object/inspect.js';
import { resolveTarget } from './s3/kms.js';
import { failure, ObjectSteps, operationOf, type ObjectMemory } from './object/object-steps.js';
import { tryThroughTransient } from './s3/transient-retry.js';
import { countObjects, listObjects, type ListedObject } from './keys/lister.js';
import { estimateCost } from './bookkeeping/cost.js';
import { sleep, untilSettledOrAborted } from './s3/abortable.js';
import { countNoncurrent } from './keys/noncurrent.js';
import { loadRunInventory, type RunInventory } from './keys/inventory-source.js';
import type { InventoryEntry } from './keys/inventory.js';
import { FAIL_FAST_AFTER, RunRecord } from './bookkeeping/record.js';
import type { ObjectFailure, OpenUpload, Outcome, Plan, Progress, ProgressListener, RunResult } from './types.js';
import { abortUpload, OpenUploads } from './object/uploads.js';
import { isAwsEndpoint, validatePlan } from './validate.js';
import type { Slot } from './bookkeeping/watermark.js';

export interface RunOptions {
  /**
   * Abort = stop: no new object starts, waits and transient backoffs end at once,
   * single writes already sent finish, multipart copies stop between parts and
   * abort their upload; the run returns status Stopped.
   */
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  progressIntervalMs?: number;
  observer?: RequestObserver;
  /** Every object's outcome, for reports; in listing order, as the checkpoint passes it. */
  onOutcome?: (key: string, outcome: Outcome) => void;
  /** Injected clients (tests, benchmarks); otherwise built from plan.connection. */
  clients?: Clients;
  /** Objects in flight across every run of the process (the operator shares one). */
  budget?: Budget;
  /**
   * Persists the open multipart uploads (with the checkpoint) before their parts
   * are copied; a later run gets them back as Plan.abandonedUploads. A failure
   * fails that object (its upload is aborted).
   */
  recordUploads?: (open: OpenUpload[]) => Promise<void> | void;
  /** Listed-but-not-checkpointed objects at most (default max(1000, 64 x concurrency)). */
  maxWindow?: number;
  /**
   * A limit shared with other runs (the shards of one job under one maxObjects):
   * asked once per object before it is looked at; false ends the listing as
   * Plan.maxObjects does.
   */
  allowance?: { take(): boolean };
  /**
   * How long one object is tried through transient errors before it is
   * deferred (default TRANSIENT_RETRY_MS, 120 s). Tests shorten it to reach
   * a retryable end in seconds.
   */
  transientRetryMs?: number;
}

/** End the run as retryable when this many objects in a row are deferred (transient errors). */
const DEFERRED_IN_A_ROW = FAIL_FAST_AFTER;

type AclMode = 'preserve' | 'skip';

/** An object whose work a stop cut short: it stays above the checkpoint for a resumed run. */
function abandonedByStop(outcome: Outcome | Deferred | undefined, signal: AbortSignal): boolean {
  return (
    signal.aborted &&
    outcome?.kind === 'failed' &&
    (outcome.failure.code === 'AbortError' || outcome.failure.code === 'Stopped')
  );
}

/**
 * An object whose tries ended on a transient error (an outage, throttling that
 * outlasted TRANSIENT_RETRY_MS): not a verdict, so it is never committed under
 * the checkpoint. The run tries it once more; if it still cannot be done, the
 * run ends retryable and a run from the checkpoint tries it again.
 */
interface Deferred {
  kind: 'deferred';
  failure: ObjectFailure;
}

interface DeferredObject {
  slot: Slot<Outcome>;
  obj: RunObject;
  failure: ObjectFailure;
}

class Run {
  /** The last step of each object: counted, and committed under the checkpoint (record.ts). */
  private readonly record: RunRecord;
  private readonly uploads: OpenUploads;
  private readonly warnings: string[] = [];
  private abortedUploads = 0;
  private readonly requests: Record<string, number> = {};
  private fatal: JobError | undefined;
  private deferred: DeferredObject[] = [];
  /** Objects deferred with none finished between them: the endpoint is down, not the objects. */
  private deferredInARow = 0;
  /** Why the run ends retryable: objects it could not get past transient errors. */
  private transientEnd: TransientError | undefined;
  /** Set by checkBucket, then owned by the object steps (which learn that ACLs are unsupported). */
  private aclMode: AclMode = 'preserve';
  private versioned = false;
  /** GetBucketVersioning said Enabled; undefined when it could not be read (the lock reader needs the difference). */
  private versioningEnabled: boolean | undefined;
  /** inspect → decide → act → verify for one object; made once the target and the bucket are known. */
  private steps!: ObjectSteps;
  /** Said by the connection, else known for AWS's own endpoints; never probed. */
  private readonly updateInPlaceAvailable: boolean;
  private readonly stop = new AbortController();
  /** Objects being worked on (holding a budget slot). */
  private active = 0;
  /** Objects this run will look at, once the count beside the run has finished. */
  private total: number | undefined;
  /** The report the objects come from (Plan.inventoryManifest), read before any object. */
  private inventory: RunInventory | undefined;

  constructor(
    private readonly plan: Plan,
    private readonly clients: Clients,
    private readonly opts: RunOptions,
  ) {
    this.updateInPlaceAvailable =
      plan.connection.supportsUpdateObjectEncryption ?? isAwsEndpoint(plan.connection.endpoint);
    this.record = new RunRecord({
      startAfter: plan.startAfter,
      maxFailuresKept: plan.maxFailuresKept ?? 100,
      onCommit: (key, outcome) => this.opts.onOutcome?.(key, outcome),
      fatal: () => this.fatal,
      fail: (err) => this.fail(err),
    });
    this.uploads = new OpenUploads(plan.abandonedUploads ?? [], opts.recordUploads, plan.maxOpenUploads);
  }

  count(operation: string): void {
    this.requests[operation] = (this.requests[operation] ?? 0) + 1;
  }

  snapshot(): Progress {
    const { done, committed, watermark } = this.record;
    const checkpoint = watermark.value;
    return {
      counters: done.copyCounters(),
      skippedByReason: done.copySkips(),
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      committed: {
        counters: committed.copyCounters(),
        skippedByReason: committed.copySkips(),
        planned: committed.copyPlanned(),
      },
      openUploads: this.uploads.list(),
      planned: done.copyPlanned(),
      requests: { ...this.requests },
      recentFailures: [...this.record.recentFailures],
      inFlight: this.active,
      ...(this.total !== undefined ? { total: this.total } : {}),
      ...(this.inventory
        ? {
            inventory: {
              manifest: this.inventory.manifest,
              ...(this.inventory.createdAt ? { createdAt: this.inventory.createdAt.toISOString() } : {}),
              objects: this.inventory.sorted.count,
            },
          }
        : {}),
    };
  }

  async execute(): Promise<RunResult> {
    const s3 = this.clients.s3;
    try {
      validatePlan(this.plan);
      const target = await resolveTarget(this.clients.kms, this.plan.target);
      await this.checkBucket(s3);
      this.steps = new ObjectSteps({
        s3,
        plan: this.plan,
        target,
        updateInPlaceAvailable: this.updateInPlaceAvailable,
        aclMode: this.aclMode,
        lockReader: new ObjectLockReader(s3, this.plan.bucket, (op) => this.count(op), this.versioningEnabled),
        uploads: this.uploads,
        count: (op) => this.count(op),
      });
      if (this.plan.inventoryManifest !== undefined) await this.loadInventory(s3);
      await this.abortAbandonedUploads(s3);
      await this.processAll(s3);
      if (this.fatal) throw this.fatal;
      if (this.transientEnd) throw this.transientEnd;
      const noncurrent = this.versioned && !this.opts.signal?.aborted ? await this.noncurrentOrWarning(s3) : undefined;
      const stopped = this.opts.signal?.aborted === true;
      return {
        ...this.snapshot(),
        status: stopped ? 'Stopped' : 'Complete',
        ...(this.steps.target.kmsKeyArn ? { resolvedKmsKeyArn: this.steps.target.kmsKeyArn } : {}),
        ...(noncurrent !== undefined ? { noncurrentVersions: noncurrent } : {}),
        ...(this.warnings.length > 0 ? { warnings: [...this.warnings] } : {}),
        ...(this.abortedUploads > 0 ? { abortedUploads: this.abortedUploads } : {}),
      };
    } catch (err) {
      if (this.opts.signal?.aborted && this.inventory === undefined && this.plan.inventoryManifest !== undefined)
        return { ...this.snapshot(), status: 'Stopped' }; // stopped while the report was read
      const known = err instanceof JobError || err instanceof TransientError ? err : undefined;
      return {
        ...this.snapshot(),
        ...(this.warnings.length > 0 ? { warnings: [...this.warnings] } : {}),
        status: 'Failed',
        reason: known ? known.reason : errorCode(err),
        message: known ? known.message : `${errorCode(err)}: ${errorMessage(err)}`,
        retryable: !(err instanceof JobError),
      };
    } finally {
      this.inventory?.sorted.dispose();
    }
  }

  /**
   * Reads and sorts the report's rows for this run before any object is looked
   * at: a missing, unreadable or corrupt report fails the run with nothing touched.
   */
  private async loadInventory(s3: S3Client): Promise<void> {
    this.count('GetObject');
    this.inventory = await loadRunInventory(s3, this.plan, this.opts.signal ? { signal: this.opts.signal } : {});
    const { createdAt, manifest } = this.inventory;
    const total = this.inventory.sorted.count;
    this.total = this.plan.maxObjects !== undefined ? Math.min(total, this.plan.maxObjects) : total;
    // The rule for objects newer than the report (docs/scale.md): said on every completed run.
    this.warnings.push(
      `objects came from the S3 Inventory ${manifest}${createdAt ? ` made ${createdAt.toISOString()}` : ' (no creation time in it)'}: objects written after it were not looked at (new writes get the bucket's default encryption; run the job again with a newer inventory, or without one, to check them)`,
    );
    if (this.versioned && this.inventory.noncurrentVersions === undefined) {
      this.warnings.push(
        `noncurrent versions were not counted: the inventory ${manifest} lists current versions only (no IsLatest column)`,
      );
    }
  }

  private async checkBucket(s3: S3Client): Promise<void> {
    const { bucket } = this.plan;
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (err instanceof JobError) throw err; // the endpoint refused by the address guard: not an outage
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || errorCode(err) === 'NoSuchBucket' || errorCode(err) === 'NotFound') {
        throw new JobError('BucketNotFound', `bucket "${bucket}" does not exist`, { cause: err });
      }
      if (status === 403) {
        throw new JobError('AccessDenied', `access to bucket "${bucket}" was denied (HeadBucket 403)`, { cause: err });
      }
      throw new TransientError(
        'S3Unreachable',
        `HeadBucket "${bucket}" failed: ${errorCode(err)}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
    try {
      const v = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
      this.versioned = v.Status === 'Enabled' || v.Status === 'Suspended';
      this.versioningEnabled = v.Status === 'Enabled';
    } catch {
      this.versioned = false;
      this.versioningEnabled = undefined;
    }
    try {
      const oc = await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }));
      // With "bucket owner enforced" ACLs are disabled: nothing to carry over.
      if (oc.OwnershipControls?.Rules?.some((r) => r.ObjectOwnership === 'BucketOwnerEnforced')) this.aclMode = 'skip';
    } catch {
      // No ownership controls (or a server without them): ACLs are in force.
    }
  }

  /** Aborts the uploads an earlier run recorded and left open; one that cannot be aborted stays recorded. */
  private async abortAbandonedUploads(s3: S3Client): Promise<void> {
    if (this.plan.dryRun) return;
    for (const upload of this.plan.abandonedUploads ?? []) {
      if (this.opts.signal?.aborted) return;
      this.count('AbortMultipartUpload');
      const outcome = await abortUpload(s3, this.plan.bucket, upload);
      if (outcome === true) {
        this.uploads.closed(upload);
        this.abortedUploads++;
      } else {
        this.warnings.push(`an upload left by an earlier run could not be aborted (it stays recorded): ${outcome}`);
      }
    }
  }

  private async processAll(s3: S3Client): Promise<void> {
    const plan = this.plan;
    const concurrency = Math.max(1, plan.concurrency ?? 32);
    const queue = new PQueue({ concurrency });
    const maxWindow = Math.max(1, this.opts.maxWindow ?? Math.max(1000, concurrency * 64));
    const filter = keyFilter(plan.prefix, plan.include, plan.exclude);
    const signals = [this.stop.signal, ...(this.opts.signal ? [this.opts.signal] : [])];
    const signal = AbortSignal.any(signals);
    // Every object listens on it (its HEAD, a transient backoff, a wait for the shared budget), and the back-pressure wait.
    setMaxListeners(Math.max(10, concurrency * 4), signal);
    const counter = new AbortController();
    this.startCounting(s3, counter.signal);
    // Progress is reported on a clock, not as the checkpoint moves: a slow object
    // holds the checkpoint back, never the counters of the objects after it.
    const interval = setInterval(() => this.opts.onProgress?.(this.snapshot()), this.opts.progressIntervalMs ?? 1000);
    try {
      let listedCount = 0;
      for await (const obj of this.objectsOfRun(s3, signal)) {
        if (signal.aborted) break;
        if (this.opts.allowance && !this.opts.allowance.take()) break;
        listedCount++;
        this.dispatch(s3, obj, filter, queue, signal);
        if (plan.maxObjects !== undefined && listedCount >= plan.maxObjects) break;
        await this.waitForRoom(s3, queue, { concurrency, maxWindow }, signal);
      }
      await queue.onIdle();
      await this.retryDeferred(s3, queue, signal, 'after the last object');
    } finally {
      counter.abort();
      this.inventory?.sorted.dispose();
      clearInterval(interval);
      queue.clear();
      await queue.onIdle();
      // A run that ends without a fatal error and without a write: its failures were the objects' own.
      if (!this.fatal && !this.transientEnd && !signal.aborted) this.record.releaseHeld();
      this.opts.onProgress?.(this.snapshot());
    }
  }

  /** Where the run's objects come from: the report's rows, the plan's keys, or a listing. */
  private objectsOfRun(s3: S3Client, signal: AbortSignal): AsyncIterable<RunObject> | Iterable<RunObject> {
    const plan = this.plan;
    if (this.inventory) return fromInventory(this.inventory);
    if (plan.keys) return fromKeys(keysOfRun(plan));
    return listObjects(s3, {
      bucket: plan.bucket,
      prefix: plan.prefix,
      ...(plan.startAfter ? { startAfter: plan.startAfter } : {}),
      ...(plan.endAt !== undefined ? { endAt: plan.endAt } : {}),
      signal,
    });
  }

  /** Counts beside the work, for a progress total; never waited for, stopped with the run. (An inventory's rows are counted already.) */
  private startCounting(s3: S3Client, signal: AbortSignal): void {
    const plan = this.plan;
    if (plan.keys) {
      this.total = keysOfRun(plan).length;
      return;
    }
    if (this.inventory) return;
    void countObjects(s3, {
      bucket: plan.bucket,
      prefix: plan.prefix,
      ...(plan.startAfter ? { startAfter: plan.startAfter } : {}),
      ...(plan.endAt !== undefined ? { endAt: plan.endAt } : {}),
      signal,
    }).then(
      (n) => {
        this.total = plan.maxObjects !== undefined ? Math.min(n, plan.maxObjects) : n;
      },
      () => undefined,
    );
  }

  /** One listed object: settled at once (filtered, proven by the report), or queued for its journey. */
  private dispatch(
    s3: S3Client,
    obj: RunObject,
    filter: (key: string) => boolean,
    queue: PQueue,
    signal: AbortSignal,
  ): void {
    const slot = this.record.begin(obj.key);
    if (!filter(obj.key)) {
      this.record.finished(slot, { kind: 'skipped', reason: 'filtered' });
      return;
    }
    // Every row is HEADed: a row says how the object was when the report was made, not now.
    void queue.add(() => this.work(s3, obj, slot, signal));
  }

  /** One object's journey under the shared budget, and what becomes of its slot. */
  private async work(s3: S3Client, obj: RunObject, slot: Slot<Outcome>, signal: AbortSignal): Promise<void> {
    if (this.opts.budget && !(await this.opts.budget.acquire(signal))) return;
    this.active++;
    let outcome: Outcome | Deferred | undefined;
    try {
      outcome = signal.aborted ? undefined : await this.processObject(s3, obj, signal);
    } finally {
      this.active--;
      this.opts.budget?.release();
    }
    // An object abandoned by a stop stays above the watermark: a resumed run redoes it.
    if (!outcome || abandonedByStop(outcome, signal)) return;
    if (outcome.kind === 'deferred') {
      this.deferred.push({ slot, obj, failure: outcome.failure });
      if (++this.deferredInARow >= DEFERRED_IN_A_ROW) this.endRetryable(`${this.deferredInARow} objects in a row`);
      return;
    }
    this.deferredInARow = 0;
    this.record.finished(slot, outcome);
  }

  /**
   * Tries the deferred objects once more (the outage may be over): after the
   * listing, or when they fill the window. Those deferred again end the run
   * retryable, above the checkpoint.
   */
  private async retryDeferred(s3: S3Client, queue: PQueue, signal: AbortSignal, when: string): Promise<void> {
    if (this.deferred.length === 0 || signal.aborted) return;
    await queue.onIdle();
    const again = this.deferred.splice(0);
    this.deferredInARow = 0;
    for (const d of again) void queue.add(() => this.work(s3, d.obj, d.slot, signal));
    await queue.onIdle();
    if (this.deferred.length > 0 && !signal.aborted) this.endRetryable(`tried again ${when}`);
  }

  /** Ends the run as retryable: no new object starts; the deferred ones stay above the checkpoint. */
  private endRetryable(why: string): void {
    const last = this.deferred.at(-1)?.failure;
    const seconds = Math.round((this.opts.transientRetryMs ?? TRANSIENT_RETRY_MS) / 1000);
    this.transientEnd ??= new TransientError(
      'TransientFailures',
      `${this.deferred.length} object(s) could not be done through transient errors for ${seconds} s each (${why}; ` +
        `an outage or throttling${last ? `; last: ${last.operation} ${last.key}: ${last.code}: ${last.message}` : ''}): ` +
        'they stay above the checkpoint, and a run from the checkpoint tries them again',
    );
    this.stop.abort();
  }

  /**
   * Back-pressure: listing waits for the workers, so memory stays flat, and for
   * a slow head of the window (its finished followers are held until it is
   * done). Every wait ends at a stop: a stopped run abandons the head, so the
   * window would never drain. (Not queue.onIdle() here: each call leaves a
   * listener on the queue until it drains, which in a long run is only at the
   * end: memory and CPU grew with the object count.)
   */
  private async waitForRoom(
    s3: S3Client,
    queue: PQueue,
    limits: { concurrency: number; maxWindow: number },
    signal: AbortSignal,
  ): Promise<void> {
    const { concurrency, maxWindow } = limits;
    while (!signal.aborted && (queue.size >= concurrency || this.record.watermark.pending >= maxWindow)) {
      if (queue.size >= concurrency) await untilSettledOrAborted(queue.onSizeLessThan(concurrency), signal);
      else if (this.deferred.length > 0) await this.retryDeferred(s3, queue, signal, 'when they filled the window');
      else await sleep(50, signal);
    }
  }

  private fail(err: JobError): void {
    this.fatal ??= err;
    this.stop.abort();
  }

  /** The last check of the target key after a KMS error: reused for a while, so errors do not become a DescribeKey storm. */
  private targetCheck: { at: number; result: Promise<JobError | undefined> } | undefined;
  /** The last HeadBucket after an error that needs a second opinion: true when it failed too. */
  private bucketCheck: { at: number; result: Promise<boolean> } | undefined;

  /**
   * One object, tried again through transient errors (transient-retry.ts),
   * then judged: an error that is not the object's own fails the job.
   * undefined: stopped before it was finished.
   */
  private async processObject(
    s3: S3Client,
    listed: ListedObject,
    signal: AbortSignal,
  ): Promise<Outcome | Deferred | undefined> {
    const memory: ObjectMemory = {};
    const tried = await tryThroughTransient(() => this.steps.attempt(listed, signal, memory), {
      signal,
      keepTrying: () => !this.fatal,
      windowMs: this.opts.transientRetryMs ?? TRANSIENT_RETRY_MS,
    });
    if (tried.kind === 'stopped') return undefined;
    if (tried.kind === 'done') return tried.value;
    if (tried.transient && !this.fatal) {
      const err = tried.error;
      const operation = operationOf(err, 'HeadObject');
      const seconds = ((performance.now() - tried.attempt.since) / 1000).toFixed(0);
      const message = `${errorMessage(err)} (tried ${tried.attempt.n + 1} times over ${seconds} s)`;
      return { kind: 'deferred', failure: { key: listed.key, operation, code: errorCode(err), message } };
    }
    return this.judge(listed.key, tried.error, memory.inspected);
  }

  /** What an error that ended an object's tries means: this object's failure, and maybe the job's. */
  private async judge(key: string, err: unknown, state: ObjectState | undefined): Promise<Outcome> {
    const code = errorCode(err);
    const operation = operationOf(err, 'HeadObject');
    if (isKmsUnusable(err)) {
      // S3 names KMS errors of the source object's key (Decrypt) and of the
      // target key alike: only a failing target key ends the job.
      const targetProblem = await this.checkTargetKey();
      if (targetProblem) {
        this.fail(
          new JobError(
            targetProblem.reason,
            `${operation} ${key}: ${code}: ${errorMessage(err)}; ${targetProblem.message}`,
          ),
        );
        return failure(key, operation, code, errorMessage(err));
      }
      const source =
        state?.sse === 'aws:kms' || state?.sse === 'aws:kms:dsse'
          ? ` (the object is encrypted under ${state.kmsKeyId ?? 'a KMS key'})`
          : '';
      return failure(
        key,
        operation,
        code,
        `KMS refused a key for this object, and the target key is usable: the object's current key is the likely cause${source}: ${errorMessage(err)}`,
      );
    }
    if (isJobLevel(err) && (await this.sharedByOthers(err))) {
      this.fail(new JobError(code, `${operation} ${key}: ${code}: ${errorMessage(err)}`));
    }
    return failure(key, operation, code, errorMessage(err));
  }

  /**
   * Whether a job-level error is the job's, not just this request's: most
   * codes say so alone (a revoked key, an expired token); a signature mismatch
   * only when HeadBucket fails too (errors.ts needsSecondOpinion). Asked at most
   * once a minute, so a broken job does not become a HeadBucket storm.
   */
  private async sharedByOthers(err: unknown): Promise<boolean> {
    if (!needsSecondOpinion(err)) return true;
    if (!this.bucketCheck || performance.now() - this.bucketCheck.at > 60_000) {
      this.count('HeadBucket');
      this.bucketCheck = {
        at: performance.now(),
        result: this.clients.s3.send(new HeadBucketCommand({ Bucket: this.plan.bucket })).then(
          () => false,
          () => true,
        ),
      };
    }
    return this.bucketCheck.result;
  }

  /** Whether the target key is still usable (DescribeKey), at most once a minute. */
  private async checkTargetKey(): Promise<JobError | undefined> {
    if (this.steps.target.type === 'AES256') return undefined;
    if (!this.targetCheck || performance.now() - this.targetCheck.at > 60_000) {
      this.count('DescribeKey');
      this.targetCheck = {
        at: performance.now(),
        result: resolveTarget(this.clients.kms, this.plan.target).then(
          () => undefined,
          (err: unknown) => (err instanceof JobError ? err : undefined),
        ),
      };
    }
    return this.targetCheck.result;
  }

  /** Counting is bookkeeping after the work: a failure is a warning on the result, never a failed run. */
  private async noncurrentOrWarning(s3: S3Client): Promise<number | undefined> {
    // From the report when it lists versions; never a listing of the bucket for it.
    if (this.inventory) return this.inventory.noncurrentVersions;
    try {
      return await countNoncurrent(s3, {
        bucket: this.plan.bucket,
        prefix: this.plan.prefix,
        ...(this.plan.shardStartAfter ? { startAfter: this.plan.shardStartAfter } : {}),
        ...(this.plan.endAt !== undefined ? { endAt: this.plan.endAt } : {}),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        onRequest: () => this.count('ListObjectVersions'),
      });
    } catch (err) {
      this.warnings.push(
        `noncurrent versions were not counted: ListObjectVersions on bucket "${this.plan.bucket}": ${errorCode(err)}: ${errorMessage(err)}`,
      );
      return undefined;
    }
  }
}

/** An object of the run: listed, named by the plan, or a report's row. */
type RunObject = ListedObject & { row?: InventoryEntry };

/** An inventory's sorted rows as listed objects, each with its row. */
async function* fromInventory(inventory: RunInventory): AsyncGenerator<RunObject> {
  for await (const row of inventory.sorted.entries()) {
    yield {
      key: row.key,
      size: row.size ?? 0,
      ...(row.storageClass ? { storageClass: row.storageClass } : {}),
      row,
    };
  }
}

export async function runEngine(plan: Plan, opts: RunOptions = {}): Promise<RunResult> {
  const clients =
    opts.clients ??
    createClients(plan.connection, {
      ...(opts.observer ? { observer: opts.observer } : {}),
      ...(plan.maxRequestsPerSecond ? { maxRequestsPerSecond: plan.maxRequestsPerSecond } : {}),
      ...(plan.concurrency ? { concurrency: plan.concurrency } : {}),
    });
  try {
    const result = await new Run(plan, clients, opts).execute();
    if (plan.dryRun)
      result.estimate = estimateCost(plan, {
        scanned: result.counters.scanned,
        filtered: result.skippedByReason.filtered,
        planned: result.planned,
      });
    return result;
  } finally {
    if (!opts.clients) clients.destroy();
  }
}
