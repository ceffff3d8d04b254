// Where the test servers differ from AWS S3, as verified against the pinned versions
// (SeaweedFS 7506e5f91cd6 with local-kms 2a5e92d09ab6, moto 5.2.5; see
// test/env/build-s3.sh). test/server-gaps.test.ts proves every entry below still
// holds, so a server upgrade that fixes one makes that test fail: then update this
// table (and any engine workaround or test branch that relies on it).
//
// Engine tests can branch on a gap with hasGap(env.kind, id) instead of on the
// server name, so the reason for the branch is written down here.

export type ServerKind = 'seaweedfs' | 'moto';

export type GapId =
  | 'seaweedfs-inplace-copy-requires-replace'
  | 'seaweedfs-inplace-kms-rekey-is-noop'
  | 'seaweedfs-upload-part-copy-from-kms-501'
  | 'seaweedfs-kms-errors-are-500'
  | 'seaweedfs-kms-without-key-id-fails'
  | 'seaweedfs-copy-response-lacks-sse'
  | 'seaweedfs-bucket-key-not-reported'
  | 'seaweedfs-copy-keeps-storage-class'
  | 'seaweedfs-website-redirect-dropped'
  | 'seaweedfs-acls-kept-under-owner-enforced'
  | 'seaweedfs-list-url-encoding-plus'
  | 'moto-ignores-copy-source-conditions'
  | 'moto-kms-keys-not-validated'
  | 'moto-sse-kms-key-id-as-sent'
  | 'moto-head-part-number-etag'
  | 'moto-get-retention-returns-object'
  | 'seaweedfs-expires-must-be-a-date'
  | 'moto-multipart-upload-drops-object-lock'
  | 'moto-multipart-object-acl-500'
  | 'etag-is-plaintext-md5-for-sse-kms'
  | 'no-default-encryption';

export interface ServerGap {
  id: GapId;
  /** 'both': seen on SeaweedFS and on moto. */
  server: ServerKind | 'both';
  /** What the server does (verified). */
  serverBehaviour: string;
  /** What AWS S3 does. */
  awsBehaviour: string;
  /** What this means for the engine and for the tests. */
  consequence: string;
}

export const SERVER_GAPS: readonly ServerGap[] = [
  {
    id: 'seaweedfs-inplace-copy-requires-replace',
    server: 'seaweedfs',
    serverBehaviour:
      'In an unversioned bucket, CopyObject onto itself with x-amz-metadata-directive COPY (or no directive) is ' +
      'rejected with 400 InvalidRequest ("copy an object to itself without changing ... encryption attributes") ' +
      'even when new SSE headers are sent. With REPLACE it works. In a versioned bucket COPY works (it writes ' +
      'a new version).',
    awsBehaviour:
      'An in-place copy that changes the encryption is legal with COPY: it is the documented ' +
      'way to encrypt existing objects, and keeps the metadata.',
    consequence:
      'The engine must re-encrypt in place with REPLACE and resend everything REPLACE would drop: user metadata, ' +
      'Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires, ' +
      'WebsiteRedirectLocation, StorageClass (all read from HEAD), guarded by x-amz-copy-source-if-match with the ' +
      'HEAD ETag so a concurrent write is not overwritten with stale metadata. Tags are kept (tagging directive COPY).',
  },
  {
    id: 'seaweedfs-inplace-kms-rekey-is-noop',
    server: 'seaweedfs',
    serverBehaviour:
      'In an unversioned bucket, an in-place REPLACE copy of an SSE-KMS object to a DIFFERENT KMS key answers 200 ' +
      'but changes nothing: SeaweedFS takes a metadata-only "key rotation" path that keeps the chunks and the old ' +
      'wrapped data key; HEAD still reports the old key and local-kms sees no GenerateDataKey for the new key. ' +
      'The same happens when the old key is disabled. In a versioned bucket, or to another object key, the copy ' +
      're-encrypts properly; so do SSE-KMS -> AES256 and AES256 -> SSE-KMS in place.',
    awsBehaviour: 'The object is re-encrypted under the new key; HEAD reports the new key ARN.',
    consequence:
      'The engine must verify every re-encryption with a HEAD (never trust the 200, nor the copy response, see ' +
      'seaweedfs-copy-response-lacks-sse) and treat a mismatch as a failure, not success. On SeaweedFS an in-place ' +
      'KMS key A -> key B change needs a detour (e.g. two copies: -> AES256 -> aws:kms B); tests of key rotation in ' +
      'unversioned buckets must either expect that detour or run on moto.',
  },
  {
    id: 'seaweedfs-upload-part-copy-from-kms-501',
    server: 'seaweedfs',
    serverBehaviour:
      'UploadPartCopy whose source object is SSE-KMS (single-part or multipart) fails with 501 NotImplemented. ' +
      'Sources that are plain or SSE-S3 work, into an SSE-KMS multipart upload too.',
    awsBehaviour: 'UploadPartCopy works from any SSE-S3 / SSE-KMS source.',
    consequence:
      'The multipart-copy path (objects > 5 GiB, or a lower engine threshold) cannot re-encrypt SSE-KMS sources on ' +
      'SeaweedFS: the engine must report such an object as failed with the server error (501 is not retryable), and ' +
      'multipart-copy tests on SeaweedFS must use SSE-S3 or plain sources.',
  },
  {
    id: 'seaweedfs-kms-errors-are-500',
    server: 'seaweedfs',
    serverBehaviour:
      'Every KMS failure is 500 InternalError: PUT/copy with an unknown key id or alias, PUT/copy to a disabled ' +
      'key, GET of an object whose key has been disabled. HEAD of that object still answers 200.',
    awsBehaviour:
      'A 4xx error naming the KMS problem (KMS.NotFoundException, KMS.DisabledException, ...), not retried by SDKs.',
    consequence:
      'The SDK retries these 500s as transient and the engine would see "server error" rather than "bad key". ' +
      'The engine should check the target key with KMS DescribeKey (exists, KeyState Enabled) before a job starts, ' +
      'and tests of bad-key handling must not assert on the S3 error code from SeaweedFS.',
  },
  {
    id: 'seaweedfs-kms-without-key-id-fails',
    server: 'seaweedfs',
    serverBehaviour: 'x-amz-server-side-encryption: aws:kms without a key id fails with 500 InternalError.',
    awsBehaviour: 'The AWS managed key aws/s3 is used.',
    consequence: 'Tests must always name a customer key for SSE-KMS; the engine should require one.',
  },
  {
    id: 'seaweedfs-copy-response-lacks-sse',
    server: 'seaweedfs',
    serverBehaviour:
      'CopyObject (and CreateMultipartUpload) responses carry no x-amz-server-side-encryption, ' +
      'x-amz-server-side-encryption-aws-kms-key-id or bucket-key header, even though the object is encrypted.',
    awsBehaviour: 'The response reports the encryption applied to the new object.',
    consequence: 'The engine must confirm the result with HEAD, never from the copy response.',
  },
  {
    id: 'seaweedfs-bucket-key-not-reported',
    server: 'seaweedfs',
    serverBehaviour:
      'PutObject echoes x-amz-server-side-encryption-bucket-key-enabled: true, but HEAD/GET never return it, ' +
      'for objects written with it or under a bucket default that enables it.',
    awsBehaviour: 'HEAD/GET return x-amz-server-side-encryption-bucket-key-enabled: true for such objects.',
    consequence:
      'Bucket-key state cannot be observed on SeaweedFS: if the engine compared it, every object would look ' +
      'non-compliant and be re-encrypted on every run. Compare bucket-key only where the server reports it.',
  },
  {
    id: 'seaweedfs-copy-keeps-storage-class',
    server: 'seaweedfs',
    serverBehaviour: 'A copy without x-amz-storage-class keeps the source storage class (e.g. STANDARD_IA).',
    awsBehaviour: 'A copy without x-amz-storage-class is stored as STANDARD (moto does the same).',
    consequence:
      'The engine must always send the StorageClass read from HEAD; a missing one is only caught by tests on moto.',
  },
  {
    id: 'seaweedfs-website-redirect-dropped',
    server: 'seaweedfs',
    serverBehaviour: 'x-amz-website-redirect-location is accepted on PutObject but not stored (HEAD lacks it).',
    awsBehaviour: 'Stored and returned on HEAD/GET. (moto stores it, and drops it on a REPLACE copy unless resent.)',
    consequence: 'Tests that the engine resends WebsiteRedirectLocation must run on moto.',
  },
  {
    id: 'seaweedfs-acls-kept-under-owner-enforced',
    server: 'seaweedfs',
    serverBehaviour:
      'GetBucketOwnershipControls reports BucketOwnerEnforced (ACLs disabled) for every bucket, yet PutObject ' +
      'and CopyObject store x-amz-grant-* grants and GetObjectAcl returns them.',
    awsBehaviour:
      "With BucketOwnerEnforced, ACLs are disabled: a request with grants other than the owner's is refused " +
      '(AccessControlListNotSupported), so no object carries extra grants.',
    consequence:
      'The engine trusts the ownership controls (as on AWS) and does not read ACLs on such buckets, saving one ' +
      'request per object; grants put on SeaweedFS objects anyway are not carried over. ACL preservation is ' +
      'proved on moto, where ownership controls are absent and ACLs are in force.',
  },
  {
    id: 'moto-multipart-object-acl-500',
    server: 'moto',
    serverBehaviour:
      'GetObjectAcl on an object written by a multipart upload that carried no grant headers fails with 500 ' +
      '(an HTML error page: the object has no ACL record).',
    awsBehaviour: 'Every object has an ACL; GetObjectAcl returns the owner FULL_CONTROL grant.',
    consequence:
      'Tests on moto create multipart objects with explicit grant headers, so that the object has an ACL to ' +
      'read and carry over.',
  },
  {
    id: 'seaweedfs-list-url-encoding-plus',
    server: 'seaweedfs',
    serverBehaviour:
      'ListObjectsV2 with EncodingType=url encodes a space in the last path segment of a Key as "+" (form ' +
      'encoding; a literal "+" is %2B) but as %20 in the other segments and in CommonPrefixes: "dir a/b c" is ' +
      'listed as "dir%20a/b+c". moto uses %20 everywhere.',
    awsBehaviour:
      'Keys and prefixes are percent-encoded (s3-tests expect %20 for a space); the JS SDK v3 does not decode them.',
    consequence:
      'Decode listed keys with "+" -> space first, then percent-decoding: decodeURIComponent(k.replace(/\\+/g, ' +
      '"%20")). It is right for both servers and for AWS; plain decodeURIComponent would corrupt keys with spaces ' +
      'on SeaweedFS.',
  },
  {
    id: 'moto-ignores-copy-source-conditions',
    server: 'moto',
    serverBehaviour:
      'CopyObject and UploadPartCopy ignore x-amz-copy-source-if-match and x-amz-copy-source-if-unmodified-since: ' +
      'the copy is done even when the condition is false (also for in-place copies). CopyObject also ignores the ' +
      "destination's If-Match, and CompleteMultipartUpload its If-Match (test/engine/safety-versioned.test.ts).",
    awsBehaviour: '412 PreconditionFailed and nothing is written. (SeaweedFS does this too.)',
    consequence:
      'Tests that a concurrent overwrite between HEAD and copy is detected (no stale re-encryption) must run on ' +
      'SeaweedFS; on moto they would pass vacuously or fail.',
  },
  {
    id: 'moto-kms-keys-not-validated',
    server: 'moto',
    serverBehaviour:
      'S3 accepts any x-amz-server-side-encryption-aws-kms-key-id: unknown key ARNs, unknown aliases and disabled ' +
      'keys; GET of an object whose key is disabled still returns the data. (moto KMS itself does report the ' +
      'disabled KeyState.)',
    awsBehaviour: 'PUT/copy fail with KMS.NotFoundException / KMS.DisabledException; GET fails for a disabled key.',
    consequence:
      'Bad-key and disabled-key error paths can only be tested on SeaweedFS (see seaweedfs-kms-errors-are-500); ' +
      'on moto the engine’s own DescribeKey pre-check is the only thing that can catch them.',
  },
  {
    id: 'moto-sse-kms-key-id-as-sent',
    server: 'moto',
    serverBehaviour:
      'HEAD/GET return SSEKMSKeyId exactly as the writer sent it: an alias name, a bare key id or an ARN; ' +
      'aws:kms without a key id returns no key id at all.',
    awsBehaviour: 'Always the full key ARN (for no key id: the ARN of the aws/s3 managed key). SeaweedFS does this.',
    consequence:
      'The engine must normalise both the desired key and the observed key to an ARN (KMS DescribeKey) before ' +
      'deciding whether an object is already compliant; objects seeded by tests on moto should use ARNs unless the ' +
      'test is about this normalisation.',
  },
  {
    id: 'moto-head-part-number-etag',
    server: 'moto',
    serverBehaviour: 'HEAD with partNumber=1 on a multipart object returns an ETag that is not the object ETag.',
    awsBehaviour: 'The ETag of the whole object (with PartsCount and the part length).',
    consequence: 'Do not use HEAD partNumber ETags for preconditions; read the object ETag from a plain HEAD.',
  },
  {
    id: 'seaweedfs-expires-must-be-a-date',
    server: 'seaweedfs',
    serverBehaviour: 'PutObject with an Expires header that is not a date ("0", "-1") is refused: 400 MalformedDate.',
    awsBehaviour: 'The header is stored as sent and returned on HEAD/GET (the SDK puts it in ExpiresString).',
    consequence:
      'Objects with a non-date Expires cannot exist on SeaweedFS; the engine resends such a header raw, and that ' +
      'is tested on moto.',
  },
  {
    id: 'moto-multipart-upload-drops-object-lock',
    server: 'moto',
    serverBehaviour:
      'CreateMultipartUpload accepts x-amz-object-lock-mode, -retain-until-date and -legal-hold, but the completed ' +
      'object has none of them (HEAD shows none).',
    awsBehaviour: 'The completed object has the retention and legal hold given to CreateMultipartUpload.',
    consequence:
      'A multipart copy on moto loses the object lock the engine resends; preservation tests expect that loss on ' +
      'moto for multipart objects only.',
  },
  {
    id: 'moto-get-retention-returns-object',
    server: 'moto',
    serverBehaviour:
      'GetObjectRetention (in a bucket with object lock) answers 200 with the object itself, not a retention ' +
      'document, whether the object has a retention or not; the SDK fails to parse it. GetObjectLegalHold works.',
    awsBehaviour: 'The retention document, or 404 NoSuchObjectLockConfiguration for an object without one.',
    consequence:
      'Where HEAD shows no retention in a bucket with object lock, the engine asks GetObjectRetention (HEAD hides ' +
      'it from identities without s3:GetObjectRetention). On moto that answer is unreadable, so such objects fail ' +
      '(ObjectLockUnreadable) instead of being copied without a retention they might have.',
  },
  {
    id: 'etag-is-plaintext-md5-for-sse-kms',
    server: 'both',
    serverBehaviour:
      'The ETag of a single-part SSE-KMS object is the MD5 of its plaintext, so it does not change when the object ' +
      'is re-encrypted (to another key, or between SSE-S3 and SSE-KMS).',
    awsBehaviour: 'The ETag of an SSE-KMS object is not an MD5 of the data and changes when it is re-encrypted.',
    consequence:
      'Never treat ETag as an MD5 for integrity checks, and never infer "already re-encrypted" from an ETag change. ' +
      'Conditions in the engine must use the ETag the engine itself read just before.',
  },
  {
    id: 'no-default-encryption',
    server: 'both',
    serverBehaviour:
      'An object written without SSE headers into a bucket without an encryption configuration is stored ' +
      'unencrypted: HEAD has no x-amz-server-side-encryption, and GetBucketEncryption answers 404 ' +
      'ServerSideEncryptionConfigurationNotFoundError.',
    awsBehaviour:
      'Since January 2023 every new object is at least SSE-S3 (HEAD reports AES256) and GetBucketEncryption ' +
      'returns the AES256 default.',
    consequence:
      'The engine must treat a missing SSE header as "not encrypted" (needs work) and must not require ' +
      'GetBucketEncryption to succeed. "Unencrypted" source objects exist only on the test servers.',
  },
];

/**
 * Beliefs about the servers that were checked and found wrong for the pinned versions:
 * the server behaves like AWS. test/server-gaps.test.ts checks these too, so that a
 * regression shows up.
 */
export interface AwsConformance {
  id: string;
  server: ServerKind | 'both';
  /** What was checked. */
  behaviour: string;
}

export const AWS_CONFORMANCE: readonly AwsConformance[] = [
  {
    id: 'seaweedfs-copy-does-not-copy-acl',
    server: 'seaweedfs',
    behaviour:
      'Believed: SeaweedFS copies the ACL from the source. Found: the copy (to another key, or in place with ' +
      'REPLACE) gets the default private ACL (owner FULL_CONTROL only), like AWS.',
  },
  {
    id: 'seaweedfs-copy-does-not-copy-object-lock',
    server: 'seaweedfs',
    behaviour:
      'Believed: SeaweedFS copies object-lock fields from the source. Found: legal hold and retention are not ' +
      'copied (COPY, REPLACE, or in place), like AWS.',
  },
  {
    id: 'seaweedfs-honours-copy-source-conditions',
    server: 'seaweedfs',
    behaviour:
      'CopyObject and UploadPartCopy return 412 PreconditionFailed for a false x-amz-copy-source-if-match or ' +
      'x-amz-copy-source-if-unmodified-since, and write nothing.',
  },
  {
    id: 'conditional-put',
    server: 'both',
    behaviour: 'PutObject with a false If-Match, or If-None-Match: * on an existing key, answers 412.',
  },
  {
    id: 'copy-keeps-tags-and-checksum',
    server: 'both',
    behaviour:
      'A copy (also in place with REPLACE) keeps the object tags and the stored SHA-256 checksum (HEAD with ' +
      'ChecksumMode ENABLED), and updates LastModified.',
  },
  {
    id: 'real-sse-roundtrip',
    server: 'both',
    behaviour:
      'PutObject with SSE-KMS (key ARN) / AES256 then HEAD reports aws:kms + that ARN / AES256, and GET returns ' +
      'the same bytes (also ranged). On SeaweedFS, aliases and bare key ids are reported as the key ARN and the ' +
      'data is really encrypted at rest by local-kms data keys.',
  },
];

export function gapsFor(kind: ServerKind): ServerGap[] {
  return SERVER_GAPS.filter((g) => g.server === kind || g.server === 'both');
}

/** True if the server of this kind has the gap (for branching in engine tests). */
export function hasGap(kind: ServerKind, id: GapId): boolean {
  return gapsFor(kind).some((g) => g.id === id);
}
