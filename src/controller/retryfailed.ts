// Retrying the failures of a finished job. A Complete job whose runs failed on
// some keys keeps those keys in its status (bounded), and a new value of the
// annotation s3encryption.dev/retry-failed asks the operator to look at exactly
// them again. Annotations do not bump the generation, so the value acted on is
// remembered in status.retryFailed.handled. Pure, so every case is unit-tested;
// retryrun.ts runs the retry.
import { compareKeys } from '../engine/keys/shards.js';
import type { Progress, RunResult } from '../engine/index.js';
import type { EncryptionJob, EncryptionJobStatus, FailedKeysStatus, JobProgress } from './api.js';
import { isTrue, setCondition } from './conditions.js';

export const RETRY_FAILED_ANNOTATION = 's3encryption.dev/retry-failed';

/**
 * Bytes of keys kept in status.failedKeys at most (as JSON): etcd holds the job,
 * so the list never grows with the work. Beyond it a retry is a re-scan.
 */
export const FAILED_KEYS_BYTES = 32 * 1024;

/** The failed keys of a run and the runs it resumes, as the checkpoint passes them, within FAILED_KEYS_BYTES. */
export class FailedKeys {
  private keys: string[];
  private overflow: boolean;
  private bytes: number;
  /** Changed since the last `take()`. */
  private changed = false;

  constructor(initial?: FailedKeysStatus | null) {
    this.keys = [...(initial?.keys ?? [])];
    this.overflow = initial?.overflow ?? false;
    this.bytes = this.keys.reduce((n, k) => n + cost(k), 0);
  }

  /**
   * What a run resuming after `startAfter` keeps of the earlier runs' failed keys: those up to it
   * (the keys after it are looked at again). From the start, none.
   */
  static resuming(prev: FailedKeysStatus | null | undefined, startAfter: string | undefined): FailedKeys {
    if (startAfter === undefined || !prev) return new FailedKeys();
    return new FailedKeys({
      keys: prev.keys.filter((k) => compareKeys(k, startAfter) <= 0),
      ...(prev.overflow ? { overflow: true } : {}),
    });
  }

  add(key: string): void {
    if (this.overflow) return;
    this.changed = true;
    if (this.bytes + cost(key) > FAILED_KEYS_BYTES) {
      // Past the budget the list cannot name every failure: keep none, a retry re-scans.
      this.overflow = true;
      this.keys = [];
      return;
    }
    this.keys.push(key);
    this.bytes += cost(key);
  }

  status(): FailedKeysStatus {
    return this.overflow ? { keys: [], overflow: true } : { keys: [...this.keys] };
  }

  /** The status to write if it changed since the last call. */
  take(): FailedKeysStatus | undefined {
    if (!this.changed) return undefined;
    this.changed = false;
    return this.status();
  }
}

/** A key's share of the budget: its JSON string and a comma. */
function cost(key: string): number {
  return Buffer.byteLength(JSON.stringify(key)) + 1;
}

/**
 * A run from the start looks at every key: a retry-failed value not handled yet (set before the
 * job was created, or while an earlier generation ran) is answered by it.
 */
export function answeredByFreshRun(job: EncryptionJob, now: string): EncryptionJobStatus {
  const value = job.metadata?.annotations?.[RETRY_FAILED_ANNOTATION];
  if (!value || value === job.status?.retryFailed?.handled) return {};
  return { retryFailed: { handled: value, message: 'a run from the start looks at every key', time: now } };
}

/** What a new retry-failed value asks for, decided on the job as it is. */
export type RetryAsk =
  | { value: string; kind: 'keys'; keys: string[] }
  /** The failed keys are not all known: the whole selection is looked at again from the start. */
  | { value: string; kind: 'rescan'; why: string }
  /** There is nothing to retry: the value is answered in status and an event. */
  | { value: string; kind: 'nothing'; why: string };

/**
 * The retry a job asks for, if any: a value of the annotation not handled yet, on a job that is
 * Complete at its generation. While a run goes on a new value waits (a run from the start, which
 * looks at every key anyway, marks it handled); on a Failed job it is answered: nothing to retry.
 */
export function retryAsked(job: EncryptionJob): RetryAsk | undefined {
  const value = job.metadata?.annotations?.[RETRY_FAILED_ANNOTATION];
  const status = job.status ?? {};
  if (!value || value === status.retryFailed?.handled) return undefined;
  if (status.observedGeneration !== (job.metadata?.generation ?? 0)) return undefined;
  if (isTrue(status.conditions, 'Failed'))
    return { value, kind: 'nothing', why: 'the job Failed: fix the cause, then edit its spec to run it again' };
  if (!isTrue(status.conditions, 'Complete')) return undefined;
  if (job.spec.dryRun)
    return { value, kind: 'nothing', why: 'a dry run changes nothing: there is no failure to retry' };
  const failed = status.progress?.failed ?? 0;
  if (failed === 0) return { value, kind: 'nothing', why: 'the job has no failed keys' };
  if ((status.shards?.length ?? 0) > 0 || status.shardPlan)
    return { value, kind: 'rescan', why: 'a sharded job does not keep its failed keys' };
  const kept = status.failedKeys;
  if (kept?.overflow)
    return { value, kind: 'rescan', why: `more failed keys than fit in status (${FAILED_KEYS_BYTES} bytes)` };
  if (!kept || kept.keys.length !== failed)
    return { value, kind: 'rescan', why: `${kept?.keys.length ?? 0} of the ${failed} failed keys are kept` };
  return { value, kind: 'keys', keys: kept.keys };
}

/**
 * The job's counters after a retry looked at some of its failed keys (`retry`: the counters of
 * those keys): they leave `failed` and count again by what the retry found; the keys it did not
 * reach stay failed, and nothing is counted twice (scanned stays).
 */
export function afterRetry(before: JobProgress, retry: Pick<Progress, 'counters' | 'skippedByReason'>): JobProgress {
  const c = retry.counters;
  const byReason = { ...(before.skippedByReason ?? {}) };
  for (const [reason, k] of Object.entries(retry.skippedByReason))
    if (k > 0) byReason[reason] = (byReason[reason] ?? 0) + k;
  const out: JobProgress = {
    ...before,
    encrypted: before.encrypted + c.encrypted,
    alreadyEncrypted: before.alreadyEncrypted + c.alreadyEncrypted,
    skipped: before.skipped + c.skipped,
    failed: Math.max(0, before.failed - c.scanned) + c.failed,
    bytesEncrypted: before.bytesEncrypted + c.bytesEncrypted,
    skippedByReason: byReason,
  };
  out.total = out.scanned;
  out.summary = `${out.encrypted + out.alreadyEncrypted}/${out.scanned}`;
  return out;
}

/** "retry of 12 failed keys: 10 encrypted, 1 still failed, 1 gone". */
export function retryMessage(n: number, r: Pick<RunResult, 'counters' | 'skippedByReason'>): string {
  const c = r.counters;
  const gone = r.skippedByReason.vanished;
  const parts = [
    c.encrypted > 0 ? `${c.encrypted} encrypted` : '',
    c.alreadyEncrypted > 0 ? `${c.alreadyEncrypted} already encrypted` : '',
    c.failed > 0 ? `${c.failed} still failed` : '',
    gone > 0 ? `${gone} gone` : '',
    c.skipped - gone > 0 ? `${c.skipped - gone} skipped` : '',
    n - c.scanned > 0 ? `${n - c.scanned} not looked at` : '',
  ].filter((p) => p !== '');
  return `retry of ${n} failed keys: ${parts.length > 0 ? parts.join(', ') : 'nothing changed'}`;
}

/**
 * The status that makes a Complete job run again over its whole selection (the failed keys are not
 * all known): its checkpoint and shard plan are dropped, the open uploads they hold kept for the
 * next run to abort, and the request is marked handled with why.
 */
export function rescanStatus(job: EncryptionJob, ask: RetryAsk, now: string): EncryptionJobStatus {
  const status = job.status ?? {};
  const gen = job.metadata?.generation ?? 0;
  const openUploads = [
    ...(status.checkpoint?.openUploads ?? []),
    ...(status.shards ?? []).flatMap((s) => s.openUploads ?? []),
  ];
  const why = ask.kind === 'rescan' ? ask.why : '';
  const message = `retry of the failed keys asked (${RETRY_FAILED_ANNOTATION}: ${ask.value}): ${why}, so the whole selection is looked at again from the start`;
  const conditions = setCondition(status.conditions, {
    type: 'Complete',
    status: 'False',
    reason: 'RetryingFailures',
    message,
    observedGeneration: gen,
  });
  return {
    phase: 'Pending',
    conditions,
    checkpoint: { startAfter: null, spec: null, progress: null, updatedAt: now, openUploads },
    ...((status.shards?.length ?? 0) > 0 || status.shardPlan
      ? { shards: null, shardPlan: null, shardCounts: null }
      : {}),
    failedKeys: null,
    retryFailed: { handled: ask.value, message, time: now },
  };
}
