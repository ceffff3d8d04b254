// Reading keys from an S3 Inventory report stored on a real S3 server
// (SeaweedFS): the manifest and its CSV.gz files are generated the way S3 writes
// them (every field quoted, keys URL-encoded with "+" for space).
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { JobError } from '../../src/engine/s3/errors.js';
import {
  inventoryKeys,
  readManifest,
  s3InventorySource,
  type InventoryEntry,
} from '../../src/engine/keys/inventory.js';
import { createBucket, s3Client } from '../harness/context.js';

const SCHEMA = 'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, EncryptionStatus, BucketKeyStatus';

function csv(rows: string[][]): Buffer {
  return gzipSync(rows.map((r) => r.map((v) => `"${v.replace(/"/g, '""')}"`).join(',') + '\n').join(''));
}

describe('S3 Inventory input (SeaweedFS)', () => {
  let s3: S3Client;
  let inv: string;
  const src = 'source-bucket';

  const put = (key: string, body: Buffer | string): Promise<unknown> =>
    s3.send(new PutObjectCommand({ Bucket: inv, Key: key, Body: body }));

  beforeAll(async () => {
    s3 = s3Client(inject('seaweed'));
    inv = await createBucket(s3, 'inventory');
    const files = [
      csv([
        [src, 'logs/a+b.json', '', 'true', 'false', '10', 'SSE-S3', 'DISABLED'], // "a b.json"
        [src, 'logs/a%2Bb.json', '', 'true', 'false', '11', 'SSE-KMS', 'ENABLED'], // "a+b.json"
        [src, 'logs/%E2%82%AC%2C%22q%22.txt', '', 'true', 'false', '12', 'NOT-SSE', 'DISABLED'], // '€,"q".txt'
        [src, 'other/x.json', '', 'true', 'false', '1', 'NOT-SSE', 'DISABLED'], // outside the prefix
        ['another-bucket', 'logs/y.json', '', 'true', 'false', '1', 'NOT-SSE', 'DISABLED'], // another bucket
      ]),
      csv([
        [src, 'logs/old.json', 'v1', 'false', 'false', '5', 'NOT-SSE', 'DISABLED'], // non-current version
        [src, 'logs/old.json', 'v2', 'true', 'false', '6', 'SSE-S3', 'DISABLED'],
        [src, 'logs/gone.json', 'v3', 'true', 'true', '', '', ''], // delete marker
      ]),
    ];
    const base = `${src}/config/2026-12-01T01-00Z`;
    await Promise.all(files.map((f, i) => put(`${src}/config/data/file-${i}.csv.gz`, f)));
    const manifest = (md5s: string[]): string =>
      JSON.stringify({
        sourceBucket: src,
        destinationBucket: `arn:aws:s3:::${inv}`,
        version: '2016-11-30',
        creationTimestamp: '1796086800000',
        fileFormat: 'CSV',
        fileSchema: SCHEMA,
        files: files.map((f, i) => ({
          key: `${src}/config/data/file-${i}.csv.gz`,
          size: f.length,
          MD5checksum: md5s[i],
        })),
      });
    await put(`${base}/manifest.json`, manifest(files.map((f) => createHash('md5').update(f).digest('hex'))));
    await put(
      `${base}/bad-md5/manifest.json`,
      manifest(['00000000000000000000000000000000', '00000000000000000000000000000000']),
    );
    await put(
      `${base}/orc/manifest.json`,
      JSON.stringify({ sourceBucket: src, fileFormat: 'ORC', fileSchema: 'x', files: [] }),
    );
  });

  const collect = async (url: string, bucket: string, prefix: string): Promise<InventoryEntry[]> => {
    const source = s3InventorySource(s3);
    const manifest = await readManifest(source, url);
    const out: InventoryEntry[] = [];
    for await (const e of inventoryKeys(source, { manifest, bucket, prefix })) out.push(e);
    return out;
  };

  it('yields the decoded keys of the job bucket under the prefix, with their encryption status', async () => {
    const url = `s3://${inv}/${src}/config/2026-12-01T01-00Z/manifest.json`;
    const manifest = await readManifest(s3InventorySource(s3), url);
    expect(manifest.filesBucket).toBe(inv);
    expect(manifest.createdAt?.toISOString()).toBe('2026-12-01T01:00:00.000Z');
    expect(await collect(url, src, 'logs/')).toEqual([
      { key: 'logs/a b.json', size: 10, encryptionStatus: 'SSE-S3', bucketKeyStatus: 'DISABLED' },
      { key: 'logs/a+b.json', size: 11, encryptionStatus: 'SSE-KMS', bucketKeyStatus: 'ENABLED' },
      { key: 'logs/€,"q".txt', size: 12, encryptionStatus: 'NOT-SSE', bucketKeyStatus: 'DISABLED' },
      { key: 'logs/old.json', size: 6, encryptionStatus: 'SSE-S3', bucketKeyStatus: 'DISABLED' },
    ]);
  });

  it('scenario 5: an inventory of another bucket is an error: InvalidInventory naming both buckets, before any row', async () => {
    const url = `s3://${inv}/${src}/config/2026-12-01T01-00Z/manifest.json`;
    const other = collect(url, 'another-bucket', '');
    await expect(other).rejects.toBeInstanceOf(JobError);
    await expect(other).rejects.toMatchObject({ reason: 'InvalidInventory' });
    await expect(other).rejects.toThrow(new RegExp(`report of bucket ${src}, not of the job's bucket another-bucket`));
    await expect(other).rejects.toThrow(url);
  });

  it('refuses a data file that does not match the manifest MD5, and non-CSV reports', async () => {
    const bad = collect(`s3://${inv}/${src}/config/2026-12-01T01-00Z/bad-md5/manifest.json`, src, '');
    await expect(bad).rejects.toThrow(/does not match the manifest's MD5/);
    await expect(bad).rejects.toBeInstanceOf(JobError);
    await expect(
      readManifest(s3InventorySource(s3), `s3://${inv}/${src}/config/2026-12-01T01-00Z/orc/manifest.json`),
    ).rejects.toThrow(/only CSV/);
    await expect(readManifest(s3InventorySource(s3), `s3://${inv}/missing/manifest.json`)).rejects.toThrow(
      /InventoryUnreadable|reading inventory object/,
    );
  });
});
