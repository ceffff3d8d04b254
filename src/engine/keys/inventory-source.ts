// A run's objects from an S3 Inventory report instead of ListObjectsV2
// (Plan.inventoryManifest): the manifest and data files are read with the run's
// own S3 client (the job's credentials and endpoint), the rows of the run's key
// range are sorted into S3's key order (inventory-sort.ts), and every data file
// is read and checked before the first object is looked at, so a bad report
// fails the run with nothing touched. Whoever made the plan (the operator, a
// worker, the CLI) only names the manifest.
//
// Objects written after the report was made are not in it: they are not looked
// at (docs/scale.md, "Objects newer than the inventory"); the run says so with
// the report's creation time. A row never proves an object's encryption on its
// own: the object may have been overwritten since the report (with another
// key, or unencrypted), so every row is HEADed like a listed object.
import type { S3Client } from '@aws-sdk/client-s3';
import {
  inventoryKeys,
  readManifest,
  s3InventorySource,
  type InventoryEntry,
  type InventorySource,
} from './inventory.js';
import { sortEntries, type SortedEntries, type SpillOptions } from './inventory-sort.js';
import { compareKeys, KeySampler, type KeySample } from './shards.js';
import type { Plan } from '../types.js';

export interface RunInventory {
  manifest: string;
  /** When S3 began the report (manifest creationTimestamp), if it says. */
  createdAt?: Date;
  /** The run's keys, sorted; dispose() when done. */
  sorted: SortedEntries;
  /** Non-current versions in the run's range, when the report lists versions (an IsLatest column). */
  noncurrentVersions?: number;
}

/**
 * Reads the report for a run: the rows of the plan's bucket under its prefix,
 * in `(startAfter, endAt]` (the shard's bounds and the checkpoint), sorted.
 */
export async function loadRunInventory(
  s3: S3Client,
  plan: Pick<Plan, 'bucket' | 'prefix' | 'startAfter' | 'endAt' | 'shardStartAfter' | 'inventoryManifest'>,
  opts: { signal?: AbortSignal; source?: InventorySource; chunkSize?: number; spill?: SpillOptions } = {},
): Promise<RunInventory> {
  const url = plan.inventoryManifest ?? '';
  const source = opts.source ?? s3InventorySource(s3, opts.signal);
  const manifest = await readManifest(source, url);
  const after = plan.startAfter ?? '';
  const shardAfter = plan.shardStartAfter ?? '';
  const inRun = (key: string, lower: string): boolean =>
    (lower === '' || compareKeys(key, lower) > 0) && (plan.endAt === undefined || compareKeys(key, plan.endAt) <= 0);
  const versioned = manifest.fileSchema.some((c) => c.toLowerCase() === 'islatest');
  let noncurrent = 0;
  // How much of the report was read, for the spill's projection (when the manifest gives every file's size).
  const reportBytes = manifest.files.every((f) => f.size !== undefined)
    ? manifest.files.reduce((sum, f) => sum + (f.size ?? 0), 0)
    : undefined;
  let readBytes = 0;
  async function* rows(): AsyncGenerator<InventoryEntry> {
    for await (const e of inventoryKeys(source, {
      manifest,
      bucket: plan.bucket,
      prefix: plan.prefix,
      // Counted over the whole shard, like ListObjectVersions over (shardStartAfter, endAt].
      onNoncurrent: (key) => {
        if (inRun(key, shardAfter)) noncurrent++;
      },
      onBytes: (n) => (readBytes += n),
    })) {
      if (inRun(e.key, after)) yield e;
    }
  }
  const sorted = await sortEntries(rows(), {
    ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
    ...(opts.spill ?? {}),
    readFraction: () => (reportBytes ? readBytes / reportBytes : undefined),
  });
  return {
    manifest: url,
    ...(manifest.createdAt ? { createdAt: manifest.createdAt } : {}),
    sorted,
    ...(versioned ? { noncurrentVersions: noncurrent } : {}),
  };
}

/**
 * A weighted sample of the report's keys for shard planning (planShards), in
 * fixed memory (KeySampler): the same call as sampleKeys, from the report
 * instead of LIST requests. `requests` is the GETs spent (manifest and files).
 */
export async function sampleInventory(
  s3: S3Client,
  opts: { manifest: string; bucket: string; prefix: string; signal?: AbortSignal; source?: InventorySource },
): Promise<KeySample & { createdAt?: Date }> {
  const source = opts.source ?? s3InventorySource(s3, opts.signal);
  const manifest = await readManifest(source, opts.manifest);
  const sampler = new KeySampler();
  for await (const e of inventoryKeys(source, { manifest, bucket: opts.bucket, prefix: opts.prefix })) {
    if (opts.signal?.aborted) throw new Error('stopped while reading the inventory');
    sampler.add(e.key);
  }
  const keys = sampler.sample();
  return {
    keys,
    estimatedCount: sampler.count,
    exact: keys.length === sampler.count,
    requests: 1 + manifest.files.length,
    ...(manifest.createdAt ? { createdAt: manifest.createdAt } : {}),
  };
}
