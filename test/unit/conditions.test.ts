// What a finished run says (completedStatus): the same helper for the unsharded, sharded and worker
// runs, so each of their wordings is pinned here exactly as a user reads it in kubectl.
import { describe, expect, it } from 'vitest';
import type { Condition, JobProgress } from '../../src/controller/api.js';
import { completedStatus, findCondition, setCondition } from '../../src/controller/conditions.js';

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
    // Failed and Suspended stay False (since 09:00) and say why: the job completed, not "Running".
    expect(findCondition(out.conditions, 'Failed')).toEqual({
      ...running[2],
      reason: 'Completed',
      observedGeneration: 4,
    });
    expect(findCondition(out.conditions, 'Suspended')).toEqual({
      ...running[3],
      reason: 'Completed',
      observedGeneration: 4,
    });
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

/**
 * kstatus (sigs.k8s.io/cli-utils pkg/kstatus, what Flux wait/healthChecks and kpt read) looks only at
 * observedGeneration and two conditions: Stalled=True -> Failed, Reconciling=True -> InProgress,
 * neither -> Current. Its rules, as a function of the conditions we write.
 */
function kstatus(conditions: Condition[]): 'Failed' | 'InProgress' | 'Current' {
  if (findCondition(conditions, 'Stalled')?.status === 'True') return 'Failed';
  if (findCondition(conditions, 'Reconciling')?.status === 'True') return 'InProgress';
  return 'Current';
}

describe('Reconciling and Stalled follow the batch/v1 Job conditions (kstatus)', () => {
  const set = (list: Condition[], type: Condition['type'], status: 'True' | 'False', reason: string, message = '') =>
    setCondition(list, { type, status, reason, message, observedGeneration: 3 }, now);

  it('a running job is Reconciling (InProgress) with what it is doing; a job waiting for its Secret too', () => {
    const list = set(running, 'Progressing', 'True', 'Encrypting', '120/400 objects');
    expect(findCondition(list, 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'Encrypting',
      message: '120/400 objects',
    });
    expect(findCondition(list, 'Stalled')).toMatchObject({ status: 'False', reason: 'Encrypting' });
    expect(kstatus(list)).toBe('InProgress');
    const waiting = set(list, 'Progressing', 'False', 'SecretNotFound', 'Secret "s3" not found');
    expect(findCondition(waiting, 'Reconciling')).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
    expect(kstatus(waiting)).toBe('InProgress');
  });

  it('a Failed job is Stalled with the failure (kstatus Failed), and Complete says Failed, not Running', () => {
    let list = set(running, 'Failed', 'True', 'WorkersNotAllowed', 'namespace "t" has not allowed worker pods');
    list = set(list, 'Progressing', 'False', 'WorkersNotAllowed', 'namespace "t" has not allowed worker pods');
    expect(findCondition(list, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'WorkersNotAllowed',
      message: 'namespace "t" has not allowed worker pods',
      observedGeneration: 3,
    });
    expect(findCondition(list, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(findCondition(list, 'Complete')).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(kstatus(list)).toBe('Failed');
  });

  it('a Complete job is neither (Current); Failed says Completed; a later failure of a new generation flips Complete', () => {
    const done = completedStatus(running, {
      progress: progress({ failed: 2 }),
      dryRun: false,
      warnings: [],
      failuresAt: 'status.recentFailures',
      generation: 3,
    }).conditions;
    expect(findCondition(done, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(findCondition(done, 'Stalled')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(findCondition(done, 'Failed')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(kstatus(done)).toBe('Current');
    // A spec edit refused before any run (tenancy): Failed True, and Complete no longer True.
    const refused = set(done, 'Failed', 'True', 'IdentityNotAllowed', 'no Secret');
    expect(findCondition(refused, 'Complete')).toMatchObject({ status: 'False', reason: 'Failed' });
    expect(kstatus(refused)).toBe('Failed');
  });

  it('a Suspended job is neither; lastTransitionTime of Reconciling moves only when it flips', () => {
    const runningList = set(running, 'Progressing', 'True', 'Encrypting');
    const at = findCondition(runningList, 'Reconciling')?.lastTransitionTime;
    const later = setCondition(
      runningList,
      { type: 'Progressing', status: 'True', reason: 'Retrying', message: 'x', observedGeneration: 3 },
      new Date('2026-12-02T11:00:00Z'),
    );
    expect(findCondition(later, 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'Retrying',
      lastTransitionTime: at,
    });
    const suspended = set(later, 'Suspended', 'True', 'Suspended', 'spec.suspend is true');
    expect(findCondition(suspended, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(kstatus(suspended)).toBe('Current');
  });
});
