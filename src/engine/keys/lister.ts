// Streaming the keys under a prefix, in S3's order, one page at a time: the
// caller pulls, so memory holds one page however many objects there are.
import { ListObjectsV2Command, type _Object, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { errorCode, errorMessage, JobError, TransientError } from '../s3/errors.js';
import { compareKeys } from './shards.js';
import { tryThroughTransient } from '../s3/transient-retry.js';

export interface ListedObject {
  key: string;
  size: number;
  etag?: string;
  storageClass?: string;
  lastModified?: Date;
}

/**
 * S3 URL-encodes keys with EncodingType=url the way HTML forms do (space as
 * "+"), so that keys with control characters survive the XML response.
 */
export function decodeS3Url(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** A server bug (seen on S3-compatible servers): the listing cannot go on, and must not pass for finished. */
function truncatedWithoutToken(bucket: string, prefix: string, lastKey: string | undefined): JobError {
  return new JobError(
    'ListingTruncated',
    `ListObjectsV2 on bucket "${bucket}" prefix "${prefix}" answered a truncated page (IsTruncated=true) without NextContinuationToken${lastKey !== undefined ? ` after key "${lastKey}"` : ''}: the rest of the listing cannot be read`,
  );
}

export interface ListOptions {
  bucket: string;
  prefix: string;
  startAfter?: string;
  /** Last key to list (inclusive, S3 order): a shard's upper bound. The listing ends at the first key after it. */
  endAt?: string;
  pageSize?: number;
  signal?: AbortSignal;
}

/** Why a page could not be read, once the tries through transient errors are over. */
function listingError(err: unknown, opts: ListOptions, first: boolean): unknown {
  if (err instanceof JobError) return err; // the endpoint refused by the address guard: not an outage
  const code = errorCode(err);
  if (code === 'NoSuchBucket') {
    return new JobError('BucketNotFound', `bucket "${opts.bucket}" does not exist`, { cause: err });
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled') {
    return new JobError(
      'AccessDenied',
      `ListObjectsV2 on bucket "${opts.bucket}" prefix "${opts.prefix}" was denied: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (first) {
    return new TransientError(
      'ListFailed',
      `ListObjectsV2 on bucket "${opts.bucket}" failed: ${code}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  return err;
}

/** One page, asked again through an outage or throttling that outlasts the SDK's retries; undefined when stopped. */
async function readPage(
  s3: S3Client,
  opts: ListOptions,
  token: string | undefined,
  first: boolean,
): Promise<ListObjectsV2CommandOutput | undefined> {
  const signal = opts.signal;
  const tried = await tryThroughTransient(
    () =>
      s3.send(
        new ListObjectsV2Command({
          Bucket: opts.bucket,
          Prefix: opts.prefix || undefined,
          EncodingType: 'url',
          MaxKeys: opts.pageSize ?? 1000,
          ...(token ? { ContinuationToken: token } : { StartAfter: opts.startAfter || undefined }),
        }),
        { abortSignal: signal },
      ),
    { ...(signal ? { signal } : {}), keepTrying: () => !signal?.aborted },
  );
  if (tried.kind === 'done') return tried.value;
  if (tried.kind === 'stopped' || signal?.aborted) return undefined;
  throw listingError(tried.error, opts, first);
}

function listed(item: _Object, encoded: boolean): ListedObject | undefined {
  if (item.Key === undefined) return undefined;
  return {
    key: encoded ? decodeS3Url(item.Key) : item.Key,
    size: item.Size ?? 0,
    ...(item.ETag ? { etag: item.ETag } : {}),
    ...(item.StorageClass ? { storageClass: item.StorageClass } : {}),
    ...(item.LastModified ? { lastModified: item.LastModified } : {}),
  };
}

export async function* listObjects(s3: S3Client, opts: ListOptions): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  for (let first = true; ; first = false) {
    if (opts.signal?.aborted) return;
    const page = await readPage(s3, opts, token, first);
    if (!page) return;
    const encoded = page.EncodingType === 'url';
    for (const item of page.Contents ?? []) {
      const obj = listed(item, encoded);
      if (!obj) continue;
      // Past the shard: the keys after it are another shard's (no further page is read).
      if (opts.endAt !== undefined && compareKeys(obj.key, opts.endAt) > 0) return;
      yield obj;
    }
    if (!page.IsTruncated) return;
    // Ending here would report a partial listing as the whole prefix (Complete, with keys never looked at).
    if (!page.NextContinuationToken) {
      const last = page.Contents?.at(-1)?.Key;
      throw truncatedWithoutToken(opts.bucket, opts.prefix, last !== undefined && encoded ? decodeS3Url(last) : last);
    }
    token = page.NextContinuationToken;
  }
}

/**
 * Counts the keys under a prefix after startAfter (and up to endAt, when
 * given), a LIST page at a time, so that progress can be shown against a
 * total. It runs beside the real work and costs one request per 1000 keys.
 */
export async function countObjects(
  s3: S3Client,
  opts: { bucket: string; prefix: string; startAfter?: string; endAt?: string; signal?: AbortSignal },
): Promise<number> {
  let count = 0;
  let token: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: opts.bucket,
        Prefix: opts.prefix || undefined,
        EncodingType: 'url',
        ...(token ? { ContinuationToken: token } : { StartAfter: opts.startAfter || undefined }),
      }),
      { abortSignal: opts.signal },
    );
    if (opts.endAt !== undefined) {
      const endAt = opts.endAt;
      const encoded = page.EncodingType === 'url';
      const keys = (page.Contents ?? []).flatMap((c) =>
        c.Key === undefined ? [] : [encoded ? decodeS3Url(c.Key) : c.Key],
      );
      const within = keys.filter((k) => compareKeys(k, endAt) <= 0).length;
      count += within;
      if (within < keys.length) return count;
    } else {
      count += page.KeyCount ?? page.Contents?.length ?? 0;
    }
    if (!page.IsTruncated) return count;
    if (!page.NextContinuationToken) throw truncatedWithoutToken(opts.bucket, opts.prefix, page.Contents?.at(-1)?.Key);
    token = page.NextContinuationToken;
  }
}
