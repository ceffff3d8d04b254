// The multipart uploads a run has open. An upload is invisible until it is
// completed but is billed until it is aborted, and a process that dies (kill -9,
// OOM, a lost lease) cannot abort it. So every upload id is recorded, through
// the run's `recordUploads` hook, before its first part is copied, and the next
// run of the job aborts whatever its predecessor recorded and left open.
//
// Only recorded ids are ever aborted: an upload id is unique and never reused,
// so aborting one can never touch an upload of another client (an application
// uploading the same key, another tool). Listing the bucket's uploads and
// guessing by key or time could.
import { AbortMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { CheckpointWriteFailed, errorCode, errorMessage } from '../s3/errors.js';
import type { OpenUpload } from '../types.js';

export interface UploadJournal {
  /**
   * Resolves once the upload is recorded where a later run can find it; rejects
   * (CheckpointWriteFailed, transient) when it could not be: no part may be copied then.
   */
  opened(upload: OpenUpload): Promise<void>;
  /** The upload is completed or aborted: no later run needs to abort it. */
  closed(upload: OpenUpload): void;
  /**
   * Waits for room for one more open upload (Plan.maxOpenUploads); the returned function gives it
   * back once the upload is completed or aborted.
   */
  slot?(): Promise<() => void>;
}

export class OpenUploads implements UploadJournal {
  private readonly open = new Map<string, OpenUpload>();
  /** Uploads this run has under way (slots taken), and the copies waiting for one. */
  private taken = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    initial: readonly OpenUpload[],
    private readonly record: ((open: OpenUpload[]) => Promise<void> | void) | undefined,
    private readonly maxOpen = Infinity,
  ) {
    for (const u of initial) this.open.set(u.uploadId, { key: u.key, uploadId: u.uploadId });
  }

  async slot(): Promise<() => void> {
    if (this.taken >= this.maxOpen) await new Promise<void>((r) => this.waiting.push(r));
    else this.taken++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Handed on to a waiting copy (the count stays), or given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.taken--;
    };
  }

  async opened(upload: OpenUpload): Promise<void> {
    this.open.set(upload.uploadId, upload);
    try {
      await this.record?.(this.list());
    } catch (err) {
      throw new CheckpointWriteFailed(
        `recording the multipart upload ${upload.uploadId} of ${upload.key} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  closed(upload: OpenUpload): void {
    if (!this.open.delete(upload.uploadId)) return;
    // Best effort: an id recorded after its upload ended is aborted later with NoSuchUpload, harmlessly.
    void Promise.resolve(this.record?.(this.list())).catch(() => undefined);
  }

  list(): OpenUpload[] {
    return [...this.open.values()];
  }
}

/** Aborts an upload; true when it is gone (aborted now, or completed/aborted before). */
export async function abortUpload(s3: S3Client, bucket: string, upload: OpenUpload): Promise<true | string> {
  try {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }));
    return true;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'NoSuchUpload' || code === 'NotFound' || code === 'NoSuchKey') return true;
    return `AbortMultipartUpload ${bucket}/${upload.key} (upload ${upload.uploadId}): ${code}: ${errorMessage(err)}`;
  }
}
