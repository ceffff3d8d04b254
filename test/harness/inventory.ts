// Writing an S3 Inventory report the way S3 does (CSV.gz data files, every
// field quoted, keys URL-encoded with "+" for space, a manifest.json with each
// file's MD5), onto a real S3 server, for tests of the inventory input.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export const INVENTORY_SCHEMA = 'Bucket, Key, Size, StorageClass, EncryptionStatus, BucketKeyStatus';

export interface InventoryRow {
  bucket: string;
  key: string;
  size?: number;
  storageClass?: string;
  encryptionStatus?: string;
  bucketKeyStatus?: string;
}

/** S3 Inventory's key encoding: URL-encoded, space as "+". */
export function encodeInventoryKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+');
}

export function inventoryCsv(rows: InventoryRow[]): Buffer {
  const field = (v: string): string => `"${v.replace(/"/g, '""')}"`;
  return gzipSync(
    rows
      .map(
        (r) =>
          [
            r.bucket,
            encodeInventoryKey(r.key),
            String(r.size ?? 1),
            r.storageClass ?? 'STANDARD',
            r.encryptionStatus ?? 'NOT-SSE',
            r.bucketKeyStatus ?? 'DISABLED',
          ]
            .map(field)
            .join(',') + '\n',
      )
      .join(''),
  );
}

/**
 * Writes the rows as `files` data files (rows dealt round-robin, so no file and
 * no order across files is sorted) and a manifest; returns the manifest's s3:// URL.
 */
export async function writeInventory(
  s3: S3Client,
  opts: {
    inventoryBucket: string;
    sourceBucket: string;
    rows: InventoryRow[];
    files?: number;
    createdAt?: Date;
    /** Where under the inventory bucket (default `${sourceBucket}/config/<date>/`). */
    path?: string;
    /** Overrides for manifest fields (a wrong format, a wrong MD5...). */
    manifest?: Record<string, unknown>;
  },
): Promise<string> {
  const created = opts.createdAt ?? new Date('2026-12-01T01:00:00Z');
  const base = opts.path ?? `${opts.sourceBucket}/config/${created.toISOString().slice(0, 16).replace(':', '-')}Z`;
  const n = Math.max(1, opts.files ?? 2);
  const dealt: InventoryRow[][] = Array.from({ length: n }, () => []);
  // Reverse order, dealt across files: the report is not in key order anywhere.
  [...opts.rows].reverse().forEach((r, i) => dealt[i % n]!.push(r));
  const bodies = dealt.map((rows) => inventoryCsv(rows));
  const dataKeys = bodies.map((_, i) => `${opts.sourceBucket}/config/data/${base.split('/').at(-1)}-${i}.csv.gz`);
  await Promise.all(
    bodies.map((body, i) =>
      s3.send(new PutObjectCommand({ Bucket: opts.inventoryBucket, Key: dataKeys[i], Body: body })),
    ),
  );
  const manifest = {
    sourceBucket: opts.sourceBucket,
    destinationBucket: `arn:aws:s3:::${opts.inventoryBucket}`,
    version: '2016-11-30',
    creationTimestamp: String(created.getTime()),
    fileFormat: 'CSV',
    fileSchema: INVENTORY_SCHEMA,
    files: bodies.map((body, i) => ({
      key: dataKeys[i],
      size: body.length,
      MD5checksum: createHash('md5').update(body).digest('hex'),
    })),
    ...opts.manifest,
  };
  const key = `${base}/manifest.json`;
  await s3.send(new PutObjectCommand({ Bucket: opts.inventoryBucket, Key: key, Body: JSON.stringify(manifest) }));
  return `s3://${opts.inventoryBucket}/${key}`;
}
