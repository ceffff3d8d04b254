// Per-shard gauges from the EncryptionShard objects the operator observes (its
// shard informer). The in-process shard runner and worker pods both write those
// objects, so gauges derived from what the API server holds cover both, and a
// new leader shows the shards at once. Series of deleted shards (a new shard
// plan, a job back to one run, a deleted job) are removed: the label set is
// bounded by the shards that exist now. A dry run's shards have no series, nor
// do the shards of a plan of more than SHARD_SERIES_MAX_SHARDS (nine series a
// shard: 1,024 shards would be 9,216 series of one job; such a job is followed
// through its own metrics and `kubectl get eshard`).
import type { Metrics } from '../metrics.js';
import type { EncryptionShard, ShardStatus } from './api.js';
import { toShardStatus } from './shardstore.js';

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

/** Plans of more shards than this get no per-shard series. */
export const SHARD_SERIES_MAX_SHARDS = 64;

export class ShardMetrics {
  constructor(private readonly metrics: Metrics) {}

  /** `planSize`: the shards of the object's plan (its job's status.shardPlan.shards, or those seen so far). */
  observe(object: EncryptionShard, planSize = 0): void {
    if (object.spec.dryRun) return;
    if (object.metadata?.deletionTimestamp || planSize > SHARD_SERIES_MAX_SHARDS) return this.forget(object);
    const shard = toShardStatus(object);
    const labels = this.labels(object);
    for (const [result, field] of RESULTS)
      this.metrics.shardObjects.set({ ...labels, result }, shard.progress?.[field] ?? 0);
    const ratio = shardRatio(shard);
    if (ratio !== undefined) this.metrics.shardProgressRatio.set(labels, ratio);
    else this.metrics.shardProgressRatio.remove(labels);
    for (const phase of PHASES) this.metrics.shardPhase.set({ ...labels, phase }, shard.phase === phase ? 1 : 0);
  }

  forget(object: EncryptionShard): void {
    if (object.spec.dryRun) return;
    const labels = this.labels(object);
    for (const [result] of RESULTS) this.metrics.shardObjects.remove({ ...labels, result });
    this.metrics.shardProgressRatio.remove(labels);
    for (const phase of PHASES) this.metrics.shardPhase.remove({ ...labels, phase });
  }

  private labels(object: EncryptionShard): { namespace: string; name: string; shard: string } {
    return { namespace: object.metadata?.namespace ?? '', name: object.spec.job, shard: String(object.spec.index) };
  }
}
