// Reading everything about one object that a copy must carry over.
import {
  GetObjectAclCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type Grant,
  type S3Client,
  type Tag,
} from '@aws-sdk/client-s3';
import { leanOf } from '../s3/clients.js';

export interface ObjectState {
  key: string;
  size: number;
  etag: string;
  versionId?: string;
  lastModified?: Date;
  sse?: string;
  kmsKeyId?: string;
  bucketKeyEnabled?: boolean;
  storageClass: string;
  /** x-amz-restore: present when an archived object was (or is being) restored. */
  restore?: string;
  /** x-amz-archive-status: ARCHIVE_ACCESS / DEEP_ARCHIVE_ACCESS for Intelligent-Tiering objects in an archive tier. */
  archiveStatus?: string;
  /** x-amz-missing-meta: user metadata entries HEAD could not return as headers (a copy would drop them). */
  missingMeta?: number;
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: Date;
  /** Expires as sent by the writer when it is not an HTTP date ("0", "-1"): the SDK keeps it only as a string. */
  expiresString?: string;
  websiteRedirectLocation?: string;
  metadata: Record<string, string>;
  objectLockMode?: string;
  objectLockRetainUntilDate?: Date;
  objectLockLegalHold?: string;
  checksumAlgorithm?: 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256' | 'CRC64NVME';
  /** Parts of a multipart upload, with the size of the first (the part size used). */
  partsCount?: number;
  firstPartSize?: number;
  /** Customer-provided key encryption cannot be copied without the key. */
  sseCustomerAlgorithm?: string;
}

export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<ObjectState> {
  const input = { Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' as const };
  const lean = leanOf(s3);
  const h =
    lean && (await lean.available(bucket))
      ? await lean.headObject(input, signal)
      : await s3.send(new HeadObjectCommand(input), { abortSignal: signal });
  const checksumAlgorithm = h.ChecksumCRC64NVME
    ? 'CRC64NVME'
    : h.ChecksumCRC32C
      ? 'CRC32C'
      : h.ChecksumCRC32
        ? 'CRC32'
        : h.ChecksumSHA256
          ? 'SHA256'
          : h.ChecksumSHA1
            ? 'SHA1'
            : undefined;
  const partsMatch = /-(\d+)"?$/.exec(h.ETag ?? '');
  const state: ObjectState = {
    key,
    size: h.ContentLength ?? 0,
    etag: h.ETag ?? '',
    storageClass: h.StorageClass ?? 'STANDARD',
    metadata: h.Metadata ?? {},
  };
  const optional: Partial<ObjectState> = {
    versionId: h.VersionId,
    lastModified: h.LastModified,
    sse: h.ServerSideEncryption,
    kmsKeyId: h.SSEKMSKeyId,
    bucketKeyEnabled: h.BucketKeyEnabled,
    restore: h.Restore,
    archiveStatus: h.ArchiveStatus,
    missingMeta: h.MissingMeta,
    contentType: h.ContentType,
    cacheControl: h.CacheControl,
    contentDisposition: h.ContentDisposition,
    contentEncoding: h.ContentEncoding,
    contentLanguage: h.ContentLanguage,
    expires: h.Expires,
    expiresString: h.Expires === undefined && h.ExpiresString ? h.ExpiresString : undefined,
    websiteRedirectLocation: h.WebsiteRedirectLocation,
    objectLockMode: h.ObjectLockMode,
    objectLockRetainUntilDate: h.ObjectLockRetainUntilDate,
    objectLockLegalHold: h.ObjectLockLegalHoldStatus,
    checksumAlgorithm,
    partsCount: partsMatch ? Number(partsMatch[1]) : undefined,
    sseCustomerAlgorithm: h.SSECustomerAlgorithm,
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined && v !== null) (state as unknown as Record<string, unknown>)[k] = v;
  }
  return state;
}

/**
 * The size of part 1 of a multipart object: the part size its writer used.
 * No If-Match here: some servers answer a part HEAD with the part's ETag; a
 * change meanwhile is caught by the part copies' own condition.
 */
export async function firstPartSize(
  s3: S3Client,
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: 1 }), { abortSignal: signal });
  return h.ContentLength;
}

export async function getTags(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string | undefined,
  signal?: AbortSignal,
): Promise<Tag[]> {
  const out = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId }), {
    abortSignal: signal,
  });
  return out.TagSet ?? [];
}

/** The grants of an object, as the x-amz-grant-* header values a write takes. */
export interface AclGrants {
  GrantFullControl?: string;
  GrantRead?: string;
  GrantReadACP?: string;
  GrantWriteACP?: string;
}

function grantee(g: Grant): string | undefined {
  const who = g.Grantee;
  if (!who) return undefined;
  if (who.ID) return `id="${who.ID}"`;
  if (who.URI) return `uri="${who.URI}"`;
  if (who.EmailAddress) return `emailAddress="${who.EmailAddress}"`;
  return undefined;
}

/**
 * Reads the ACL and turns it into grant headers. Returns undefined when the
 * ACL is just "owner has FULL_CONTROL": the default of a new object already.
 */
export async function getAclGrants(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string | undefined,
  signal?: AbortSignal,
): Promise<AclGrants | undefined> {
  const acl = await s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: key, VersionId: versionId }), {
    abortSignal: signal,
  });
  const ownerId = acl.Owner?.ID;
  const byPermission: Record<string, string[]> = {};
  let onlyOwner = true;
  for (const g of acl.Grants ?? []) {
    const who = grantee(g);
    if (!who || !g.Permission) continue;
    if (!(g.Grantee?.ID === ownerId && g.Permission === 'FULL_CONTROL')) onlyOwner = false;
    (byPermission[g.Permission] ??= []).push(who);
  }
  if (onlyOwner) return undefined;
  const grants: AclGrants = {};
  const join = (p: string): string | undefined => byPermission[p]?.join(', ');
  const full = join('FULL_CONTROL');
  const read = join('READ');
  const readAcp = join('READ_ACP');
  const writeAcp = join('WRITE_ACP');
  if (full) grants.GrantFullControl = full;
  if (read) grants.GrantRead = read;
  if (readAcp) grants.GrantReadACP = readAcp;
  if (writeAcp) grants.GrantWriteACP = writeAcp;
  return grants;
}

export function tagsToQuery(tags: Tag[]): string {
  return tags.map((t) => `${encodeURIComponent(t.Key ?? '')}=${encodeURIComponent(t.Value ?? '')}`).join('&');
}
