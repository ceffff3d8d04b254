// Per-shard gauges from status.shards of every job the operator observes. The
// in-process shard runner and worker pods both write status.shards, so gauges
// derived from what the API server holds cover both, and a new leader shows
// the shards at once. Series of shards that left a job's status (a new shard
// plan, a job back to one run) and of deleted jobs are removed: the label set
// is bounded by the shards that exist now.
import type { Metrics } from '../metrics.js';
import type { EncryptionJob, ShardStatus } from './api.js';

const RESULTS = [
  ['encrypted', 'encrypted'],
  ['already_encrypted', 'alreadyEncrypted'],
  ['skipped', 'skipped'],
  ['failed', 'failed'],
] as const;
const PHASES = ['Pending', 'Running', 'Complete', 'Failed'] as const;

/** Finished over all of the shard's objects: 1 when Complete, undefined until its size is counted. */
export function shardRatio(shard: ShardStatus): number | undefined {
  if (shard.phase === 'Complete') return 1;
  const p = shard.progress;
  if (!p || typeof p.total !== 'number' || p.total <= 0) return undefined;
  return Math.min(1, p.scanned / p.total);
}

export class ShardMetrics {
  /** Shard indices with series, per job key (namespace/name). */
  private readonly exported = new Map<string, Set<number>>();

  constructor(private readonly metrics: Metrics) {}

  observe(job: EncryptionJob): void {
    const namespace = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    if (job.metadata?.deletionTimestamp) return this.forget(namespace, name);
    const shards = job.status?.shards ?? [];
    const before = this.exported.get(key) ?? new Set<number>();
    const now = new Set<number>();
    for (const shard of shards) {
      now.add(shard.index);
      const labels = { namespace, name, shard: String(shard.index) };
      for (const [result, field] of RESULTS)
        this.metrics.shardObjects.set({ ...labels, result }, shard.progress?.[field] ?? 0);
      const ratio = shardRatio(shard);
      if (ratio !== undefined) this.metrics.shardProgressRatio.set(labels, ratio);
      else this.metrics.shardProgressRatio.remove(labels);
      for (const phase of PHASES) this.metrics.shardPhase.set({ ...labels, phase }, shard.phase === phase ? 1 : 0);
    }
    for (const index of before) if (!now.has(index)) this.removeShard(namespace, name, index);
    if (now.size > 0) this.exported.set(key, now);
    else this.exported.delete(key);
  }

  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    for (const index of this.exported.get(key) ?? []) this.removeShard(namespace, name, index);
    this.exported.delete(key);
  }

  private removeShard(namespace: string, name: string, index: number): void {
    const labels = { namespace, name, shard: String(index) };
    for (const [result] of RESULTS) this.metrics.shardObjects.remove({ ...labels, result });
    this.metrics.shardProgressRatio.remove(labels);
    for (const phase of PHASES) this.metrics.shardPhase.remove({ ...labels, phase });
  }
}
