// Where a job's report goes in S3, one segment per run. A job that was
// suspended, retried, restarted or moved to another leader runs in several
// segments; each uploads its own part, and a manifest lists every part of the
// job so far, so the report covers the whole job and not only its last run.
// Nothing is ever overwritten: every PUT carries If-None-Match: *, and a key
// that exists already (an earlier job of the same name, or a part uploaded just
// before a crash) is skipped for the next number.
import { createReadStream, statSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isPreconditionFailed } from '../s3/errors.js';

/** How many taken numbers a segment skips before giving up. */
const MAX_TAKEN = 50;

export interface ReportLocation {
  bucket: string;
  key: string;
}

export function parseS3Uri(uri: string): ReportLocation | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1] ?? '', key: m[2] ?? '' } : undefined;
}

function splitExt(key: string): [string, string] {
  const m = /^(.*[^/])(\.[A-Za-z0-9]+)$/.exec(key);
  return m ? [m[1] ?? key, m[2] ?? ''] : [key, ''];
}

const num = (n: number): string => String(n).padStart(4, '0');

/** reports/run.csv -> reports/run.part-0003.csv: the extension (and so the format) stays last. */
export function partKey(destinationKey: string, n: number): string {
  const [stem, ext] = splitExt(destinationKey);
  return `${stem}.part-${num(n)}${ext}`;
}

/** reports/run.csv -> reports/run.manifest-0003.json: the manifest written with part 3 lists parts 1..3. */
export function manifestKey(destinationKey: string, n: number): string {
  return `${splitExt(destinationKey)[0]}.manifest-${num(n)}.json`;
}

export interface Manifest {
  /** The job (namespace/name, or what the caller names). */
  job: string;
  /** Every part of the job's report so far, oldest first. */
  parts: string[];
  writtenAt: string;
}

export interface SegmentUpload {
  /** s3:// URIs of every part, this one last. */
  parts: string[];
  /** s3:// URI of the manifest listing them. */
  manifest: string;
}

async function putNew(
  s3: S3Client,
  bucket: string,
  key: string,
  body: () => { Body: Buffer | ReturnType<typeof createReadStream>; ContentLength: number },
  contentType: string,
): Promise<boolean> {
  try {
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, ...body(), ContentType: contentType, IfNoneMatch: '*' }),
    );
    return true;
  } catch (err) {
    if (isPreconditionFailed(err)) return false;
    throw new Error(
      `report: PutObject s3://${bucket}/${key} failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/**
 * Uploads one segment's local report file as the next part after `previous`,
 * then a manifest listing all parts. Never overwrites an object.
 */
export async function uploadSegment(
  s3: S3Client,
  opts: { destination: string; localPath: string; contentType: string; previous: string[]; job: string },
): Promise<SegmentUpload> {
  const dest = parseS3Uri(opts.destination);
  if (!dest) throw new Error(`report destination "${opts.destination}" is not s3://BUCKET/KEY`);
  const previous = opts.previous.filter((p) => parseS3Uri(p)?.bucket === dest.bucket);
  let n = previous.length + 1;
  const size = statSync(opts.localPath).size;
  for (let taken = 0; ; taken++, n++) {
    if (taken >= MAX_TAKEN)
      throw new Error(
        `report: ${MAX_TAKEN} part keys after ${partKey(dest.key, previous.length + 1)} exist already; choose another spec.report.destination`,
      );
    const key = partKey(dest.key, n);
    if (
      await putNew(
        s3,
        dest.bucket,
        key,
        () => ({ Body: createReadStream(opts.localPath), ContentLength: size }),
        opts.contentType,
      )
    )
      break;
  }
  const parts = [...previous, `s3://${dest.bucket}/${partKey(dest.key, n)}`];
  const manifest: Manifest = { job: opts.job, parts, writtenAt: new Date().toISOString() };
  const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  for (let taken = 0; ; taken++, n++) {
    if (taken >= MAX_TAKEN)
      throw new Error(`report: ${MAX_TAKEN} manifest keys after ${manifestKey(dest.key, parts.length)} exist already`);
    const key = manifestKey(dest.key, n);
    if (await putNew(s3, dest.bucket, key, () => ({ Body: body, ContentLength: body.length }), 'application/json')) {
      return { parts, manifest: `s3://${dest.bucket}/${key}` };
    }
  }
}

/**
 * The parts a report manifest lists (the parts so far of a job whose status keeps only the
 * manifest's address: a sharded job's report grows by a part per shard run).
 */
export async function readManifestParts(s3: S3Client, uri: string): Promise<string[]> {
  const where = parseS3Uri(uri);
  if (!where) throw new Error(`report manifest "${uri}" is not s3://BUCKET/KEY`);
  const out = await s3.send(new GetObjectCommand({ Bucket: where.bucket, Key: where.key }));
  const text = (await out.Body?.transformToString()) ?? '';
  const manifest = JSON.parse(text) as Partial<Manifest>;
  if (!Array.isArray(manifest.parts) || manifest.parts.some((p) => typeof p !== 'string'))
    throw new Error(`report manifest ${uri} lists no parts`);
  return manifest.parts;
}
