// What a finished run says (completedStatus): the same helper for the unsharded, sharded and worker
// runs, so each of their wordings is pinned here exactly as a user reads it in kubectl.
import { describe, expect, it } from 'vitest';
import type { Condition, JobProgress } from '../../src/controller/api.js';
import { completedStatus, findCondition } from '../../src/controller/conditions.js';

const progress = (p: Partial<JobProgress>): JobProgress => ({
  scanned: 10,
  encrypted: 6,
  alreadyEncrypted: 3,
  skipped: 1,
  failed: 0,
  bytesEncrypted: 600,
  ...p,
});
const now = new Date('2026-12-02T10:00:00Z');
const running: Condition[] = (['Progressing', 'Complete', 'Failed', 'Suspended'] as const).map((type) => ({
  type,
  status: type === 'Progressing' ? 'True' : 'False',
  reason: type === 'Progressing' ? 'Encrypting' : 'Running',
  message: '',
  observedGeneration: 3,
  lastTransitionTime: '2026-12-02T09:00:00Z',
}));

describe('completedStatus', () => {
  it('unsharded run, nothing failed: Progressing False/Completed, Complete True/Completed, one Normal event', () => {
    const out = completedStatus(
      running,
      { progress: progress({}), dryRun: false, warnings: [], failuresAt: 'status.recentFailures', generation: 4 },
      now,
    );
    const msg = '6 encrypted, 3 already encrypted, 1 skipped, 0 failed of 10 objects';
    expect(out.message).toBe(msg);
    expect(findCondition(out.conditions, 'Progressing')).toEqual({
      type: 'Progressing',
      status: 'False',
      reason: 'Completed',
      message: msg,
      observedGeneration: 4,
      lastTransitionTime: '2026-12-02T10:00:00Z',
    });
    expect(findCondition(out.conditions, 'Complete')).toEqual({
      type: 'Complete',
      status: 'True',
      reason: 'Completed',
      message: msg,
      observedGeneration: 4,
      lastTransitionTime: '2026-12-02T10:00:00Z',
    });
    // The conditions it does not own stay as they were.
    expect(findCondition(out.conditions, 'Failed')).toEqual(running[2]);
    expect(findCondition(out.conditions, 'Suspended')).toEqual(running[3]);
    expect(out.events).toEqual([{ type: 'Normal', reason: 'Completed', message: msg }]);
  });

  it('failures: CompletedWithFailures, the Complete message points where the failures are, a Warning event', () => {
    const out = completedStatus(running, {
      progress: progress({ encrypted: 4, failed: 2 }),
      dryRun: false,
      where: 'in 3 shards (worker pods)',
      warnings: [],
      failuresAt: "the shards' progress",
      generation: 3,
    });
    const msg = '4 encrypted, 3 already encrypted, 1 skipped, 2 failed of 10 objects in 3 shards (worker pods)';
    expect(out.message).toBe(msg);
    expect(findCondition(out.conditions, 'Progressing')?.message).toBe(msg);
    expect(findCondition(out.conditions, 'Complete')).toMatchObject({
      status: 'True',
      reason: 'CompletedWithFailures',
      message: `${msg}; see the shards' progress`,
    });
    expect(out.events).toEqual([{ type: 'Warning', reason: 'Completed', message: msg }]);
  });

  it('sharded run: where, then the maxObjects note, then warnings; one CompletedWithWarning event each, before Completed', () => {
    const out = completedStatus(running, {
      progress: progress({ failed: 1 }),
      dryRun: false,
      where: 'in 4 shards',
      note: '(spec.maxObjects 10 reached)',
      warnings: ['counting noncurrent versions failed', 'inventory is old'],
      failuresAt: 'status.recentFailures',
      generation: 3,
    });
    const msg =
      '6 encrypted, 3 already encrypted, 1 skipped, 1 failed of 10 objects in 4 shards (spec.maxObjects 10 reached); warning: counting noncurrent versions failed; inventory is old';
    expect(out.message).toBe(msg);
    expect(findCondition(out.conditions, 'Complete')?.message).toBe(`${msg}; see status.recentFailures`);
    expect(out.events).toEqual([
      { type: 'Warning', reason: 'CompletedWithWarning', message: 'counting noncurrent versions failed' },
      { type: 'Warning', reason: 'CompletedWithWarning', message: 'inventory is old' },
      { type: 'Warning', reason: 'Completed', message: msg },
    ]);
  });

  it('dry run: what would change, DryRunCompleted (also with failures), zeros when nothing was counted', () => {
    const out = completedStatus(running, {
      progress: progress({ wouldEncrypt: 6, wouldEncryptBytes: 600, estimatedCostUSD: '0.0001', failed: 1 }),
      dryRun: true,
      where: 'in 2 shards',
      warnings: [],
      failuresAt: 'status.recentFailures',
      generation: 3,
    });
    const msg = 'dry run: 6 of 10 objects would change (600 bytes, about $0.0001) in 2 shards';
    expect(out.message).toBe(msg);
    expect(findCondition(out.conditions, 'Complete')).toMatchObject({
      reason: 'DryRunCompleted',
      message: `${msg}; see status.recentFailures`,
    });
    const empty = completedStatus(running, {
      progress: progress({}),
      dryRun: true,
      warnings: [],
      failuresAt: 'status.recentFailures',
      generation: 3,
    });
    expect(empty.message).toBe('dry run: 0 of 10 objects would change (0 bytes, about $0)');
    expect(findCondition(empty.conditions, 'Complete')?.reason).toBe('DryRunCompleted');
  });

  it('a Complete already True keeps its lastTransitionTime (a resumed job that completes again)', () => {
    const before = completedStatus(
      running,
      {
        progress: progress({}),
        dryRun: false,
        warnings: [],
        failuresAt: 'status.recentFailures',
        generation: 3,
      },
      new Date('2026-12-02T11:00:00Z'),
    );
    const again = completedStatus(
      before.conditions,
      {
        progress: progress({}),
        dryRun: false,
        warnings: [],
        failuresAt: 'status.recentFailures',
        generation: 3,
      },
      new Date('2026-12-02T12:00:00Z'),
    );
    expect(findCondition(again.conditions, 'Complete')?.lastTransitionTime).toBe('2026-12-02T11:00:00Z');
  });
});
