// Which jobs run as shards: the choice must leave every unsharded job exactly as before.
import { describe, expect, it } from 'vitest';
import type { EncryptionJob } from '../../src/controller/api.js';
import { selectionFingerprint } from '../../src/controller/checkpoint.js';
import { usesShards } from '../../src/controller/shardrun.js';

function job(spec: Partial<EncryptionJob['spec']>, status?: EncryptionJob['status']): EncryptionJob {
  return {
    metadata: { name: 'j', namespace: 'n', generation: 1 },
    spec: { bucket: 'my-bucket', encryption: { type: 'AES256' }, ...spec },
    ...(status ? { status } : {}),
  };
}
const shard = { index: 0, startAfter: '', phase: 'Pending' as const };

describe('usesShards', () => {
  it('parallelism absent or 1 and no plan: the unsharded run, as before', () => {
    expect(usesShards(job({}))).toBe(false);
    expect(usesShards(job({ parallelism: 1 }))).toBe(false);
  });
  it('parallelism above 1: sharded, a dry run too', () => {
    expect(usesShards(job({ parallelism: 4 }))).toBe(true);
    expect(usesShards(job({ parallelism: 4, dryRun: true }))).toBe(true);
  });
  it("a dry run goes by its own plan, never the real runs' (and the other way round)", () => {
    const spec = { parallelism: 1 };
    const fp = selectionFingerprint(job(spec).spec);
    const now = new Date().toISOString();
    const real = { shards: [shard], shardPlan: { spec: fp, createdAt: now } };
    const dry = { dryRunShards: [shard], dryRunShardPlan: { spec: fp, createdAt: now } };
    expect(usesShards(job({ ...spec, dryRun: true }, real))).toBe(false);
    expect(usesShards(job({ ...spec, dryRun: true }, dry))).toBe(true);
    expect(usesShards(job(spec, dry))).toBe(false);
  });
  it('a plan for this selection keeps the job sharded when parallelism drops to 1; a plan for another does not', () => {
    const spec = { parallelism: 1 };
    const fp = selectionFingerprint(job(spec).spec);
    const now = new Date().toISOString();
    expect(usesShards(job(spec, { shards: [shard], shardPlan: { spec: fp, createdAt: now } }))).toBe(true);
    expect(usesShards(job(spec, { shards: [shard], shardPlan: { spec: 'other', createdAt: now } }))).toBe(false);
  });
});
