// Writing an object onto itself with the target encryption, carrying over
// everything the copy would otherwise reset. Every write is conditional on the
// object that was inspected (ETag, LastModified), evaluated against the
// object's CURRENT version, so newer data is never replaced by older, in
// versioned buckets too. docs/design.md ("Conditions on every write") says
// which condition each server honours and what that guarantees.
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UpdateObjectEncryptionCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type CopyPartResult,
  type CopyObjectCommandInput,
  type S3Client,
  type Tag,
} from '@aws-sdk/client-s3';
import { getAclGrants, getTags, headObject, tagsToQuery, type AclGrants, type ObjectState } from './inspect.js';
import type { ResolvedTarget } from '../s3/kms.js';
import { StoppedError } from '../s3/abortable.js';
import { abortUpload, type UploadJournal } from './uploads.js';
import { leanOf } from '../s3/clients.js';
import { leanCopyable } from '../s3/lean.js';

export interface CopyOptions {
  bucket: string;
  target: ResolvedTarget;
  storageClass?: string;
  grants?: AclGrants;
  /** The ACL was read (not skipped): a multipart copy checks it again before it completes. */
  aclRead?: boolean;
  signal?: AbortSignal;
  now?: Date;
}

/**
 * x-amz-copy-source: bucket/key, the key URL-encoded segment by segment.
 * `pinned` adds the inspected versionId. Never pin a single copy: its source
 * conditions are then evaluated against that immutable version and always
 * pass, and the copy would bury a newer current version under the older bytes.
 */
export function copySource(bucket: string, state: ObjectState, pinned = false): string {
  const key = state.key.split('/').map(encodeURIComponent).join('/');
  const pin =
    pinned && state.versionId && state.versionId !== 'null' ? `?versionId=${encodeURIComponent(state.versionId)}` : '';
  return `${bucket}/${key}${pin}`;
}

/** A write's condition failed: the object is not the one inspected. Thrown like S3's own 412, so it is looked at again. */
export class ChangedError extends Error {
  readonly $metadata = { httpStatusCode: 412, attempts: 1 };
  constructor(message: string) {
    super(message);
    this.name = 'PreconditionFailed';
  }
}

/**
 * The conditions of an in-place CopyObject, on the current object:
 * - IfMatch (destination): the current object still has the inspected ETag when
 *   the copy commits. AWS evaluates it atomically with the write (409
 *   ConditionalRequestConflict on a race).
 * - CopySourceIfUnmodifiedSince = the inspected LastModified: any rewrite in a
 *   later second, also one with the same bytes (same ETag) and new metadata.
 * - not CopySourceIfMatch: AWS documents that if-match true together with
 *   if-unmodified-since false COPIES (200), which would make the second
 *   condition vacuous; IfMatch covers the ETag instead.
 */
export function copyConditions(
  state: ObjectState,
): Pick<CopyObjectCommandInput, 'IfMatch' | 'CopySourceIfUnmodifiedSince' | 'CopySourceIfMatch'> {
  return {
    IfMatch: state.etag,
    ...(state.lastModified ? { CopySourceIfUnmodifiedSince: state.lastModified } : { CopySourceIfMatch: state.etag }),
  };
}

/** A retention whose date has passed protects nothing, and S3 refuses a past date on a write. */
export function retentionExpired(state: ObjectState, now: Date): boolean {
  return state.objectLockRetainUntilDate !== undefined && state.objectLockRetainUntilDate <= now;
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
    ...(retentionExpired(state, opts.now ?? new Date())
      ? {}
      : {
          ObjectLockMode: state.objectLockMode as CopyObjectCommandInput['ObjectLockMode'],
          ObjectLockRetainUntilDate: state.objectLockRetainUntilDate,
        }),
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

function written(out: {
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  BucketKeyEnabled?: boolean;
}): WrittenEncryption {
  return {
    ...(out.ServerSideEncryption ? { sse: out.ServerSideEncryption } : {}),
    ...(out.SSEKMSKeyId ? { kmsKeyId: out.SSEKMSKeyId } : {}),
    ...(out.BucketKeyEnabled !== undefined ? { bucketKeyEnabled: out.BucketKeyEnabled } : {}),
  };
}

/** MD5 of an empty body: a copy request has no body. */
const EMPTY_BODY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';

/**
 * Headers the SDK cannot send from the input:
 * - Content-MD5 on writes that set object-lock fields (S3's rule for requests
 *   with retention); a copy has no body, so the MD5 of nothing;
 * - an Expires that is not an HTTP date ("0", "-1"), exactly as it was: the
 *   SDK's Expires input is a Date.
 */
function rawHeaders(state: ObjectState, lockIntegrity: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  if (lockIntegrity && (state.objectLockMode || state.objectLockLegalHold === 'ON'))
    headers['content-md5'] = EMPTY_BODY_MD5;
  if (state.expires === undefined && state.expiresString !== undefined) headers.expires = state.expiresString;
  return headers;
}

function withRawHeaders<C extends CopyObjectCommand | CreateMultipartUploadCommand>(
  command: C,
  state: ObjectState,
  lockIntegrity: boolean,
): C {
  const headers = rawHeaders(state, lockIntegrity);
  if (Object.keys(headers).length === 0) return command;
  (command as CopyObjectCommand).middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) Object.assign(request.headers, headers);
      return next(args);
    },
    { step: 'build', name: 's3eoRawHeaders' },
  );
  return command;
}

export async function copyInPlace(s3: S3Client, state: ObjectState, opts: CopyOptions): Promise<WrittenEncryption> {
  const input: CopyObjectCommandInput = {
    Bucket: opts.bucket,
    Key: state.key,
    CopySource: copySource(opts.bucket, state),
    ...copyConditions(state),
    // REPLACE with the metadata read by HEAD: S3 refuses an in-place COPY
    // that changes nothing, and some servers refuse any in-place COPY.
    MetadataDirective: 'REPLACE',
    TaggingDirective: 'COPY',
    ...preservedProperties(state, opts),
  };
  const lean = leanOf(s3);
  if (lean && leanCopyable(input) && (await lean.available(opts.bucket))) {
    return written(await lean.copyObject(input, rawHeaders(state, true), opts.signal));
  }
  const out = await s3.send(withRawHeaders(new CopyObjectCommand(input), state, true), { abortSignal: opts.signal });
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
export async function multipartCopyInPlace(
  s3: S3Client,
  state: ObjectState,
  opts: MultipartOptions,
): Promise<WrittenEncryption> {
  const stopped = (): StoppedError =>
    new StoppedError(`stopped during the multipart copy of ${opts.bucket}/${state.key}`);
  // A multipart upload has no tagging directive: the tags must be read and resent.
  const tags = await getTags(s3, opts.bucket, state.key, state.versionId, opts.signal);
  const props = preservedProperties(state, opts);
  if (opts.signal?.aborted) throw stopped();
  const release = await opts.uploads?.slot?.();
  try {
    return await copyThroughUpload(s3, state, opts, { tags, props, stopped });
  } finally {
    release?.();
  }
}

/** Creates the upload, records it, copies the parts and completes it; aborts it on any failure. */
async function copyThroughUpload(
  s3: S3Client,
  state: ObjectState,
  opts: MultipartOptions,
  { tags, props, stopped }: { tags: Tag[]; props: ReturnType<typeof preservedProperties>; stopped: () => StoppedError },
): Promise<WrittenEncryption> {
  if (opts.signal?.aborted) throw stopped();
  const created = await s3.send(
    // No abort signal: a Create cut off mid-flight could leave an upload whose id we never learn.
    withRawHeaders(
      new CreateMultipartUploadCommand({
        Bucket: opts.bucket,
        Key: state.key,
        ...props,
        ...(tags.length > 0 ? { Tagging: tagsToQuery(tags) } : {}),
      }),
      state,
      false,
    ),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const upload = { key: state.key, uploadId };
  try {
    await opts.uploads?.opened(upload);
    const parts = await copyParts(s3, state, uploadId, opts, stopped);
    if (opts.signal?.aborted) throw stopped();
    await stillTheSame(s3, state, tags, opts);
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

/** The part copies of one upload, one at a time; a stop is looked at before each. */
async function copyParts(
  s3: S3Client,
  state: ObjectState,
  uploadId: string,
  opts: MultipartOptions,
  stopped: () => StoppedError,
): Promise<CompletedPart[]> {
  const partSize = choosePartSize(state.size, opts.sourcePartSize, opts.defaultPartSize);
  const parts: CompletedPart[] = [];
  // Parts are pinned to the inspected version, so all of them hold the same
  // bytes whatever a server does with the source conditions; what becomes
  // current is guarded at Complete.
  const source = copySource(opts.bucket, state, true);
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
    parts.push(completedPart(n, out.CopyPartResult));
    if (state.size === 0) break;
  }
  return parts;
}

function completedPart(n: number, r: CopyPartResult | undefined): CompletedPart {
  return {
    PartNumber: n,
    ETag: r?.ETag,
    ...(r?.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}),
    ...(r?.ChecksumCRC32C ? { ChecksumCRC32C: r.ChecksumCRC32C } : {}),
    ...(r?.ChecksumSHA1 ? { ChecksumSHA1: r.ChecksumSHA1 } : {}),
    ...(r?.ChecksumSHA256 ? { ChecksumSHA256: r.ChecksumSHA256 } : {}),
    ...(r?.ChecksumCRC64NVME ? { ChecksumCRC64NVME: r.ChecksumCRC64NVME } : {}),
  };
}

function sameTags(a: Tag[], b: Tag[]): boolean {
  const norm = (t: Tag[]) => JSON.stringify(t.map((x) => [x.Key ?? '', x.Value ?? '']).sort());
  return norm(a) === norm(b);
}

/**
 * Just before Complete: the object is still the one inspected, with the tags
 * and ACL this upload carries. Complete's IfMatch covers the ETag atomically;
 * this also catches a same-bytes rewrite (LastModified, version) and tag or ACL
 * changes made while the parts were copied, which no S3 condition covers. What
 * remains is the round trip between this check and Complete.
 */
async function stillTheSame(s3: S3Client, state: ObjectState, tags: Tag[], opts: MultipartOptions): Promise<void> {
  const now = await headObject(s3, opts.bucket, state.key, opts.signal);
  const changed =
    now.etag !== state.etag ||
    (now.versionId ?? '') !== (state.versionId ?? '') ||
    (now.lastModified?.getTime() ?? 0) !== (state.lastModified?.getTime() ?? 0);
  if (changed) throw new ChangedError(`s3://${opts.bucket}/${state.key} changed while its parts were copied`);
  if (!sameTags(await getTags(s3, opts.bucket, state.key, state.versionId, opts.signal), tags)) {
    throw new ChangedError(`s3://${opts.bucket}/${state.key}: tags changed while its parts were copied`);
  }
  if (opts.aclRead) {
    const grants = await getAclGrants(s3, opts.bucket, state.key, state.versionId, opts.signal);
    if (JSON.stringify(grants ?? {}) !== JSON.stringify(opts.grants ?? {})) {
      throw new ChangedError(`s3://${opts.bucket}/${state.key}: ACL changed while its parts were copied`);
    }
  }
}

export async function updateEncryptionInPlace(
  s3: S3Client,
  state: ObjectState,
  opts: { bucket: string; target: ResolvedTarget; signal?: AbortSignal },
): Promise<WrittenEncryption> {
  if (!opts.target.kmsKeyArn) throw new Error('UpdateObjectEncryption needs the target key ARN');
  // Absent, AWS turns the bucket key OFF: a job that does not name it keeps the object's own setting.
  const bucketKey = opts.target.bucketKeyEnabled ?? state.bucketKeyEnabled;
  await s3.send(
    new UpdateObjectEncryptionCommand({
      Bucket: opts.bucket,
      Key: state.key,
      ...(state.versionId && state.versionId !== 'null' ? { VersionId: state.versionId } : {}),
      ObjectEncryption: {
        SSEKMS: {
          KMSKeyArn: opts.target.kmsKeyArn,
          ...(bucketKey !== undefined ? { BucketKeyEnabled: bucketKey } : {}),
        },
      },
    }),
    { abortSignal: opts.signal },
  );
  return {};
}
