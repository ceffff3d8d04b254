// Per-shard gauges from the EncryptionShard objects: set from what each shard's
// status says, and removed when a shard object goes (no unbounded labels).
import { describe, expect, it } from 'vitest';
import type { EncryptionShard, ShardStatus } from '../../src/controller/api.js';
import { shardObject, shardStatusPatch } from '../../src/controller/shardstore.js';
import { ShardMetrics, shardRatio } from '../../src/controller/shard-metrics.js';
import { Metrics } from '../../src/metrics.js';

const progress = (scanned: number, encrypted: number, failed = 0, total?: number) => ({
  scanned,
  encrypted,
  alreadyEncrypted: 0,
  skipped: 0,
  failed,
  bytesEncrypted: 0,
  ...(total !== undefined ? { total } : {}),
});

const owner = {
  apiVersion: 's3encryption.dev/v1alpha1',
  kind: 'EncryptionJob',
  metadata: { namespace: 'ns', name: 'j', uid: 'u1' },
  spec: { bucket: 'b', encryption: { type: 'AES256' as const } },
};

/** The shard objects of job `name` holding these statuses. */
function objects(shards: ShardStatus[], name = 'j', dryRun = false): EncryptionShard[] {
  const job = { ...owner, metadata: { ...owner.metadata, name } };
  return shards.map((s) => ({ ...shardObject(job, s, 'v2:x', dryRun), status: shardStatusPatch(s) }));
}

async function series(m: Metrics): Promise<string[]> {
  const out: string[] = [];
  for (const g of [m.shardObjects, m.shardProgressRatio, m.shardPhase]) {
    const { name, values } = await g.get();
    for (const v of values) {
      const l = v.labels as Record<string, string>;
      out.push(
        `${name}{${l.name}/${l.shard}${l.result ? ` ${l.result}` : ''}${l.phase ? ` ${l.phase}` : ''}}=${v.value}`,
      );
    }
  }
  return out.sort();
}

describe('per-shard metrics', () => {
  it('sets objects by result, the progress ratio and the phase of each shard', async () => {
    const m = new Metrics();
    const sm = new ShardMetrics(m);
    for (const o of objects([
      { index: 0, startAfter: '', endAt: 'm', phase: 'Complete', progress: progress(10, 9, 1) },
      { index: 1, startAfter: 'm', phase: 'Running', progress: progress(5, 5, 0, 20) },
    ]))
      sm.observe(o);
    const s = await series(m);
    expect(s).toContain('s3encryption_shard_objects{j/0 encrypted}=9');
    expect(s).toContain('s3encryption_shard_objects{j/0 failed}=1');
    expect(s).toContain('s3encryption_shard_progress_ratio{j/0}=1');
    expect(s).toContain('s3encryption_shard_progress_ratio{j/1}=0.25');
    expect(s).toContain('s3encryption_shard_phase{j/1 Running}=1');
    expect(s).toContain('s3encryption_shard_phase{j/1 Complete}=0');
  });

  it('a shard without a counted size has no ratio yet', () => {
    expect(shardRatio({ index: 0, startAfter: '', phase: 'Running', progress: progress(5, 5) })).toBeUndefined();
    expect(shardRatio({ index: 0, startAfter: '', phase: 'Pending' })).toBeUndefined();
  });

  it('removes the series of deleted shard objects and of shards being deleted; a dry run has none', async () => {
    const m = new Metrics();
    const sm = new ShardMetrics(m);
    const four = [0, 1, 2, 3].map((index) => ({
      index,
      startAfter: String(index),
      phase: 'Running' as const,
      progress: progress(1, 1, 0, 4),
    }));
    for (const o of [...objects(four), ...objects(four, 'other')]) sm.observe(o);
    expect((await series(m)).filter((x) => x.includes('{j/3')).length).toBeGreaterThan(0);
    for (const o of objects(four).slice(2)) sm.forget(o);
    const two = await series(m);
    expect(two.filter((x) => x.includes('{j/2') || x.includes('{j/3'))).toEqual([]);
    expect(two.filter((x) => x.includes('{j/1')).length).toBe(4 + 1 + 4);
    for (const o of objects(four)) sm.forget(o);
    const left = await series(m);
    expect(left.filter((x) => x.includes('{j/'))).toEqual([]);
    expect(left.filter((x) => x.includes('{other/')).length).toBe(4 * 9);
    // A shard being deleted (deletionTimestamp set) loses its series at once.
    for (const o of objects(four, 'other')) {
      o.metadata = { ...o.metadata, deletionTimestamp: new Date() };
      sm.observe(o);
    }
    expect(await series(m)).toEqual([]);
    for (const o of objects(four, 'j', true)) sm.observe(o);
    expect(await series(m)).toEqual([]);
  });

  it('a plan of more than 64 shards has no per-shard series (9 a shard would be 9,216 for 1,024)', async () => {
    const m = new Metrics();
    const sm = new ShardMetrics(m);
    const shards = [0, 1].map((index) => ({ index, startAfter: String(index), phase: 'Running' as const }));
    for (const o of objects(shards)) sm.observe(o, 64);
    expect((await series(m)).filter((x) => x.includes('{j/')).length).toBe(2 * 9 - 2);
    // The plan turned out bigger (its count arrives after its first objects): their series go.
    for (const o of objects(shards)) sm.observe(o, 1024);
    expect(await series(m)).toEqual([]);
  });
});
