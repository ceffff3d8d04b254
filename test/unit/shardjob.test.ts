// spec.maxObjects shared by a job's shards (JobAllowance): one pool, and what a
// stopped shard took above its checkpoint comes back to that shard first.
import { describe, expect, it } from 'vitest';
import type { ShardStatus } from '../../src/controller/api.js';
import { JobAllowance } from '../../src/controller/shardjob.js';

const shard = (index: number, scanned: number, budgetHeld?: number): ShardStatus => ({
  index,
  startAfter: '',
  phase: 'Pending',
  checkpointProgress: { scanned, encrypted: scanned, alreadyEncrypted: 0, skipped: 0, failed: 0, bytesEncrypted: 0 },
  ...(budgetHeld !== undefined ? { budgetHeld } : {}),
});

describe('JobAllowance', () => {
  it('the pool is maxObjects less what is under the checkpoints and what the shards hold', () => {
    const a = shard(0, 3, 2);
    const b = shard(1, 1);
    const job = new JobAllowance(10, [a, b]);
    expect(job.remaining).toBe(4);
    const forA = job.forShard(a);
    const forB = job.forShard(b);
    // B spends the whole pool first...
    for (let i = 0; i < 4; i++) expect(forB.take()).toBe(true);
    expect(forB.take()).toBe(false);
    // ...and A still gets back the 2 objects it held (a stopped run may have changed them), then no more.
    expect(forA.take()).toBe(true);
    expect(forA.take()).toBe(true);
    expect(forA.take()).toBe(false);
    // 3 + 1 under the checkpoints, 2 + 4 taken now: 10 in all.
    expect(job.remaining).toBe(0);
  });

  it('a run that stops holds what it took beyond what its checkpoint passed', () => {
    const s = shard(0, 0);
    const job = new JobAllowance(100, [s]);
    const forS = job.forShard(s);
    for (let i = 0; i < 7; i++) forS.take();
    expect(forS.stillHeld(4)).toBe(3);
    // A run stopped again before it re-listed what it held keeps holding it.
    const again = new JobAllowance(100, [shard(0, 4, 3)]).forShard(shard(0, 4, 3));
    again.take();
    expect(again.stillHeld(0)).toBe(3);
  });

  it('never below zero when the checkpoints are past maxObjects (maxObjects lowered)', () => {
    expect(new JobAllowance(5, [shard(0, 8)]).remaining).toBe(0);
  });
});
