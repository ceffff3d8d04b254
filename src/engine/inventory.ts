// Reading a job's keys from an S3 Inventory report instead of listing the
// bucket: manifest.json names the CSV.gz data files and their columns
// (fileSchema); each file is streamed (gunzip, one line at a time), so memory
// stays flat however large the inventory is. Rows of other buckets, outside
// the job's prefix, delete markers and non-current versions are skipped.
//
// What a row can prove: S3 Inventory reports EncryptionStatus (NOT-SSE, SSE-S3,
// SSE-KMS, DSSE-KMS, SSE-C) and BucketKeyStatus, but no KMS key id, so only a
// target of SSE-S3 can be decided from a row alone; an SSE-KMS row still needs
// a HEAD to learn its key. ORC and Parquet reports are refused (CSV only).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_MAX_ATTEMPTS } from './clients.js';
import { errorCode, errorMessage, isTransient, JobError, TransientError } from './errors.js';
import { decodeS3Url } from './lister.js';

export interface InventoryFile {
  key: string;
  size?: number;
  MD5checksum?: string;
}

export interface InventoryManifest {
  /** The bucket the inventory describes. */
  sourceBucket: string;
  /** The bucket holding the data files (from destinationBucket's ARN, else the manifest's own bucket). */
  filesBucket: string;
  fileFormat: string;
  /** Column names, in order. */
  fileSchema: string[];
  files: InventoryFile[];
  /** When S3 began scanning the bucket for this report: objects written later may be missing from it. */
  createdAt?: Date;
}

export interface InventoryEntry {
  key: string;
  size?: number;
  /** NOT-SSE | SSE-S3 | SSE-KMS | DSSE-KMS | SSE-C, when the report has the column. */
  encryptionStatus?: string;
  /** ENABLED | DISABLED, when the report has the column. */
  bucketKeyStatus?: string;
  storageClass?: string;
}

/** Where manifest and data files are read from: S3 in the engine, a directory in the bench. */
export interface InventorySource {
  open(bucket: string, key: string): Promise<Readable>;
}

export function s3InventorySource(s3: S3Client, signal?: AbortSignal): InventorySource {
  return {
    async open(bucket, key) {
      try {
        const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        if (res.Body === undefined) throw new Error('empty body');
        return res.Body as Readable;
      } catch (err) {
        const message = `reading inventory object s3://${bucket}/${key} failed: ${errorCode(err)}: ${errorMessage(err)}`;
        // A network outage or a server error may pass; a missing or forbidden object needs a person.
        if (!signal?.aborted && isTransient(err, DEFAULT_MAX_ATTEMPTS))
          throw new TransientError('InventoryUnreadable', message, { cause: err });
        throw new JobError('InventoryUnreadable', message, { cause: err });
      }
    },
  };
}

/** Files under `dir/<bucket>/<key>` (the bench's generated reports). */
export function directoryInventorySource(dir: string): InventorySource {
  return {
    open: (bucket, key) => Promise.resolve(createReadStream(join(dir, bucket, key))),
  };
}

export function parseS3Url(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new JobError('InvalidSpec', `inventory manifest "${url}" is not an s3://bucket/key URL`);
  return { bucket: m[1]!, key: m[2]! };
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}

export async function readManifest(source: InventorySource, url: string): Promise<InventoryManifest> {
  const { bucket, key } = parseS3Url(url);
  const text = await readAll(await source.open(bucket, key));
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new JobError('InvalidInventory', `inventory manifest ${url} is not JSON`, { cause: err });
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const sourceBucket = str(raw.sourceBucket);
  const fileFormat = str(raw.fileFormat);
  const fileSchema = str(raw.fileSchema);
  if (!sourceBucket || !fileFormat || !fileSchema || !Array.isArray(raw.files)) {
    throw new JobError(
      'InvalidInventory',
      `inventory manifest ${url} lacks sourceBucket, fileFormat, fileSchema or files`,
    );
  }
  if (fileFormat.toUpperCase() !== 'CSV') {
    throw new JobError(
      'InvalidInventory',
      `inventory manifest ${url} has fileFormat ${fileFormat}: only CSV reports are supported`,
    );
  }
  const files = (raw.files as unknown[]).map((f, i): InventoryFile => {
    const o = f as Record<string, unknown>;
    const k = str(o.key);
    if (!k) throw new JobError('InvalidInventory', `inventory manifest ${url}: files[${i}] has no key`);
    return {
      key: k,
      ...(typeof o.size === 'number' ? { size: o.size } : {}),
      ...(str(o.MD5checksum) ? { MD5checksum: str(o.MD5checksum) } : {}),
    };
  });
  const dest = str(raw.destinationBucket);
  const created = Number(str(raw.creationTimestamp) ?? raw.creationTimestamp);
  return {
    sourceBucket,
    filesBucket: dest ? dest.replace(/^arn:aws[a-z-]*:s3:::/, '') : bucket,
    fileFormat,
    fileSchema: fileSchema.split(',').map((c) => c.trim()),
    files,
    ...(Number.isFinite(created) && created > 0 ? { createdAt: new Date(created) } : {}),
  };
}

/** One CSV record (RFC 4180 quoting, as S3 Inventory writes it: every field quoted). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('unterminated quoted field');
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(v);
    } else {
      const c = line.indexOf(',', i);
      out.push(line.slice(i, c < 0 ? line.length : c));
      i = c < 0 ? line.length : c;
    }
    if (i >= line.length) return out;
    if (line[i] !== ',') throw new Error(`expected a comma at column ${i}`);
    i++;
  }
}

/**
 * The keys of `bucket` under `prefix` that an inventory lists, decoded, with
 * what the row says about their encryption. Data files are read one after the
 * other and checked against the manifest's MD5 once read (a truncated file
 * would silently drop keys otherwise): a mismatch throws after that file's
 * rows, so a caller must not count the job done before the stream ends.
 */
export async function* inventoryKeys(
  source: InventorySource,
  opts: {
    manifest: InventoryManifest;
    bucket: string;
    prefix: string;
    /** Called for each non-current version (not a delete marker) of the bucket under the prefix. */
    onNoncurrent?: (key: string) => void;
  },
): AsyncGenerator<InventoryEntry> {
  const { manifest } = opts;
  const col = (name: string): number => manifest.fileSchema.findIndex((c) => c.toLowerCase() === name.toLowerCase());
  const iBucket = col('Bucket');
  const iKey = col('Key');
  if (iBucket < 0 || iKey < 0)
    throw new JobError(
      'InvalidInventory',
      `inventory fileSchema "${manifest.fileSchema.join(', ')}" lacks Bucket or Key`,
    );
  const iSize = col('Size');
  const iEnc = col('EncryptionStatus');
  const iBucketKey = col('BucketKeyStatus');
  const iClass = col('StorageClass');
  const iLatest = col('IsLatest');
  const iDeleteMarker = col('IsDeleteMarker');
  if (manifest.sourceBucket !== opts.bucket) return; // every row is for another bucket

  for (const file of manifest.files) {
    const where = `s3://${manifest.filesBucket}/${file.key}`;
    const md5 = createHash('md5');
    const body = await source.open(manifest.filesBucket, file.key);
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        md5.update(chunk);
        cb(null, chunk);
      },
    });
    body.on('error', (e) => hashing.destroy(e));
    const gunzip = createGunzip();
    hashing.on('error', (e) => gunzip.destroy(e));
    const lines = createInterface({ input: body.pipe(hashing).pipe(gunzip), crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const line of lines) {
        n++;
        if (line === '') continue;
        let row: string[];
        try {
          row = parseCsvLine(line);
        } catch (err) {
          throw new JobError(
            'InvalidInventory',
            `${where} line ${n}: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        if (row[iBucket] !== opts.bucket) continue;
        if (iDeleteMarker >= 0 && row[iDeleteMarker] === 'true') continue;
        const key = decodeS3Url(row[iKey] ?? '');
        if (!key.startsWith(opts.prefix)) continue;
        if (iLatest >= 0 && row[iLatest] === 'false') {
          opts.onNoncurrent?.(key);
          continue;
        }
        const size = iSize >= 0 && row[iSize] ? Number(row[iSize]) : undefined;
        yield {
          key,
          ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
          ...(iEnc >= 0 && row[iEnc] ? { encryptionStatus: row[iEnc] } : {}),
          ...(iBucketKey >= 0 && row[iBucketKey] ? { bucketKeyStatus: row[iBucketKey] } : {}),
          ...(iClass >= 0 && row[iClass] ? { storageClass: row[iClass] } : {}),
        };
      }
    } catch (err) {
      if (err instanceof JobError) throw err;
      throw new JobError(
        'InventoryUnreadable',
        `reading ${where} failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    } finally {
      lines.close();
      body.destroy();
    }
    if (file.MD5checksum && md5.digest('hex') !== file.MD5checksum.toLowerCase()) {
      throw new JobError(
        'InvalidInventory',
        `${where} does not match the manifest's MD5 ${file.MD5checksum}: incomplete or changed file`,
      );
    }
  }
}
