// One run's inventory load over a whole local report, timed: what bench/inventory-sort.ts and
// bench/inventory-plan.ts measure (no S3 client: the report's files are in a directory).
import type { S3Client } from '@aws-sdk/client-s3';
import { directoryInventorySource } from '../../src/engine/keys/inventory.js';
import { loadRunInventory } from '../../src/engine/keys/inventory-source.js';
import { compareKeys } from '../../src/engine/keys/shards.js';

export interface TimedLoad {
  rows: number;
  /** The merged rows came out in S3's key order. */
  ordered: boolean;
  loadSeconds: number;
  mergeSeconds: number;
  spilledBytes: number;
}

/** Reads and sorts the report's rows of `bucket` under `prefix`, then merges them out once. */
export async function timedInventoryLoad(dir: string, url: string, bucket: string, prefix: string): Promise<TimedLoad> {
  const started = performance.now();
  const inv = await loadRunInventory(
    {} as S3Client,
    { bucket, prefix, inventoryManifest: url },
    { source: directoryInventorySource(dir) },
  );
  const loadSeconds = (performance.now() - started) / 1000;
  let rows = 0;
  let last = '';
  let ordered = true;
  const merging = performance.now();
  for await (const e of inv.sorted.entries()) {
    if (rows > 0 && compareKeys(last, e.key) >= 0) ordered = false;
    last = e.key;
    rows++;
  }
  const mergeSeconds = (performance.now() - merging) / 1000;
  const spilledBytes = inv.sorted.spilledBytes;
  inv.sorted.dispose();
  return {
    rows,
    ordered,
    loadSeconds: Number(loadSeconds.toFixed(1)),
    mergeSeconds: Number(mergeSeconds.toFixed(1)),
    spilledBytes,
  };
}
