// One engine run: list the objects under the prefix, bring each to the target
// encryption with bounded concurrency, and report progress with a checkpoint
// that is safe to resume from.
import {
  GetBucketOwnershipControlsCommand,
  GetBucketVersioningCommand,
  HeadBucketCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import type { Budget } from './budget.js';
import { createClients, DEFAULT_MAX_ATTEMPTS, type Clients, type RequestObserver } from './clients.js';
import {
  copyInPlace,
  multipartCopyInPlace,
  retentionExpired,
  updateEncryptionInPlace,
  type WrittenEncryption,
} from './copy.js';
import { decide, isAtTarget } from './decide.js';
import {
  attemptsOf,
  backoff,
  errorCode,
  errorMessage,
  isAccessDenied,
  isJobLevel,
  isKmsUnusable,
  isNotFound,
  isNotImplemented,
  isPreconditionFailed,
  isTransient,
  JobError,
  TransientError,
  TRANSIENT_RETRY_MS,
} from './errors.js';
import { keyFilter } from './filter.js';
import { fromKeys, keysOfRun } from './keylist-source.js';
import { explainHeadError, needsExplaining } from './headerror.js';
import { LockUnreadableError, ObjectLockReader } from './objectlock.js';
import { firstPartSize, getAclGrants, headObject, type AclGrants, type ObjectState } from './inspect.js';
import { resolveTarget, type ResolvedTarget } from './kms.js';
import { countObjects, listObjects, type ListedObject } from './lister.js';
import { estimateCost } from './cost.js';
import { sleep, untilSettledOrAborted } from './abortable.js';
import { countNoncurrent } from './noncurrent.js';
import { loadRunInventory, type RunInventory } from './inventory-source.js';
import type { InventoryEntry } from './inventory.js';
import { Tally } from './tally.js';
import type { ObjectFailure, OpenUpload, Outcome, Plan, Progress, ProgressListener, RunResult } from './types.js';
import { abortUpload, OpenUploads } from './uploads.js';
import { isAwsEndpoint, validatePlan } from './validate.js';
import { Watermark, type Slot } from './watermark.js';

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
}

const DEFAULT_MULTIPART_THRESHOLD = 5 * 1024 ** 3;
const DEFAULT_PART_SIZE = 512 * 1024 ** 2;
const MAX_INSPECTIONS = 3;
/** Give up on the job when this many objects in a row fail and none has succeeded. */
const FAIL_FAST_AFTER = 25;

type AclMode = 'preserve' | 'skip';

/** An object whose work a stop cut short: it stays above the checkpoint for a resumed run. */
function abandonedByStop(outcome: Outcome | undefined, signal: AbortSignal): boolean {
  return (
    signal.aborted &&
    outcome?.kind === 'failed' &&
    (outcome.failure.code === 'AbortError' || outcome.failure.code === 'Stopped')
  );
}

/** Failures held back from the checkpoint until the run shows they are the objects' own (see Run.finished). */
interface HeldFailure {
  slot: Slot<Outcome>;
  outcome: Outcome;
}

class Run {
  /** Every finished object (progress), and those under the checkpoint (the base a resumed run adds to). */
  private readonly done = new Tally();
  private readonly committed = new Tally();
  private readonly uploads: OpenUploads;
  private readonly warnings: string[] = [];
  private abortedUploads = 0;
  private readonly requests: Record<string, number> = {};
  private readonly failures: ObjectFailure[] = [];
  private readonly watermark: Watermark<Outcome>;
  private fatal: JobError | undefined;
  private consecutiveFailures = 0;
  private successes = 0;
  /** Failures finished while nothing has succeeded yet: not under the checkpoint until something does. */
  private held: HeldFailure[] = [];
  private aclMode: AclMode = 'preserve';
  private versioned = false;
  private target!: ResolvedTarget;
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
    // Reports get outcomes as the checkpoint passes them, like the saved counters: the
    // report of a stopped run and of its resumed run together name every key once.
    this.watermark = new Watermark<Outcome>(plan.startAfter, (key, outcome) => {
      this.committed.add(outcome);
      this.opts.onOutcome?.(key, outcome);
    });
    this.uploads = new OpenUploads(plan.abandonedUploads ?? [], opts.recordUploads);
  }

  count(operation: string): void {
    this.requests[operation] = (this.requests[operation] ?? 0) + 1;
  }

  snapshot(): Progress {
    const checkpoint = this.watermark.value;
    return {
      counters: this.done.copyCounters(),
      skippedByReason: this.done.copySkips(),
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      committed: {
        counters: this.committed.copyCounters(),
        skippedByReason: this.committed.copySkips(),
        planned: this.committed.copyPlanned(),
      },
      openUploads: this.uploads.list(),
      planned: this.done.copyPlanned(),
      requests: { ...this.requests },
      recentFailures: [...this.failures],
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
      this.target = await resolveTarget(this.clients.kms, this.plan.target);
      await this.checkBucket(s3);
      if (this.plan.inventoryManifest !== undefined) await this.loadInventory(s3);
      await this.abortAbandonedUploads(s3);
      await this.processAll(s3);
      if (this.fatal) throw this.fatal;
      const noncurrent = this.versioned && !this.opts.signal?.aborted ? await this.noncurrentOrWarning(s3) : undefined;
      const stopped = this.opts.signal?.aborted === true;
      return {
        ...this.snapshot(),
        status: stopped ? 'Stopped' : 'Complete',
        ...(this.target.kmsKeyArn ? { resolvedKmsKeyArn: this.target.kmsKeyArn } : {}),
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
    } catch {
      this.versioned = false;
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
    let listedCount = 0;
    // Count beside the work, for a progress total; never waited for, stopped with the run.
    // (An inventory's rows are counted already.)
    const counter = new AbortController();
    if (plan.keys) this.total = keysOfRun(plan).length;
    else if (!this.inventory)
      void countObjects(s3, {
        bucket: plan.bucket,
        prefix: plan.prefix,
        ...(plan.startAfter ? { startAfter: plan.startAfter } : {}),
        ...(plan.endAt !== undefined ? { endAt: plan.endAt } : {}),
        signal: counter.signal,
      }).then(
        (n) => {
          this.total = plan.maxObjects !== undefined ? Math.min(n, plan.maxObjects) : n;
        },
        () => undefined,
      );
    // Progress is reported on a clock, not as the checkpoint moves: a slow object
    // holds the checkpoint back, never the counters of the objects after it.
    const interval = setInterval(() => this.opts.onProgress?.(this.snapshot()), this.opts.progressIntervalMs ?? 1000);
    try {
      const listed:
        AsyncIterable<ListedObject & { row?: InventoryEntry }> | Iterable<ListedObject & { row?: InventoryEntry }> =
        this.inventory
          ? fromInventory(this.inventory)
          : plan.keys
            ? fromKeys(keysOfRun(plan))
            : listObjects(s3, {
                bucket: plan.bucket,
                prefix: plan.prefix,
                ...(plan.startAfter ? { startAfter: plan.startAfter } : {}),
                ...(plan.endAt !== undefined ? { endAt: plan.endAt } : {}),
                signal,
              });
      for await (const obj of listed) {
        if (signal.aborted) break;
        if (this.opts.allowance && !this.opts.allowance.take()) break;
        listedCount++;
        const slot = this.watermark.begin(obj.key);
        if (!filter(obj.key)) {
          this.finished(slot, { kind: 'skipped', reason: 'filtered' });
        } else {
          // Every row is HEADed: a row says how the object was when the report was made, not now.
          void queue.add(async () => {
            if (this.opts.budget && !(await this.opts.budget.acquire(signal))) return;
            this.active++;
            let outcome: Outcome | undefined;
            try {
              outcome = signal.aborted ? undefined : await this.processObject(s3, obj, signal);
            } finally {
              this.active--;
              this.opts.budget?.release();
            }
            // An object abandoned by a stop stays above the watermark: a resumed run redoes it.
            if (outcome && !abandonedByStop(outcome, signal)) this.finished(slot, outcome);
          });
        }
        if (plan.maxObjects !== undefined && listedCount >= plan.maxObjects) break;
        // Back-pressure: listing waits for the workers, so memory stays flat, and for
        // a slow head of the window (its finished followers are held until it is
        // done). Every wait ends at a stop: a stopped run abandons the head, so the
        // window would never drain. (Not queue.onIdle() here: each call leaves a
        // listener on the queue until it drains, which in a long run is only at the
        // end: memory and CPU grew with the object count.)
        while (!signal.aborted && (queue.size >= concurrency || this.watermark.pending >= maxWindow)) {
          if (queue.size >= concurrency) await untilSettledOrAborted(queue.onSizeLessThan(concurrency), signal);
          else await sleep(50, signal);
        }
      }
      await queue.onIdle();
    } finally {
      counter.abort();
      this.inventory?.sorted.dispose();
      clearInterval(interval);
      queue.clear();
      await queue.onIdle();
      // A run that ends without a fatal error and without a success: its failures were the objects' own.
      if (!this.fatal && !signal.aborted) this.releaseHeld();
      this.opts.onProgress?.(this.snapshot());
    }
  }

  /**
   * An object is done: count it now (progress), and under the checkpoint once
   * every key before it is done. A failure goes under the checkpoint only when
   * it is the object's own: once the run has a fatal error (bad credentials,
   * an unusable target key, a fail-fast), a failure may be that error's, so it
   * stays above the checkpoint and a resumed run, after the cause is fixed,
   * tries the object again. Failures before the first success are held back
   * for the same reason: if they add up to a fail-fast, the run keeps the
   * checkpoint it started from; a success (or the end of the run) releases them.
   */
  private finished(slot: Slot<Outcome>, outcome: Outcome): void {
    this.record(outcome);
    if (outcome.kind === 'failed') {
      if (this.fatal) return;
      if (this.successes === 0) {
        this.held.push({ slot, outcome });
        return;
      }
    }
    this.releaseHeld();
    this.watermark.finish(slot, outcome);
  }

  private releaseHeld(): void {
    if (this.fatal) return; // a success in flight when the run failed proves nothing about the held failures
    const held = this.held;
    this.held = [];
    for (const h of held) this.watermark.finish(h.slot, h.outcome);
  }

  private record(outcome: Outcome): void {
    this.done.add(outcome);
    if (outcome.kind === 'failed') {
      if (this.failures.length >= (this.plan.maxFailuresKept ?? 100)) this.failures.shift();
      this.failures.push(outcome.failure);
    }
    if (outcome.kind === 'failed') {
      this.consecutiveFailures++;
      if (this.successes === 0 && this.consecutiveFailures >= FAIL_FAST_AFTER && !this.fatal) {
        const f = outcome.failure;
        this.fail(
          new JobError(
            f.code === 'AccessDenied' ? 'AccessDenied' : 'TooManyFailures',
            `the first ${this.consecutiveFailures} objects all failed; last: ${f.operation} ${f.key}: ${f.code}: ${f.message}`,
          ),
        );
      }
    } else {
      this.consecutiveFailures = 0;
      this.successes++;
    }
  }

  private fail(err: JobError): void {
    this.fatal ??= err;
    this.stop.abort();
  }

  // Per-object state of the run, used only by processObject and its helpers.
  /** UpdateObjectEncryption answered NotImplemented/MethodNotAllowed: copy for the rest of the run. */
  private uoeUnavailable: string | undefined;
  /** Reads lock state that HEAD may hide (one GetObjectLockConfiguration per run). */
  private lockReader: ObjectLockReader | undefined;
  /** The last check of the target key after a KMS error: reused for a while, so errors do not become a DescribeKey storm. */
  private targetCheck: { at: number; result: Promise<JobError | undefined> } | undefined;

  /**
   * `signal` only keeps an object from starting its write: a request already
   * sent is never aborted, since S3 may complete it anyway and the outcome
   * would be unknown. In-flight objects finish.
   */
  private async processObject(
    s3: S3Client,
    listed: ListedObject,
    signal: AbortSignal,
    // Tries through transient errors: since when, how many, and whether a write of
    // ours may have landed (its answer was lost), so that finding the object at the
    // target afterwards counts as encrypted by this run, not as already encrypted.
    retry: { since: number; round: number; wrote?: 'copy' | 'multipart-copy' | 'update-in-place' } = {
      since: performance.now(),
      round: 0,
    },
  ): Promise<Outcome | undefined> {
    const { bucket } = this.plan;
    const lockReader = (this.lockReader ??= new ObjectLockReader(s3, bucket, (op) => this.count(op)));
    let operation = 'HeadObject';
    let lastMissing: string | undefined;
    let state: ObjectState | undefined;
    /** Why UpdateObjectEncryption was refused for this object (Auto then copies). */
    let uoeRefused: string | undefined;
    try {
      for (let attempt = 0; attempt < MAX_INSPECTIONS; attempt++) {
        operation = 'HeadObject';
        this.count(operation);
        try {
          state = await headObject(s3, bucket, listed.key, signal);
        } catch (err) {
          if (isNotFound(err)) return { kind: 'skipped', reason: 'vanished', detail: 'deleted after it was listed' };
          if (!needsExplaining(err)) throw err;
          // A bare 400/403: SSE-C without its key, or credentials, token, clock... The GET's error body tells.
          operation = 'GetObject';
          this.count(operation);
          const meaning = await explainHeadError(s3, bucket, listed.key, err);
          if (meaning.kind === 'sse-c') return { kind: 'skipped', reason: 'unsupported', detail: meaning.detail };
          if (meaning.kind === 'job') {
            const code = errorCode(meaning.error);
            this.fail(new JobError(code, `HeadObject ${listed.key}: ${code}: ${errorMessage(meaning.error)}`));
          }
          operation = 'HeadObject';
          throw meaning.error;
        }
        const action = decide(state, this.target, {
          method: this.plan.method ?? 'Auto',
          updateInPlaceAvailable: this.updateInPlaceAvailable && !this.uoeUnavailable && !uoeRefused,
          multipartThreshold: this.plan.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD,
          ...(this.plan.storageClass ? { storageClass: this.plan.storageClass } : {}),
        });
        if (action.kind === 'already') {
          return retry.wrote
            ? { kind: 'encrypted', method: retry.wrote, bytes: state.size }
            : { kind: 'alreadyEncrypted' };
        }
        if (action.kind === 'skip') return { kind: 'skipped', reason: action.reason, detail: action.detail };
        // Only a copy rewrites the metadata; an object already at the target, or changed in place, keeps it.
        if (action.kind !== 'update-in-place' && state.missingMeta && state.missingMeta > 0) {
          return this.failure(
            listed.key,
            operation,
            'MissingMetadata',
            `HEAD reports ${state.missingMeta} user metadata entries it cannot return as headers (x-amz-missing-meta): a copy would drop them`,
          );
        }
        if (this.plan.dryRun) return { kind: 'wouldEncrypt', method: action.kind, bytes: state.size };
        if (signal.aborted) return undefined;
        const now = new Date();
        let result: WrittenEncryption;
        const wroteBefore = retry.wrote;
        retry.wrote = action.kind;
        try {
          if (action.kind === 'update-in-place') {
            operation = 'UpdateObjectEncryption';
            this.count(operation);
            result = await updateEncryptionInPlace(s3, state, { bucket, target: this.target });
          } else {
            operation = 'ObjectLock';
            try {
              await lockReader.complete(state);
            } catch (err) {
              if (err instanceof LockUnreadableError) {
                retry.wrote = wroteBefore;
                return this.failure(listed.key, err.operation, 'ObjectLockUnreadable', err.message);
              }
              throw err;
            }
            let grants: AclGrants | undefined;
            const aclRead = this.aclMode === 'preserve';
            if (aclRead) {
              operation = 'GetObjectAcl';
              this.count(operation);
              grants = await this.readGrants(s3, listed.key, state.versionId);
            }
            const common = {
              bucket,
              target: this.target,
              now,
              ...(this.plan.storageClass ? { storageClass: this.plan.storageClass } : {}),
              ...(grants ? { grants } : {}),
              aclRead: aclRead && this.aclMode === 'preserve',
            };
            if (action.kind === 'copy') {
              operation = 'CopyObject';
              this.count(operation);
              result = await copyInPlace(s3, state, common);
            } else {
              this.count('MultipartCopy');
              operation = 'HeadObject';
              const sourcePartSize =
                state.partsCount && state.partsCount > 1 ? await firstPartSize(s3, bucket, listed.key) : undefined;
              operation = 'UploadPartCopy';
              result = await multipartCopyInPlace(s3, state, {
                ...common,
                defaultPartSize: this.plan.multipartPartSize ?? DEFAULT_PART_SIZE,
                signal,
                uploads: this.uploads,
                ...(sourcePartSize ? { sourcePartSize } : {}),
              });
            }
          }
        } catch (err) {
          // The object changed after HEAD, or is gone: look again; HEAD tells which.
          // (A 412 to the SDK's retry may follow our own first attempt, which landed.)
          if (isPreconditionFailed(err)) {
            if (attemptsOf(err) === 1) retry.wrote = wroteBefore;
            continue;
          }
          if (isNotFound(err)) {
            if (lastMissing === state.etag) throw err; // HEAD sees it, the write says it is missing: a real failure
            lastMissing = state.etag;
            continue;
          }
          if (
            action.kind === 'update-in-place' &&
            (this.plan.method ?? 'Auto') === 'Auto' &&
            (isAccessDenied(err) || isNotImplemented(err))
          ) {
            // Refused (a key of another account, a partition or server without the API): copy this object instead.
            retry.wrote = wroteBefore;
            uoeRefused = `UpdateObjectEncryption refused (${errorCode(err)}: ${errorMessage(err)}), copied instead`;
            if (isNotImplemented(err)) this.uoeUnavailable ??= uoeRefused;
            this.count('UpdateObjectEncryptionFallback');
            attempt--; // the fallback is not another inspection of a changed object
            continue;
          }
          // A refusal may be about an object that is no longer the one inspected
          // (e.g. rewritten unencrypted just before UpdateObjectEncryption): look again.
          if (!isTransient(err, DEFAULT_MAX_ATTEMPTS) && (await this.changedSince(s3, state))) {
            retry.wrote = wroteBefore;
            continue;
          }
          throw err;
        }
        operation = 'Verify';
        const check = await this.verify(s3, state, action.kind, result);
        if (typeof check === 'object') continue; // a newer version is current: bring that one to the target
        if (check) return this.failure(listed.key, operation, 'NotAtTargetAfterWrite', check);
        const notes = [
          ...(uoeRefused ? [uoeRefused] : []),
          ...(action.kind !== 'update-in-place' && retentionExpired(state, now)
            ? [
                `object-lock retention (${state.objectLockMode ?? 'mode unknown'}) expired on ${state.objectLockRetainUntilDate?.toISOString() ?? '?'}: not carried over`,
              ]
            : []),
        ];
        return {
          kind: 'encrypted',
          method: action.kind,
          bytes: state.size,
          ...(notes.length > 0 ? { detail: notes.join('; ') } : {}),
        };
      }
      return this.failure(
        listed.key,
        operation,
        'ObjectKeptChanging',
        `changed during each of ${MAX_INSPECTIONS} attempts`,
      );
    } catch (err) {
      const code = errorCode(err);
      // An outage or throttling that outlasted the SDK's retries: wait, then look at the object again.
      if (
        !this.fatal &&
        isTransient(err, DEFAULT_MAX_ATTEMPTS) &&
        performance.now() - retry.since < TRANSIENT_RETRY_MS
      ) {
        if (!(await backoff(retry.round++, signal))) return undefined;
        return this.processObject(s3, listed, signal, retry);
      }
      if (isKmsUnusable(err)) {
        // S3 names KMS errors of the source object's key (Decrypt) and of the
        // target key alike: only a failing target key ends the job.
        const targetProblem = await this.checkTargetKey();
        if (targetProblem) {
          this.fail(
            new JobError(
              targetProblem.reason,
              `${operation} ${listed.key}: ${code}: ${errorMessage(err)}; ${targetProblem.message}`,
            ),
          );
          return this.failure(listed.key, operation, code, errorMessage(err));
        }
        const source =
          state?.sse === 'aws:kms' || state?.sse === 'aws:kms:dsse'
            ? ` (the object is encrypted under ${state.kmsKeyId ?? 'a KMS key'})`
            : '';
        return this.failure(
          listed.key,
          operation,
          code,
          `KMS refused a key for this object, and the target key is usable: the object's current key is the likely cause${source}: ${errorMessage(err)}`,
        );
      }
      if (isJobLevel(err)) this.fail(new JobError(code, `${operation} ${listed.key}: ${code}: ${errorMessage(err)}`));
      return this.failure(listed.key, operation, code, errorMessage(err));
    }
  }

  /** Whether the object is no longer the inspected one (another ETag, version or LastModified, or gone). */
  private async changedSince(s3: S3Client, state: ObjectState): Promise<boolean> {
    this.count('HeadObject');
    try {
      const now = await headObject(s3, this.plan.bucket, state.key);
      return (
        now.etag !== state.etag ||
        (now.versionId ?? '') !== (state.versionId ?? '') ||
        (now.lastModified?.getTime() ?? 0) !== (state.lastModified?.getTime() ?? 0)
      );
    } catch (err) {
      return isNotFound(err);
    }
  }

  /** Whether the target key is still usable (DescribeKey), at most once a minute. */
  private async checkTargetKey(): Promise<JobError | undefined> {
    if (this.target.type === 'AES256') return undefined;
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

  /**
   * Checks that the write really left the object at the target: from the
   * write's response where it says, else with a HEAD. Some servers answer 200
   * to a copy that changed nothing; that must never count as encrypted.
   * 'changed': UpdateObjectEncryption re-keyed the inspected version, but
   * another one is current now.
   */
  private async verify(
    s3: S3Client,
    inspected: ObjectState,
    method: string,
    written: WrittenEncryption,
  ): Promise<{ changed: true } | string | undefined> {
    const key = inspected.key;
    let seen: { sse?: string; kmsKeyId?: string; bucketKeyEnabled?: boolean } = written;
    const kmsTarget = this.target.type !== 'AES256';
    // A job that names no bucket key keeps the object's; compared only where the server reported it.
    const bucketKey =
      this.target.bucketKeyEnabled ?? (kmsTarget && inspected.bucketKeyEnabled === true ? true : undefined);
    const responseSays = written.sse !== undefined && (!kmsTarget || written.kmsKeyId !== undefined);
    if (
      method === 'update-in-place' ||
      !responseSays ||
      (bucketKey !== undefined && written.bucketKeyEnabled === undefined)
    ) {
      this.count('HeadObject');
      const h = await headObject(s3, this.plan.bucket, key);
      if (
        method === 'update-in-place' &&
        (h.etag !== inspected.etag || (h.versionId ?? '') !== (inspected.versionId ?? ''))
      )
        return { changed: true };
      seen = h;
    }
    // The AWS managed key (no key named) could not be resolved before the first write: accept what S3 used, and remember it.
    if (
      kmsTarget &&
      !this.target.kmsKeyArn &&
      !this.target.kmsKeyId &&
      seen.sse === this.target.type &&
      seen.kmsKeyId
    ) {
      this.target = { ...this.target, kmsKeyArn: seen.kmsKeyId };
    }
    const state = { key, size: 0, etag: '', storageClass: 'STANDARD', metadata: {}, ...seen } as ObjectState;
    const target = bucketKey !== undefined ? { ...this.target, bucketKeyEnabled: bucketKey } : this.target;
    if (isAtTarget(state, target)) return undefined;
    return `the write succeeded but the object is ${seen.sse ?? 'unencrypted'}${seen.kmsKeyId ? ` with key ${seen.kmsKeyId}` : ''}${
      bucketKey !== undefined ? ` (bucket key ${String(Boolean(seen.bucketKeyEnabled))})` : ''
    }, not ${this.target.type}${this.target.kmsKeyArn ? ` with ${this.target.kmsKeyArn}` : ''}${bucketKey !== undefined ? ` (bucket key ${String(bucketKey)})` : ''}`;
  }

  private async readGrants(s3: S3Client, key: string, versionId: string | undefined) {
    try {
      return await getAclGrants(s3, this.plan.bucket, key, versionId);
    } catch (err) {
      const code = errorCode(err);
      if (code === 'NotImplemented' || code === 'AccessControlListNotSupported') {
        // The server keeps no ACLs: nothing to carry over, and no need to ask again.
        this.aclMode = 'skip';
        return undefined;
      }
      throw err;
    }
  }

  private failure(key: string, operation: string, code: string, message: string): Outcome {
    return { kind: 'failed', failure: { key, operation, code, message } };
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

/** An inventory's sorted rows as listed objects, each with its row. */
async function* fromInventory(inventory: RunInventory): AsyncGenerator<ListedObject & { row: InventoryEntry }> {
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
