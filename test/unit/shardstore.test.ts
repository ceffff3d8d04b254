// Shards as objects (shardstore.ts), the pure part: names and labels within
// Kubernetes' limits, the status patch that leaves nothing of an earlier write,
// and reading a job's shard objects back into its status (hydrate): a whole plan
// is the job's shards, anything else is stale and the job plans again.
import { describe, expect, it } from 'vitest';
import type { EncryptionJob, EncryptionShard, ShardStatus } from '../../src/controller/api.js';
import {
  hydrate,
  jobLabelValue,
  shardName,
  shardObject,
  shardStatusPatch,
  shardWriteIntervalMs,
  toShardStatus,
} from '../../src/controller/shardstore.js';
import { OpenUploads } from '../../src/engine/object/uploads.js';

const PLAN = 'v2:0123456789abcdef';

function job(status: EncryptionJob['status'] = {}, uid = 'uid-1'): EncryptionJob {
  return {
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { namespace: 'ns', name: 'j', uid },
    spec: { bucket: 'b', encryption: { type: 'AES256' } },
    status,
  };
}

const range = (index: number, n: number): ShardStatus => ({
  index,
  startAfter: index === 0 ? '' : `k${index}`,
  ...(index < n - 1 ? { endAt: `k${index + 1}` } : {}),
  phase: 'Pending',
});

function objects(owner: EncryptionJob, n: number, plan = PLAN, dryRun = false): EncryptionShard[] {
  return Array.from({ length: n }, (_, i) => ({
    ...shardObject(owner, range(i, n), plan, dryRun),
    status: shardStatusPatch({ ...range(i, n), phase: 'Running', checkpoint: `k${i}x` }),
  }));
}

describe('shard objects', () => {
  it('names and labels fit Kubernetes limits for the longest job names', () => {
    const long = 'a'.repeat(253);
    expect(shardName('j', 7, false)).toBe('j-shard-7');
    expect(shardName('j', 7, true)).toBe('j-dry-7');
    expect(shardName(long, 1023, false).length).toBeLessThanOrEqual(253);
    expect(shardName(long, 1023, false)).not.toBe(shardName(`${'a'.repeat(252)}b`, 1023, false));
    expect(jobLabelValue('j')).toBe('j');
    expect(jobLabelValue(long).length).toBeLessThanOrEqual(63);
  });

  it('is owned by its job (controller reference) and carries the range and the plan', () => {
    const o = shardObject(job(), { index: 2, startAfter: 'a', endAt: 'b', phase: 'Pending' }, PLAN, false);
    expect(o.metadata?.ownerReferences).toEqual([
      { apiVersion: 's3encryption.dev/v1alpha1', kind: 'EncryptionJob', name: 'j', uid: 'uid-1', controller: true },
    ]);
    expect(o.metadata?.labels?.['s3encryption.dev/job']).toBe('j');
    expect(o.spec).toEqual({ job: 'j', index: 2, startAfter: 'a', endAt: 'b', plan: PLAN });
  });

  it('a status patch names every field, so a merge patch leaves nothing of an earlier write', () => {
    const patch = shardStatusPatch({ index: 0, startAfter: '', phase: 'Complete' });
    expect(patch).toMatchObject({
      phase: 'Complete',
      checkpoint: null,
      openUploads: null,
      budgetHeld: null,
      message: null,
      checkpointProgress: null,
    });
    const back = toShardStatus({ ...shardObject(job(), range(0, 1), PLAN, false), status: patch });
    expect(back).toEqual({ index: 0, startAfter: '', phase: 'Complete' });
  });

  it('hydrate: a whole plan becomes the job status shards, in index order', () => {
    const owner = job({ shardPlan: { spec: PLAN, createdAt: 'now', shards: 3 } });
    const { job: view, stale } = hydrate(owner, objects(owner, 3).reverse());
    expect(stale).toEqual([]);
    expect(view.status?.shards?.map((s) => [s.index, s.checkpoint])).toEqual([
      [0, 'k0x'],
      [1, 'k1x'],
      [2, 'k2x'],
    ]);
  });

  it('hydrate: a plan cut short, of another selection, or of another job (same name) is not the job shards', () => {
    const owner = job({ shardPlan: { spec: PLAN, createdAt: 'now', shards: 3 } });
    const short = hydrate(owner, objects(owner, 2));
    expect(short.job.status?.shards).toBeUndefined();
    expect(short.job.status?.shardPlan).toBeNull();
    expect(short.stale).toHaveLength(2);
    const other = hydrate(owner, objects(owner, 3, 'v2:ffffffffffffffff'));
    expect(other.job.status?.shards).toBeUndefined();
    expect(other.stale).toHaveLength(3);
    // An earlier job of the same name: not ours (owner uid), neither shards nor stale.
    const earlier = hydrate(owner, objects(job({}, 'uid-0'), 3));
    expect(earlier.job.status?.shards).toBeUndefined();
    expect(earlier.stale).toEqual([]);
  });

  it("hydrate: a dry run's shards are its own; the list an earlier operator kept is kept to carry over", () => {
    const owner = job({
      shardPlan: { spec: PLAN, createdAt: 'now', shards: 2 },
      dryRunShardPlan: { spec: PLAN, createdAt: 'now', shards: 2 },
    });
    const { job: view } = hydrate(owner, [...objects(owner, 2), ...objects(owner, 2, PLAN, true)]);
    expect(view.status?.shards).toHaveLength(2);
    expect(view.status?.dryRunShards).toHaveLength(2);
    const legacy = [{ index: 0, startAfter: '', phase: 'Pending' as const, checkpoint: 'old' }];
    const carried = hydrate(job({ shards: legacy, shardPlan: { spec: PLAN, createdAt: 'now' } }), []);
    expect(carried.job.status?.shards).toEqual(legacy);
  });

  it('the shards of one job add up to about 8 writes a second, each at most once a second and at least every 30 s', () => {
    expect(shardWriteIntervalMs(1)).toBe(1000);
    expect(shardWriteIntervalMs(16)).toBe(2000);
    expect(shardWriteIntervalMs(64)).toBe(8000);
    expect(shardWriteIntervalMs(1024)).toBe(30_000);
  });
});

describe('OpenUploads.slot (Plan.maxOpenUploads)', () => {
  it('at most maxOpen slots at once; a released slot goes to the next waiting copy', async () => {
    const uploads = new OpenUploads([], undefined, 2);
    const a = await uploads.slot();
    const b = await uploads.slot();
    let third = false;
    const waiting = uploads.slot().then((release) => {
      third = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    a();
    a(); // a second release of the same slot gives nothing back twice
    const c = await waiting;
    expect(third).toBe(true);
    let fourth = false;
    void uploads.slot().then(() => (fourth = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(false);
    b();
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(true);
    c();
  });
});
