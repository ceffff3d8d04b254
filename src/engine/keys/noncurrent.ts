// Counting the noncurrent versions a run leaves as they are (versioned buckets).
// It is bookkeeping after the work: the caller turns a failure into a warning.
import { ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_MAX_ATTEMPTS } from '../s3/clients.js';
import { backoff, isTransient, TRANSIENT_RETRY_MS } from '../s3/errors.js';
import { inRange } from './shards.js';

/**
 * Noncurrent versions under the prefix (of a shard `(startAfter, endAt]`, when
 * given), or undefined when stopped. Throws when the listing fails.
 */
export async function countNoncurrent(
  s3: S3Client,
  opts: {
    bucket: string;
    prefix: string;
    startAfter?: string;
    endAt?: string;
    signal?: AbortSignal;
    onRequest?: () => void;
  },
): Promise<number | undefined> {
  const shard = { startAfter: opts.startAfter ?? '', ...(opts.endAt !== undefined ? { endAt: opts.endAt } : {}) };
  let count = 0;
  // S3 lists the versions of keys strictly after KeyMarker: a shard starts at its own
  // lower bound instead of paging through every earlier shard's versions.
  let keyMarker: string | undefined = opts.startAfter || undefined;
  let versionMarker: string | undefined;
  let retrySince: number | undefined;
  let round = 0;
  for (;;) {
    if (opts.signal?.aborted) return undefined;
    opts.onRequest?.();
    let page;
    try {
      page = await s3.send(
        new ListObjectVersionsCommand({
          Bucket: opts.bucket,
          Prefix: opts.prefix || undefined,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
        { abortSignal: opts.signal },
      );
    } catch (err) {
      if (opts.signal?.aborted) return undefined;
      retrySince ??= performance.now();
      if (isTransient(err, DEFAULT_MAX_ATTEMPTS) && performance.now() - retrySince < TRANSIENT_RETRY_MS) {
        if (!(await backoff(round++, opts.signal))) return undefined;
        continue;
      }
      throw err;
    }
    retrySince = undefined;
    round = 0;
    const versions = page.Versions ?? [];
    count += versions.filter((v) => v.IsLatest === false && v.Key !== undefined && inRange(v.Key, shard)).length;
    if (!page.IsTruncated) return count;
    // Past the shard's last key: the rest belongs to later shards.
    const last = versions.at(-1)?.Key;
    if (opts.endAt !== undefined && last !== undefined && !inRange(last, { startAfter: '', endAt: opts.endAt })) {
      return count;
    }
    // Without a marker the next request would ask for the first page again, forever.
    if (!page.NextKeyMarker) {
      throw new Error(
        `ListObjectVersions on bucket "${opts.bucket}" answered a truncated page without NextKeyMarker (after key marker "${keyMarker ?? ''}")`,
      );
    }
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}
