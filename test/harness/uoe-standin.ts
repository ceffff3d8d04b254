// A local stand-in for S3 UpdateObjectEncryption (no local S3 server implements
// it): a small HTTP server in front of a real S3 server (SeaweedFS) that
// answers `PUT /{Bucket}/{Key}?encryption` itself and forwards every other
// request unchanged.
//
// Wire format (read from @aws-sdk/client-s3's serializer and checked against a
// captured request): PUT /{Bucket}/{Key+}?encryption[&versionId=V], path-style,
// Content-Type application/xml, a required checksum (Content-MD5 or
// x-amz-checksum-*; the SDK sends x-amz-checksum-crc32), and the body
//   <ObjectEncryption xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
//     <SSE-KMS><KMSKeyArn>arn:...</KMSKeyArn><BucketKeyEnabled>true</BucketKeyEnabled></SSE-KMS>
//   </ObjectEncryption>
// Answer: 200 with an empty body. Refusals follow AWS's API reference for
// UpdateObjectEncryption: InvalidRequest (400) for an unencrypted, DSSE-KMS or
// SSE-C object, a missing/invalid encryption type, a missing or malformed key
// ARN, a BucketKeyEnabled that is not true/false; AccessDenied (403) for an
// object under Object Lock (retention in force or legal hold) and for a key of
// another account; NoSuchKey (404) for a missing object. BucketKeyEnabled
// defaults to false when absent, as documented.
//
// Signatures: clients sign for the stand-in's own host. Forwarded requests keep
// every header, the Host header included, so the backend verifies the client's
// own SigV4 signature (nothing is re-signed; bodies are streamed through).
// UpdateObjectEncryption requests are verified here, with the backend's
// credentials, before anything is done.
//
// What the backend sees for an eligible object: the backend cannot change an
// object's encryption without rewriting it, so the stand-in copies the object
// onto itself with everything resent (metadata, content headers, storage
// class, checksum algorithm, ACL grants; tags by TaggingDirective COPY),
// conditional on the ETag it inspected. SeaweedFS keeps the source's KMS key on
// an in-place copy from one SSE-KMS key to another, so an SSE-KMS object under
// another key first goes through SSE-S3. The result is checked by HEAD. The
// object's ORIGINAL LastModified and ETag are then served for that key on
// HEAD/GET and in ListObjects(V2)/ListObjectVersions responses that pass
// through the stand-in, as long as the backend still holds the object the
// stand-in wrote (same backend ETag and LastModified): clients see what AWS
// would show. Requests sent to the backend directly see the copy.
//
// Limits (answered, never faked): path-style addressing only; header-signed
// requests only for UpdateObjectEncryption; an eligible object in a versioned
// bucket gets 501 NotImplemented (a copy would give it a new version id, which
// AWS keeps). Conditional requests (If-Match, If-Modified-Since...) are
// evaluated by the backend: its ETag is the original one (SeaweedFS keeps the
// ETag on an in-place copy), its LastModified is the copy's.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import {
  CopyObjectCommand,
  GetObjectAclCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  type CopyObjectCommandInput,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';

/** What the stand-in needs to know about the backend: an S3Info fits. */
export interface StandInBackend {
  s3Endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The backend KMS's keys: their account is taken as the bucket owner's. */
  keys?: readonly { arn: string }[];
}

export interface UpdateObjectEncryptionStandIn {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Requests received from clients, by S3 operation (live). */
  counts: Record<string, number>;
  /** The same, per bucket (live). */
  bucketCounts: Record<string, Record<string, number>>;
  resetCounts(): void;
  stop(): Promise<void>;
}

/** AWS's documented pattern for SSEKMSEncryption.KMSKeyArn, and its length limits. */
const KMS_KEY_ARN = /^arn:aws[a-zA-Z0-9-]*:kms:[a-z0-9-]+:([0-9]{12}):key\/[a-zA-Z0-9-]+$/;
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

// ---------------------------------------------------------------------------
// Which S3 operation a request is

/** Sub-resources that make an object request another operation. */
const OBJECT_SUBRESOURCES: Record<string, Partial<Record<string, string>>> = {
  acl: { GET: 'GetObjectAcl', PUT: 'PutObjectAcl' },
  tagging: { GET: 'GetObjectTagging', PUT: 'PutObjectTagging', DELETE: 'DeleteObjectTagging' },
  'legal-hold': { GET: 'GetObjectLegalHold', PUT: 'PutObjectLegalHold' },
  retention: { GET: 'GetObjectRetention', PUT: 'PutObjectRetention' },
  attributes: { GET: 'GetObjectAttributes' },
  encryption: { PUT: 'UpdateObjectEncryption' },
  uploads: { POST: 'CreateMultipartUpload' },
  restore: { POST: 'RestoreObject' },
};

const BUCKET_SUBRESOURCES: Record<string, Partial<Record<string, string>>> = {
  versions: { GET: 'ListObjectVersions' },
  uploads: { GET: 'ListMultipartUploads' },
  versioning: { GET: 'GetBucketVersioning', PUT: 'PutBucketVersioning' },
  ownershipControls: {
    GET: 'GetBucketOwnershipControls',
    PUT: 'PutBucketOwnershipControls',
    DELETE: 'DeleteBucketOwnershipControls',
  },
  encryption: { GET: 'GetBucketEncryption', PUT: 'PutBucketEncryption', DELETE: 'DeleteBucketEncryption' },
  'object-lock': { GET: 'GetObjectLockConfiguration', PUT: 'PutObjectLockConfiguration' },
  location: { GET: 'GetBucketLocation' },
  policy: { GET: 'GetBucketPolicy', PUT: 'PutBucketPolicy', DELETE: 'DeleteBucketPolicy' },
  acl: { GET: 'GetBucketAcl', PUT: 'PutBucketAcl' },
  tagging: { GET: 'GetBucketTagging', PUT: 'PutBucketTagging', DELETE: 'DeleteBucketTagging' },
  lifecycle: {
    GET: 'GetBucketLifecycleConfiguration',
    PUT: 'PutBucketLifecycleConfiguration',
    DELETE: 'DeleteBucketLifecycle',
  },
  cors: { GET: 'GetBucketCors', PUT: 'PutBucketCors', DELETE: 'DeleteBucketCors' },
  delete: { POST: 'DeleteObjects' },
};

interface Target {
  bucket: string;
  /** '' for bucket-level requests. */
  key: string;
  query: URLSearchParams;
}

function parseTarget(rawUrl: string): Target {
  const url = new URL(rawUrl, 'http://stand-in');
  const path = url.pathname.replace(/^\//, '');
  const slash = path.indexOf('/');
  const bucket = decodeURIComponent(slash < 0 ? path : path.slice(0, slash));
  const key = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
  return { bucket, key, query: url.searchParams };
}

/** The S3 operation of a path-style request. */
export function operationOf(method: string, rawUrl: string, headers: http.IncomingHttpHeaders = {}): string {
  const { bucket, key, query } = parseTarget(rawUrl);
  const m = method.toUpperCase();
  if (!bucket) return m === 'GET' ? 'ListBuckets' : `${m} /`;
  if (!key) {
    if (m === 'HEAD') return 'HeadBucket';
    for (const [sub, ops] of Object.entries(BUCKET_SUBRESOURCES)) {
      const op = query.has(sub) ? ops[m] : undefined;
      if (op) return op;
    }
    if (m === 'GET') return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    if (m === 'PUT') return 'CreateBucket';
    if (m === 'DELETE') return 'DeleteBucket';
    return `${m} bucket`;
  }
  // Checked before the SDK's x-id hint: a PUT ?encryption is never a PutObject.
  for (const [sub, ops] of Object.entries(OBJECT_SUBRESOURCES)) {
    const op = query.has(sub) ? ops[m] : undefined;
    if (op) return op;
  }
  const copy = headers['x-amz-copy-source'] !== undefined;
  if (query.has('uploadId')) {
    if (m === 'PUT') return copy ? 'UploadPartCopy' : 'UploadPart';
    if (m === 'POST') return 'CompleteMultipartUpload';
    if (m === 'DELETE') return 'AbortMultipartUpload';
    if (m === 'GET') return 'ListParts';
  }
  if (m === 'HEAD') return 'HeadObject';
  if (m === 'GET') return 'GetObject';
  if (m === 'PUT') return copy ? 'CopyObject' : 'PutObject';
  if (m === 'DELETE') return 'DeleteObject';
  return `${m} object`;
}

// ---------------------------------------------------------------------------
// Small helpers: XML, errors, dates

function xmlEscape(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '';
  });
}

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendError(req: IncomingMessage, res: ServerResponse, err: S3Error): void {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const fields = Object.entries(err.extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  const body =
    req.method === 'HEAD'
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>${fields}<RequestId>${requestId}</RequestId></Error>`;
  res.writeHead(err.status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
  });
  res.end(body);
}

const sameInstant = (a: Date | undefined, b: Date | undefined): boolean =>
  a !== undefined && b !== undefined && Math.floor(a.getTime() / 1000) === Math.floor(b.getTime() / 1000);

/** S3's list format: 2026-01-02T03:04:05.000Z */
const isoSeconds = (d: Date): string => new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();

// ---------------------------------------------------------------------------
// SigV4 check of the requests the stand-in answers itself

const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(rawUrl: string): string {
  const q = rawUrl.includes('?') ? rawUrl.slice(rawUrl.indexOf('?') + 1) : '';
  return q
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
      const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1));
      return [rfc3986(k), rfc3986(v)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function verifySignature(req: IncomingMessage, body: Buffer, backend: StandInBackend): void {
  const auth = req.headers.authorization;
  if (!auth) {
    throw new S3Error(
      403,
      'AccessDenied',
      req.url?.includes('X-Amz-Signature') ? 'the stand-in checks header signatures only' : 'Access Denied',
    );
  }
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed');
  const [, accessKeyId, day, region, service, signedHeaders, signature] = m as unknown as string[];
  if (accessKeyId !== backend.accessKeyId) {
    throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
  if (/^[0-9a-f]{64}$/.test(payloadHash) && createHash('sha256').update(body).digest('hex') !== payloadHash) {
    throw new S3Error(
      400,
      'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    values.set(name, [...(values.get(name) ?? []), (req.rawHeaders[i + 1] ?? '').trim().replace(/\s+/g, ' ')]);
  }
  const names = (signedHeaders ?? '').split(';');
  const canonical = [
    req.method ?? '',
    (req.url ?? '/').split('?')[0] ?? '/',
    canonicalQuery(req.url ?? ''),
    ...names.map((n) => `${n}:${(values.get(n) ?? []).join(',')}`),
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${backend.secretAccessKey}`)
    .update(day ?? '')
    .digest();
  for (const part of [region, service, 'aws4_request'])
    key = createHmac('sha256', key)
      .update(part ?? '')
      .digest();
  const expected = createHmac('sha256', key).update(toSign).digest();
  if (!timingSafeEqual(expected, Buffer.from(signature ?? '', 'hex'))) {
    throw new S3Error(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
}

/** UpdateObjectEncryption requires an integrity checksum (Content-MD5 or x-amz-checksum-*). */
function verifyChecksum(req: IncomingMessage, body: Buffer): void {
  const h = req.headers;
  const checks: [string | string[] | undefined, () => string, string][] = [
    [h['content-md5'], () => createHash('md5').update(body).digest('base64'), 'Content-MD5'],
    [
      h['x-amz-checksum-crc32'],
      () => {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(crc32(body));
        return b.toString('base64');
      },
      'CRC32',
    ],
    [h['x-amz-checksum-sha256'], () => createHash('sha256').update(body).digest('base64'), 'SHA256'],
    [h['x-amz-checksum-sha1'], () => createHash('sha1').update(body).digest('base64'), 'SHA1'],
  ];
  const present = checks.filter(([v]) => v !== undefined);
  const otherChecksum = Object.keys(h).some((k) => k.startsWith('x-amz-checksum-') && k !== 'x-amz-checksum-type');
  if (present.length === 0 && !otherChecksum) {
    throw new S3Error(
      400,
      'InvalidRequest',
      'Missing required header for this request: Content-MD5 OR x-amz-checksum-*',
    );
  }
  for (const [value, compute, name] of present) {
    if (value !== compute())
      throw new S3Error(400, 'BadDigest', `The ${name} you specified did not match the calculated checksum.`);
  }
}

// ---------------------------------------------------------------------------
// The request body

interface RequestedEncryption {
  kmsKeyArn: string;
  bucketKeyEnabled: boolean;
  account: string;
}

function parseObjectEncryption(body: string): RequestedEncryption {
  const text = body
    .replace(/^\uFEFF/, '')
    .replace(/^\s*<\?xml[^>]*\?>/, '')
    .trim();
  const root = /^<ObjectEncryption(?:\s[^>]*)?>([\s\S]*)<\/ObjectEncryption>$/.exec(text);
  if (!root) {
    throw new S3Error(
      400,
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema',
    );
  }
  const inner = (root[1] ?? '').trim();
  const kms = /^<SSE-KMS>([\s\S]*)<\/SSE-KMS>$/.exec(inner);
  if (!kms) {
    throw new S3Error(
      400,
      'InvalidRequest',
      'Requests that modify an object encryption configuration require a valid new encryption type. Valid values are SSEKMS.',
    );
  }
  const fields = kms[1] ?? '';
  const arnMatch = /<KMSKeyArn>([\s\S]*?)<\/KMSKeyArn>/.exec(fields);
  const arn = arnMatch ? xmlUnescape(arnMatch[1] ?? '').trim() : '';
  if (!arn) {
    throw new S3Error(
      400,
      'InvalidRequest',
      "Requests that modify an object's encryption type to SSE-KMS require an AWS KMS key Amazon Resource Name (ARN).",
    );
  }
  const arnParts = KMS_KEY_ARN.exec(arn);
  if (!arnParts || arn.length < 20 || arn.length > 2048) {
    throw new S3Error(
      400,
      'InvalidRequest',
      "Requests that modify an object's encryption type to SSE-KMS require a valid AWS KMS key Amazon Resource Name (ARN).",
    );
  }
  const bkMatch = /<BucketKeyEnabled>([\s\S]*?)<\/BucketKeyEnabled>/.exec(fields);
  const bk = bkMatch ? (bkMatch[1] ?? '').trim() : 'false';
  if (bk !== 'true' && bk !== 'false') {
    throw new S3Error(400, 'InvalidRequest', "The BucketKeyEnabled value isn't valid. Valid values are true or false.");
  }
  return { kmsKeyArn: arn, bucketKeyEnabled: bk === 'true', account: arnParts[1] ?? '' };
}

// ---------------------------------------------------------------------------
// The stand-in

interface Override {
  /** What AWS would still show. */
  lastModified: Date;
  etag: string;
  /** What the backend holds since the stand-in's copy: the override applies only while it does. */
  backendEtag: string;
  backendLastModified: Date;
}

const status = (err: unknown): number | undefined =>
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const hasLock = (h: HeadObjectCommandOutput, now: Date): boolean =>
  h.ObjectLockLegalHoldStatus === 'ON' ||
  (h.ObjectLockRetainUntilDate !== undefined && h.ObjectLockRetainUntilDate > now);

export async function startUpdateObjectEncryptionStandIn(
  backend: StandInBackend,
): Promise<UpdateObjectEncryptionStandIn> {
  const backendUrl = new URL(backend.s3Endpoint);
  const agent = new http.Agent({ keepAlive: true });
  const s3 = new S3Client({
    endpoint: backend.s3Endpoint,
    region: backend.region,
    forcePathStyle: true,
    credentials: { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const ownerAccount = backend.keys?.map((k) => KMS_KEY_ARN.exec(k.arn)?.[1]).find((a) => a !== undefined);
  const counts: Record<string, number> = {};
  const bucketCounts: Record<string, Record<string, number>> = {};
  const overrides = new Map<string, Override>();
  const locks = new Map<string, Promise<void>>();
  const idOf = (bucket: string, key: string): string => `${bucket}\n${key}`;

  function count(op: string, bucket: string): void {
    counts[op] = (counts[op] ?? 0) + 1;
    if (bucket) {
      const b = (bucketCounts[bucket] ??= {});
      b[op] = (b[op] ?? 0) + 1;
    }
  }

  /** The override for a key, while the backend still holds the object the stand-in wrote. */
  function overrideFor(
    bucket: string,
    key: string,
    backendEtag: string | undefined,
    backendLm: Date | undefined,
  ): Override | undefined {
    const o = overrides.get(idOf(bucket, key));
    if (!o) return undefined;
    if (backendEtag === o.backendEtag && sameInstant(backendLm, o.backendLastModified)) return o;
    overrides.delete(idOf(bucket, key));
    return undefined;
  }

  /** One UpdateObjectEncryption at a time per key. */
  async function serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = before.then(() => mine);
    locks.set(id, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(id) === chain) locks.delete(id);
    }
  }

  async function headBackend(
    bucket: string,
    key: string,
    versionId: string | undefined,
  ): Promise<HeadObjectCommandOutput> {
    try {
      return await s3.send(
        new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId, ChecksumMode: 'ENABLED' }),
      );
    } catch (err) {
      const st = status(err);
      if (st === 404) {
        const bucketThere = await s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
          () => true,
          () => false,
        );
        if (!bucketThere)
          throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
        throw versionId
          ? new S3Error(404, 'NoSuchVersion', 'The specified version does not exist.', {
              Key: key,
              VersionId: versionId,
            })
          : new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });
      }
      // A HEAD without the customer key of an SSE-C object is answered 400.
      if (st === 400) {
        throw new S3Error(
          400,
          'InvalidRequest',
          "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.",
        );
      }
      throw err;
    }
  }

  async function grantsOf(bucket: string, key: string): Promise<Partial<CopyObjectCommandInput>> {
    let acl;
    try {
      acl = await s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: key }));
    } catch {
      return {}; // a backend without object ACLs
    }
    const owner = acl.Owner?.ID;
    const by: Record<string, string[]> = {};
    let onlyOwner = true;
    for (const g of acl.Grants ?? []) {
      const who = g.Grantee?.ID ? `id="${g.Grantee.ID}"` : g.Grantee?.URI ? `uri="${g.Grantee.URI}"` : undefined;
      if (!who || !g.Permission) continue;
      if (!(g.Grantee?.ID === owner && g.Permission === 'FULL_CONTROL')) onlyOwner = false;
      (by[g.Permission] ??= []).push(who);
    }
    if (onlyOwner) return {};
    const out: Partial<CopyObjectCommandInput> = {};
    if (by.FULL_CONTROL) out.GrantFullControl = by.FULL_CONTROL.join(', ');
    if (by.READ) out.GrantRead = by.READ.join(', ');
    if (by.READ_ACP) out.GrantReadACP = by.READ_ACP.join(', ');
    if (by.WRITE_ACP) out.GrantWriteACP = by.WRITE_ACP.join(', ');
    return out;
  }

  function atTarget(h: HeadObjectCommandOutput, want: RequestedEncryption): boolean {
    const bare = want.kmsKeyArn.slice(want.kmsKeyArn.indexOf(':key/') + 5);
    return (
      h.ServerSideEncryption === 'aws:kms' &&
      (h.SSEKMSKeyId === want.kmsKeyArn || h.SSEKMSKeyId === bare) &&
      Boolean(h.BucketKeyEnabled) === want.bucketKeyEnabled
    );
  }

  /** The backend's in-place copy with everything resent. */
  async function copyOnBackend(
    bucket: string,
    key: string,
    h: HeadObjectCommandOutput,
    sse: Pick<CopyObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId' | 'BucketKeyEnabled'>,
    grants: Partial<CopyObjectCommandInput>,
  ): Promise<void> {
    const checksum = h.ChecksumCRC64NVME
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
    const input: CopyObjectCommandInput = {
      Bucket: bucket,
      Key: key,
      CopySource: `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
      CopySourceIfMatch: h.ETag,
      MetadataDirective: 'REPLACE',
      TaggingDirective: 'COPY',
      Metadata: h.Metadata ?? {},
      ContentType: h.ContentType,
      CacheControl: h.CacheControl,
      ContentDisposition: h.ContentDisposition,
      ContentEncoding: h.ContentEncoding,
      ContentLanguage: h.ContentLanguage,
      Expires: h.Expires,
      WebsiteRedirectLocation: h.WebsiteRedirectLocation,
      StorageClass: h.StorageClass,
      ChecksumAlgorithm: checksum,
      ...grants,
      ...sse,
    };
    await s3.send(new CopyObjectCommand(input));
  }

  async function updateObjectEncryption(req: IncomingMessage, t: Target, body: Buffer): Promise<void> {
    verifySignature(req, body, backend);
    verifyChecksum(req, body);
    const want = parseObjectEncryption(body.toString('utf8'));
    if (ownerAccount && want.account !== ownerAccount) {
      throw new S3Error(
        403,
        'AccessDenied',
        'The AWS KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again.',
      );
    }
    const expectedOwner = req.headers['x-amz-expected-bucket-owner'];
    if (ownerAccount && expectedOwner !== undefined && expectedOwner !== ownerAccount) {
      throw new S3Error(403, 'AccessDenied', 'Access Denied');
    }
    const versionId = t.query.get('versionId') ?? undefined;
    await serialized(idOf(t.bucket, t.key), async () => {
      const h = await headBackend(t.bucket, t.key, versionId);
      if (h.SSECustomerAlgorithm || h.ServerSideEncryption === 'aws:kms:dsse') {
        throw new S3Error(
          400,
          'InvalidRequest',
          "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.",
        );
      }
      if (h.ServerSideEncryption !== 'AES256' && h.ServerSideEncryption !== 'aws:kms') {
        throw new S3Error(
          400,
          'InvalidRequest',
          "The UpdateObjectEncryption operation doesn't support unencrypted source objects. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.",
        );
      }
      if (hasLock(h, new Date())) {
        throw new S3Error(
          403,
          'AccessDenied',
          "The encryption type for the specified object can't be updated because that object is protected by S3 Object Lock. If the object has a governance-mode retention period or a legal hold, you must first remove the Object Lock status on the object before you issue your UpdateObjectEncryption request.",
        );
      }
      if (atTarget(h, want)) return; // nothing to change: the data key already is under that key
      if (h.VersionId && h.VersionId !== 'null') {
        throw new S3Error(
          501,
          'NotImplemented',
          'stand-in: a versioned object would get a new version id from the backend copy (AWS keeps it): not supported',
        );
      }
      const shown = overrideFor(t.bucket, t.key, h.ETag, h.LastModified);
      const original = {
        lastModified: shown?.lastModified ?? h.LastModified ?? new Date(),
        etag: shown?.etag ?? h.ETag ?? '',
      };
      const grants = await grantsOf(t.bucket, t.key);
      let current = h;
      if (h.ServerSideEncryption === 'aws:kms' && !atTarget({ ...h, BucketKeyEnabled: want.bucketKeyEnabled }, want)) {
        // SeaweedFS keeps the source's KMS key on an in-place copy between two SSE-KMS keys.
        await copyOnBackend(t.bucket, t.key, current, { ServerSideEncryption: 'AES256' }, grants);
        current = await headBackend(t.bucket, t.key, undefined);
      }
      await copyOnBackend(
        t.bucket,
        t.key,
        current,
        { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: want.kmsKeyArn, BucketKeyEnabled: want.bucketKeyEnabled },
        grants,
      );
      const after = await headBackend(t.bucket, t.key, undefined);
      if (!atTarget(after, want)) {
        throw new S3Error(
          500,
          'InternalError',
          `stand-in: the backend copy left ${after.ServerSideEncryption ?? 'no encryption'} ${after.SSEKMSKeyId ?? ''} bucketKey=${String(after.BucketKeyEnabled)}`,
        );
      }
      overrides.set(idOf(t.bucket, t.key), {
        ...original,
        backendEtag: after.ETag ?? '',
        backendLastModified: after.LastModified ?? new Date(),
      });
    });
  }

  // ----- forwarding

  function rewriteList(xml: string, bucket: string, urlEncoded: boolean): string {
    if (overrides.size === 0) return xml;
    return xml.replace(/<(Contents|Version)>([\s\S]*?)<\/\1>/g, (entry: string, _tag: string, inner: string) => {
      const rawKey = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
      const rawLm = /<LastModified>([\s\S]*?)<\/LastModified>/.exec(inner)?.[1];
      const rawEtag = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1];
      if (rawKey === undefined || rawLm === undefined || rawEtag === undefined) return entry;
      let key = xmlUnescape(rawKey);
      if (urlEncoded) key = decodeURIComponent(key.replace(/\+/g, ' '));
      const o = overrideFor(bucket, key, xmlUnescape(rawEtag), new Date(rawLm));
      if (!o) return entry;
      const etagText = rawEtag.includes('&#34;')
        ? o.etag.replace(/"/g, '&#34;')
        : rawEtag.includes('"')
          ? o.etag
          : xmlEscape(o.etag);
      return entry
        .replace(/<LastModified>[\s\S]*?<\/LastModified>/, `<LastModified>${isoSeconds(o.lastModified)}</LastModified>`)
        .replace(/<ETag>[\s\S]*?<\/ETag>/, `<ETag>${etagText}</ETag>`);
    });
  }

  function forward(req: IncomingMessage, res: ServerResponse, t: Target, op: string): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      // Expect is never signed: the stand-in already answered 100-continue.
      if (value === undefined || HOP_BY_HOP.has(name) || name === 'expect') continue;
      headers[name] = value;
    }
    const upstream = http.request({
      host: backendUrl.hostname,
      port: backendUrl.port,
      method: req.method,
      path: req.url,
      headers, // Host included, unchanged: the client's signature stays valid
      agent,
    });
    upstream.on('response', (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(up.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      const st = up.statusCode ?? 502;
      const writes =
        op === 'PutObject' || op === 'CopyObject' || op === 'CompleteMultipartUpload' || op === 'DeleteObject';
      if (writes && st < 300) overrides.delete(idOf(t.bucket, t.key));
      if ((op === 'HeadObject' || op === 'GetObject') && st < 300 && typeof out.etag === 'string') {
        const lm = typeof out['last-modified'] === 'string' ? new Date(out['last-modified']) : undefined;
        const o = overrideFor(t.bucket, t.key, out.etag, lm);
        if (o) {
          out.etag = o.etag;
          out['last-modified'] = o.lastModified.toUTCString();
        }
      }
      const isList = op === 'ListObjects' || op === 'ListObjectsV2' || op === 'ListObjectVersions';
      if (isList && st === 200 && !out['content-encoding'] && overrides.size > 0) {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = rewriteList(
            Buffer.concat(chunks).toString('utf8'),
            t.bucket,
            t.query.get('encoding-type') === 'url',
          );
          out['content-length'] = String(Buffer.byteLength(body));
          res.writeHead(st, out);
          res.end(body);
        });
        up.on('error', (err) => res.destroy(err));
        return;
      }
      res.writeHead(st, out);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent)
        sendError(req, res, new S3Error(502, 'InternalError', `stand-in: backend unreachable: ${err.message}`));
      else res.destroy(err);
    });
    req.pipe(upstream);
  }

  const server = http.createServer((req, res) => {
    const t = parseTarget(req.url ?? '/');
    const op = operationOf(req.method ?? 'GET', req.url ?? '/', req.headers);
    count(op, t.bucket);
    if (op !== 'UpdateObjectEncryption') {
      forward(req, res, t, op);
      return;
    }
    // Never forwarded: some servers take PUT ?encryption for a PutObject and would empty the object.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      updateObjectEncryption(req, t, Buffer.concat(chunks)).then(
        () => {
          res.writeHead(200, { 'content-length': 0, 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase() });
          res.end();
        },
        (err: unknown) => {
          const e =
            err instanceof S3Error
              ? err
              : new S3Error(
                  status(err) ?? 500,
                  (err as { name?: string }).name ?? 'InternalError',
                  err instanceof Error ? err.message : String(err),
                );
          sendError(req, res, e);
        },
      );
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    bucketCounts,
    resetCounts() {
      for (const k of Object.keys(counts)) delete counts[k];
      for (const k of Object.keys(bucketCounts)) delete bucketCounts[k];
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
      s3.destroy();
    },
  };
}
