// Counting the noncurrent versions a run leaves as they are (versioned buckets).
// It is bookkeeping after the work: the caller turns a failure into a warning.
import { ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_MAX_ATTEMPTS } from './clients.js';
import { backoff, isTransient, TRANSIENT_RETRY_MS } from './errors.js';

/** Noncurrent versions under the prefix, or undefined when stopped. Throws when the listing fails. */
export async function countNoncurrent(
  s3: S3Client,
  opts: { bucket: string; prefix: string; signal?: AbortSignal; onRequest?: () => void },
): Promise<number | undefined> {
  let count = 0;
  let keyMarker: string | undefined;
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
    count += (page.Versions ?? []).filter((v) => v.IsLatest === false).length;
    if (!page.IsTruncated) return count;
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
