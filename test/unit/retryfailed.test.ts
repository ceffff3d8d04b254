// Issue 20, scenario 3 (unit part): which retry a s3encryption.dev/retry-failed value asks
// for, the bounded list of failed keys, and the counters after a retry. The run against the
// real servers: test/controller/retry-failed.test.ts.
import { describe, expect, it } from 'vitest';
import type { EncryptionJob, EncryptionJobStatus } from '../../src/controller/api.js';
import { setCondition } from '../../src/controller/conditions.js';
import {
  afterRetry,
  answeredByFreshRun,
  FAILED_KEYS_BYTES,
  FailedKeys,
  rescanStatus,
  RETRY_FAILED_ANNOTATION,
  retryAsked,
  retryMessage,
} from '../../src/controller/retryfailed.js';

const complete = setCondition(undefined, {
  type: 'Complete',
  status: 'True',
  reason: 'CompletedWithFailures',
  message: '',
});
const progress = { scanned: 10, encrypted: 7, alreadyEncrypted: 0, skipped: 0, failed: 3, bytesEncrypted: 70 };

function job(
  value: string | undefined,
  status: EncryptionJobStatus,
  spec: Partial<EncryptionJob['spec']> = {},
): EncryptionJob {
  return {
    metadata: {
      name: 'j',
      namespace: 'n',
      generation: 2,
      ...(value ? { annotations: { [RETRY_FAILED_ANNOTATION]: value } } : {}),
    },
    spec: { bucket: 'b', encryption: { type: 'AES256' }, ...spec },
    status: { observedGeneration: 2, conditions: complete, progress, ...status },
  };
}
const kept = { failedKeys: { keys: ['a', 'b', 'c'] } };
const counted = (c: Partial<typeof progress>, vanished = 0) => ({
  counters: { scanned: 0, encrypted: 0, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 0, ...c },
  skippedByReason: { archived: 0, filtered: 0, vanished, unsupported: 0 },
});

describe('scenario 3: retry the failures of a finished job (which retry a value asks for)', () => {
  it('a new value on a Complete job with its failed keys kept: exactly those keys', () => {
    expect(retryAsked(job('1', kept))).toEqual({ value: '1', kind: 'keys', keys: ['a', 'b', 'c'] });
  });
  it('no value, or the value already handled: nothing', () => {
    expect(retryAsked(job(undefined, kept))).toBeUndefined();
    expect(retryAsked(job('1', { ...kept, retryFailed: { handled: '1' } }))).toBeUndefined();
    expect(retryAsked(job('2', { ...kept, retryFailed: { handled: '1' } }))?.kind).toBe('keys');
  });
  it('a job not Complete at its generation waits (a run is going on); a Failed job is answered', () => {
    expect(retryAsked(job('1', { ...kept, conditions: [] }))).toBeUndefined();
    expect(retryAsked(job('1', { ...kept, observedGeneration: 1 }))).toBeUndefined();
    const failed = setCondition(undefined, { type: 'Failed', status: 'True', reason: 'TooManyFailures', message: '' });
    expect(retryAsked(job('1', { ...kept, conditions: failed }))?.kind).toBe('nothing');
  });
  it('no failures, or a dry run: nothing to retry, answered', () => {
    expect(retryAsked(job('1', { progress: { ...progress, failed: 0 } }))?.kind).toBe('nothing');
    expect(retryAsked(job('1', kept, { dryRun: true }))?.kind).toBe('nothing');
  });
  it('keys not all kept (overflow, a status from before, a sharded job): a re-scan, saying why', () => {
    expect(retryAsked(job('1', { failedKeys: { keys: [], overflow: true } }))).toMatchObject({
      kind: 'rescan',
      why: expect.stringContaining('more failed keys than fit') as string,
    });
    expect(retryAsked(job('1', {}))).toMatchObject({ kind: 'rescan', why: '0 of the 3 failed keys are kept' });
    expect(retryAsked(job('1', { failedKeys: { keys: ['a'] } }))?.kind).toBe('rescan');
    const shards = [{ index: 0, startAfter: '', phase: 'Complete' as const }];
    expect(retryAsked(job('1', { ...kept, shards }))).toMatchObject({
      kind: 'rescan',
      why: expect.stringContaining('sharded') as string,
    });
  });
  it('a run from the start answers a value not handled yet', () => {
    expect(answeredByFreshRun(job('1', {}), 'T').retryFailed?.handled).toBe('1');
    expect(answeredByFreshRun(job('1', { retryFailed: { handled: '1', message: 'm' } }), 'T')).toEqual({});
  });
  it('a re-scan drops the checkpoint and shards, keeps their open uploads, and is no longer Complete', () => {
    const shards = [
      { index: 0, startAfter: '', phase: 'Complete' as const, openUploads: [{ key: 'k', uploadId: 'u' }] },
    ];
    const j = job('1', { shards, checkpoint: { startAfter: 'z', openUploads: [] } });
    const ask = retryAsked(j)!;
    const s = rescanStatus(j, ask, 'T');
    expect(s.checkpoint).toMatchObject({
      startAfter: null,
      progress: null,
      openUploads: [{ key: 'k', uploadId: 'u' }],
    });
    expect(s).toMatchObject({ shards: null, shardPlan: null, failedKeys: null, retryFailed: { handled: '1' } });
    expect(s.conditions?.find((c) => c.type === 'Complete')?.status).toBe('False');
  });
});

describe('scenario 3: the failed keys kept, bounded', () => {
  it('keeps keys while they fit; past the budget keeps none and says so (a retry then re-scans)', () => {
    const f = new FailedKeys();
    f.add('a');
    expect(f.take()).toEqual({ keys: ['a'] });
    expect(f.take()).toBeUndefined();
    const long = 'k'.repeat(1000);
    for (let i = 0; i < FAILED_KEYS_BYTES / 1000; i++) f.add(`${long}${i}`);
    expect(f.status()).toEqual({ keys: [], overflow: true });
    expect(JSON.stringify(f.status()).length).toBeLessThan(100);
  });
  it('a resumed run keeps the earlier failures up to its checkpoint only; a run from the start none', () => {
    const prev = { keys: ['a', 'm', 'z'] };
    expect(FailedKeys.resuming(prev, 'm').status()).toEqual({ keys: ['a', 'm'] });
    expect(FailedKeys.resuming(prev, undefined).status()).toEqual({ keys: [] });
    expect(FailedKeys.resuming({ keys: [], overflow: true }, 'm').status().overflow).toBe(true);
  });
});

describe('scenario 3: what a retry changes in the counters', () => {
  it('the retried keys move from failed to what the retry found; nothing is counted twice', () => {
    const after = afterRetry(
      progress,
      counted({ scanned: 3, encrypted: 1, failed: 1, skipped: 1, bytesEncrypted: 5 }, 1),
    );
    expect(after).toMatchObject({ scanned: 10, encrypted: 8, failed: 1, skipped: 1, bytesEncrypted: 75, total: 10 });
    expect(after.skippedByReason).toEqual({ vanished: 1 });
    // A retry cut short: the keys it did not reach stay failed.
    expect(afterRetry(progress, counted({ scanned: 1, encrypted: 1 })).failed).toBe(2);
  });
  it('says what it did', () => {
    expect(retryMessage(12, counted({ scanned: 12, encrypted: 10, failed: 1, skipped: 1 }, 1))).toBe(
      'retry of 12 failed keys: 10 encrypted, 1 still failed, 1 gone',
    );
    expect(retryMessage(3, counted({ scanned: 1, alreadyEncrypted: 1 }))).toBe(
      'retry of 3 failed keys: 1 already encrypted, 2 not looked at',
    );
  });
});
