// Writing an object onto itself with the target encryption, carrying over
// everything the copy would otherwise reset. Every write is conditional on the
// ETag that was inspected, so newer data is never replaced by older.
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UpdateObjectEncryptionCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type CopyObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getTags, tagsToQuery, type AclGrants, type ObjectState } from './inspect.js';
import type { ResolvedTarget } from './kms.js';
import { StoppedError } from './abortable.js';
import { abortUpload, type UploadJournal } from './uploads.js';

export interface CopyOptions {
  bucket: string;
  target: ResolvedTarget;
  storageClass?: string;
  grants?: AclGrants;
  signal?: AbortSignal;
}

/** x-amz-copy-source: bucket/key, the key URL-encoded segment by segment, pinned to the inspected version. */
export function copySource(bucket: string, state: ObjectState): string {
  const key = state.key.split('/').map(encodeURIComponent).join('/');
  return `${bucket}/${key}${state.versionId && state.versionId !== 'null' ? `?versionId=${encodeURIComponent(state.versionId)}` : ''}`;
}

function sseHeaders(
  target: ResolvedTarget,
  state: ObjectState,
): Pick<CopyObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId' | 'BucketKeyEnabled'> {
  const out: Pick<CopyObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId' | 'BucketKeyEnabled'> = {
    ServerSideEncryption: target.type,
  };
  if (target.type !== 'AES256') {
    const key = target.kmsKeyArn ?? target.kmsKeyId;
    if (key) out.SSEKMSKeyId = key;
    // A job that does not name the bucket key keeps the object's own setting
    // (a copy without the header would turn it off).
    const bucketKey = target.bucketKeyEnabled ?? state.bucketKeyEnabled;
    if (bucketKey !== undefined) out.BucketKeyEnabled = bucketKey;
  }
  return out;
}

/** The properties a new object would otherwise lose: the same for CopyObject and CreateMultipartUpload. */
function preservedProperties(state: ObjectState, opts: CopyOptions) {
  const p = {
    ContentType: state.contentType,
    CacheControl: state.cacheControl,
    ContentDisposition: state.contentDisposition,
    ContentEncoding: state.contentEncoding,
    ContentLanguage: state.contentLanguage,
    Expires: state.expires,
    WebsiteRedirectLocation: state.websiteRedirectLocation,
    Metadata: state.metadata,
    StorageClass: (opts.storageClass ?? state.storageClass) as CopyObjectCommandInput['StorageClass'],
    ObjectLockMode: state.objectLockMode as CopyObjectCommandInput['ObjectLockMode'],
    ObjectLockRetainUntilDate: state.objectLockRetainUntilDate,
    ObjectLockLegalHoldStatus: state.objectLockLegalHold as CopyObjectCommandInput['ObjectLockLegalHoldStatus'],
    ChecksumAlgorithm: state.checksumAlgorithm,
    ...opts.grants,
    ...sseHeaders(opts.target, state),
  };
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as typeof p;
}

/** What the write response says about the new object's encryption (some servers say nothing). */
export interface WrittenEncryption {
  sse?: string;
  kmsKeyId?: string;
  bucketKeyEnabled?: boolean;
}

function written(out: { ServerSideEncryption?: string; SSEKMSKeyId?: string; BucketKeyEnabled?: boolean }): WrittenEncryption {
  return {
    ...(out.ServerSideEncryption ? { sse: out.ServerSideEncryption } : {}),
    ...(out.SSEKMSKeyId ? { kmsKeyId: out.SSEKMSKeyId } : {}),
    ...(out.BucketKeyEnabled !== undefined ? { bucketKeyEnabled: out.BucketKeyEnabled } : {}),
  };
}

/** MD5 of an empty body: a copy request has no body. */
const EMPTY_BODY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';

/**
 * Writes that set object-lock fields must carry an integrity header (S3's rule
 * for requests with retention); a copy has no body, so the MD5 of nothing.
 */
function withLockIntegrity(command: CopyObjectCommand, state: ObjectState): CopyObjectCommand {
  if (!state.objectLockMode && state.objectLockLegalHold !== 'ON') return command;
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['content-md5'] = EMPTY_BODY_MD5;
      return next(args);
    },
    { step: 'build', name: 's3eoLockIntegrity' },
  );
  return command;
}

export async function copyInPlace(s3: S3Client, state: ObjectState, opts: CopyOptions): Promise<WrittenEncryption> {
  const command = withLockIntegrity(
    new CopyObjectCommand({
      Bucket: opts.bucket,
      Key: state.key,
      CopySource: copySource(opts.bucket, state),
      CopySourceIfMatch: state.etag,
      // REPLACE with the metadata read by HEAD: S3 refuses an in-place COPY
      // that changes nothing, and some servers refuse any in-place COPY.
      MetadataDirective: 'REPLACE',
      TaggingDirective: 'COPY',
      ...preservedProperties(state, opts),
    }),
    state,
  );
  const out = await s3.send(command, { abortSignal: opts.signal });
  return written(out);
}

export interface MultipartOptions extends CopyOptions {
  /** Part size when the source was written in one piece. */
  defaultPartSize: number;
  /** Size of the source's first part, when it was a multipart upload. */
  sourcePartSize?: number;
  /** Where the upload id is recorded before any part is copied, so a crash leaves nothing unknown behind. */
  uploads?: UploadJournal;
}

const MAX_PARTS = 10_000;
const MIN_PART = 5 * 1024 * 1024;
const MAX_PART = 5 * 1024 * 1024 * 1024;

export function choosePartSize(size: number, sourcePartSize: number | undefined, defaultPartSize: number): number {
  // Keeping the writer's part size keeps a multipart ETag's shape.
  let part = sourcePartSize && sourcePartSize >= MIN_PART ? sourcePartSize : defaultPartSize;
  part = Math.max(part, Math.ceil(size / MAX_PARTS));
  return Math.min(Math.max(part, 1), MAX_PART);
}

/**
 * `signal` (a stop) is looked at between steps: before the upload is created,
 * between parts and before Complete; then the upload is aborted and
 * StoppedError thrown. Requests already sent are not cut (an aborted Create
 * could leave an upload whose id we never learn; an aborted Complete an
 * unknown outcome), so a stop waits for at most one part copy.
 */
export async function multipartCopyInPlace(s3: S3Client, state: ObjectState, opts: MultipartOptions): Promise<WrittenEncryption> {
  const stopped = (): StoppedError => new StoppedError(`stopped during the multipart copy of ${opts.bucket}/${state.key}`);
  // A multipart upload has no tagging directive: the tags must be read and resent.
  const tags = await getTags(s3, opts.bucket, state.key, state.versionId, opts.signal);
  const props = preservedProperties(state, opts);
  if (opts.signal?.aborted) throw stopped();
  const created = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: opts.bucket,
      Key: state.key,
      ...props,
      ...(tags.length > 0 ? { Tagging: tagsToQuery(tags) } : {}),
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const upload = { key: state.key, uploadId };
  try {
    await opts.uploads?.opened(upload);
    const partSize = choosePartSize(state.size, opts.sourcePartSize, opts.defaultPartSize);
    const parts: CompletedPart[] = [];
    const source = copySource(opts.bucket, state);
    for (let start = 0, n = 1; start < state.size || n === 1; start += partSize, n++) {
      if (opts.signal?.aborted) throw stopped();
      const end = Math.min(start + partSize, state.size) - 1;
      const out = await s3.send(
        new UploadPartCopyCommand({
          Bucket: opts.bucket,
          Key: state.key,
          UploadId: uploadId,
          PartNumber: n,
          CopySource: source,
          CopySourceIfMatch: state.etag,
          ...(state.size > 0 ? { CopySourceRange: `bytes=${start}-${end}` } : {}),
        }),
      );
      const r = out.CopyPartResult;
      parts.push({
        PartNumber: n,
        ETag: r?.ETag,
        ...(r?.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}),
        ...(r?.ChecksumCRC32C ? { ChecksumCRC32C: r.ChecksumCRC32C } : {}),
        ...(r?.ChecksumSHA1 ? { ChecksumSHA1: r.ChecksumSHA1 } : {}),
        ...(r?.ChecksumSHA256 ? { ChecksumSHA256: r.ChecksumSHA256 } : {}),
        ...(r?.ChecksumCRC64NVME ? { ChecksumCRC64NVME: r.ChecksumCRC64NVME } : {}),
      });
      if (state.size === 0) break;
    }
    if (opts.signal?.aborted) throw stopped();
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: opts.bucket,
        Key: state.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
        // The object may have changed while its parts were copied: the parts
        // carry the old ETag's data, so only complete over that same object.
        IfMatch: state.etag,
      }),
    );
    opts.uploads?.closed(upload);
    return written(done);
  } catch (err) {
    // Never leave an open upload behind (it costs storage and hides the failure). If
    // the abort itself fails the upload stays recorded, and a later run aborts it.
    if ((await abortUpload(s3, opts.bucket, upload)) === true) opts.uploads?.closed(upload);
    throw err;
  }
}

export async function updateEncryptionInPlace(
  s3: S3Client,
  state: ObjectState,
  opts: { bucket: string; target: ResolvedTarget; signal?: AbortSignal },
): Promise<WrittenEncryption> {
  if (!opts.target.kmsKeyArn) throw new Error('UpdateObjectEncryption needs the target key ARN');
  await s3.send(
    new UpdateObjectEncryptionCommand({
      Bucket: opts.bucket,
      Key: state.key,
      ...(state.versionId && state.versionId !== 'null' ? { VersionId: state.versionId } : {}),
      ObjectEncryption: {
        SSEKMS: {
          KMSKeyArn: opts.target.kmsKeyArn,
          ...(opts.target.bucketKeyEnabled !== undefined ? { BucketKeyEnabled: opts.target.bucketKeyEnabled } : {}),
        },
      },
    }),
    { abortSignal: opts.signal },
  );
  return {};
}
