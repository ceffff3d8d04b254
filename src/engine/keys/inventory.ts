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
import { DEFAULT_MAX_ATTEMPTS } from '../s3/clients.js';
import { errorCode, errorMessage, isTransient, JobError, TransientError } from '../s3/errors.js';
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
  /** The manifest's s3:// URL, for messages. */
  url?: string;
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
    url,
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

/** Where each column the engine reads sits in a row (-1: the report has no such column). */
interface Columns {
  bucket: number;
  key: number;
  size: number;
  encryption: number;
  bucketKey: number;
  storageClass: number;
  isLatest: number;
  isDeleteMarker: number;
}

function columnsOf(manifest: InventoryManifest): Columns {
  const col = (name: string): number => manifest.fileSchema.findIndex((c) => c.toLowerCase() === name.toLowerCase());
  const columns: Columns = {
    bucket: col('Bucket'),
    key: col('Key'),
    size: col('Size'),
    encryption: col('EncryptionStatus'),
    bucketKey: col('BucketKeyStatus'),
    storageClass: col('StorageClass'),
    isLatest: col('IsLatest'),
    isDeleteMarker: col('IsDeleteMarker'),
  };
  if (columns.bucket < 0 || columns.key < 0)
    throw new JobError(
      'InvalidInventory',
      `inventory fileSchema "${manifest.fileSchema.join(', ')}" lacks Bucket or Key`,
    );
  return columns;
}

/**
 * The parsed rows of one data file (gunzipped, one line at a time), then its
 * MD5 checked against the manifest's: a mismatch throws after the file's rows.
 */
async function* dataFileRows(
  source: InventorySource,
  filesBucket: string,
  file: InventoryFile,
  onBytes?: (n: number) => void,
): AsyncGenerator<string[]> {
  const where = `s3://${filesBucket}/${file.key}`;
  const md5 = createHash('md5');
  const body = await source.open(filesBucket, file.key);
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      md5.update(chunk);
      onBytes?.(chunk.length);
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
      yield row;
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

/** A current row as an entry (its key decoded); the columns the report lacks are left out. */
function entryOf(row: string[], c: Columns, key: string): InventoryEntry {
  const size = c.size >= 0 && row[c.size] ? Number(row[c.size]) : undefined;
  return {
    key,
    ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
    ...(c.encryption >= 0 && row[c.encryption] ? { encryptionStatus: row[c.encryption] } : {}),
    ...(c.bucketKey >= 0 && row[c.bucketKey] ? { bucketKeyStatus: row[c.bucketKey] } : {}),
    ...(c.storageClass >= 0 && row[c.storageClass] ? { storageClass: row[c.storageClass] } : {}),
  };
}

/**
 * The keys of `bucket` under `prefix` that an inventory lists, decoded, with
 * what the row says about their encryption. Data files are read one after the
 * other and checked against the manifest's MD5 once read (a truncated file
 * would silently drop keys otherwise): a mismatch throws after that file's
 * rows, so a caller must not count the job done before the stream ends. A
 * report of another bucket is an error before any file is read: a wrong
 * manifest path must not end as a job that found nothing to do.
 */
export async function* inventoryKeys(
  source: InventorySource,
  opts: {
    manifest: InventoryManifest;
    bucket: string;
    prefix: string;
    /** Called for each non-current version (not a delete marker) of the bucket under the prefix. */
    onNoncurrent?: (key: string) => void;
    /** Called with each piece of a data file read (compressed bytes, as the manifest's sizes count them). */
    onBytes?: (n: number) => void;
  },
): AsyncGenerator<InventoryEntry> {
  const { manifest } = opts;
  const c = columnsOf(manifest);
  if (manifest.sourceBucket !== opts.bucket)
    throw new JobError(
      'InvalidInventory',
      `inventory manifest ${manifest.url ?? ''} is a report of bucket ${manifest.sourceBucket}, not of the job's bucket ${opts.bucket}`,
    );
  for (const file of manifest.files) {
    for await (const row of dataFileRows(source, manifest.filesBucket, file, opts.onBytes)) {
      if (row[c.bucket] !== opts.bucket) continue;
      if (c.isDeleteMarker >= 0 && row[c.isDeleteMarker] === 'true') continue;
      const key = decodeS3Url(row[c.key] ?? '');
      if (!key.startsWith(opts.prefix)) continue;
      if (c.isLatest >= 0 && row[c.isLatest] === 'false') opts.onNoncurrent?.(key);
      else yield entryOf(row, c, key);
    }
  }
}
