// HeadObject and CopyObject, the two requests every object costs, without the
// SDK's per-request middleware stack. bench/PROFILE.md: about 2 ms of client
// CPU per SDK request, 97 % of it in the SDK's schema (de)serialisers,
// middleware, endpoint rules and Node's HTTP stack; the engine needs three
// requests per object, and a lean request is several times cheaper.
//
// What stays the SDK's own: SigV4 signing (@smithy/signature-v4, with the
// client's credentials, region and clock offset), the endpoint (the client's
// endpoint rules, resolved once per bucket), the retry strategy and its
// adaptive token bucket (the client's own instance, shared with its other
// requests), the error classification behind retries, and the date parsers.
// What is ours: turning an input into headers and headers into an output, and
// errors shaped like the SDK's (name = S3 code, $metadata, $response), so
// errors.ts, headerror.ts and the engine read them the same way.
// test/unit/lean.test.ts holds the headers and outputs equal to the SDK's.
import type {
  CopyObjectCommandInput,
  CopyObjectCommandOutput,
  HeadObjectCommandInput,
  HeadObjectCommandOutput,
  S3Client,
} from '@aws-sdk/client-s3';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import { extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { dateToUtcString, parseRfc7231DateTime } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';

/** SHA-256 of an empty body: HEAD and an in-place copy send none. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const USER_AGENT = 's3-encryption-operator';

export interface LeanTransport {
  httpAgent: HttpAgent;
  httpsAgent: HttpsAgent;
  connectionTimeoutMs: number;
  /** Socket inactivity, as the SDK's NodeHttpHandler requestTimeout. */
  requestTimeoutMs: number;
  maxAttempts: number;
  /** Called once per request (all attempts), like the SDK client's observer middleware. */
  observe?: (operation: string, seconds: number, attempts: number, throttles: number, error?: unknown) => void;
  /** Whether an attempt's error counts as throttling for `observe` (default: the SDK's classification). */
  countsAsThrottle?: (err: unknown) => boolean;
  /** Waited on once per request before its first attempt (the run's request-rate cap). */
  beforeRequest?: () => Promise<void>;
}

interface Target {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** Path before the key ("/bucket" in path style, "" for a virtual host). */
  basePath: string;
  signingRegion?: string;
  signingService?: string;
}

interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}
interface RetryStrategy {
  acquireInitialRetryToken(scope: string): Promise<RetryToken>;
  refreshRetryTokenForRetry(token: RetryToken, info: { error: unknown; errorType: string }): Promise<RetryToken>;
  recordSuccess(token: RetryToken): void;
}

/** The parts of the S3 client's resolved config this module uses. */
interface S3Config {
  credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
  region: () => Promise<string>;
  sha256: new (secret?: unknown) => { update(d: Uint8Array): void; digest(): Promise<Uint8Array> };
  retryStrategy: () => Promise<RetryStrategy>;
  systemClockOffset?: number;
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An S3 error as the SDK shapes it: name and Code are S3's code, $metadata has the status and attempts. */
export class LeanS3Error extends Error {
  readonly $fault: 'client' | 'server';
  Code?: string;
  $metadata: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string; attempts?: number };
  $response?: { statusCode: number; headers: IncomingHttpHeaders; body: string };
  constructor(code: string, message: string, response: Response | undefined) {
    super(message);
    this.name = code;
    const status = response?.status;
    this.$fault = status !== undefined && status >= 500 ? 'server' : 'client';
    this.$metadata = {
      ...(status !== undefined ? { httpStatusCode: status } : {}),
      ...(typeof response?.headers['x-amz-request-id'] === 'string'
        ? { requestId: response.headers['x-amz-request-id'] }
        : {}),
      ...(typeof response?.headers['x-amz-id-2'] === 'string'
        ? { extendedRequestId: response.headers['x-amz-id-2'] }
        : {}),
    };
    if (response) this.$response = { statusCode: response.status, headers: response.headers, body: response.body };
  }
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (m, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    if (e === 'amp') return '&';
    const code = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : m;
  });
}

function xmlField(body: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(body);
  return m ? unescapeXml(m[1] as string) : undefined;
}

/**
 * The SDK's error for an S3 answer: the body's Code (404 without one: NotFound; else Unknown). One departure: a
 * 503 without a body is SlowDown. S3 throttles a HEAD with a bare "503 Slow Down" (a HEAD answer has no body), and
 * the SDK names it Unknown, so neither the throttling metric nor the adaptive rate limiter would see it.
 */
export function errorFrom(response: Response): LeanS3Error {
  const fallback = response.status === 404 ? 'NotFound' : response.status === 503 ? 'SlowDown' : 'Unknown';
  const code = xmlField(response.body, 'Code') ?? fallback;
  const message = xmlField(response.body, 'Message') ?? 'UnknownError';
  const err = new LeanS3Error(code, message, response);
  if (xmlField(response.body, 'Code') !== undefined) err.Code = code;
  const requestId = xmlField(response.body, 'RequestId');
  if (requestId && !err.$metadata.requestId) err.$metadata.requestId = requestId;
  return err;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Fields of a HEAD response that the engine reads, parsed as the SDK parses them. */
export function parseHead(headers: IncomingHttpHeaders, status: number): HeadObjectCommandOutput {
  const out: Record<string, unknown> = { $metadata: { httpStatusCode: status } };
  const str = (field: string, name: string): void => {
    const v = header(headers, name);
    if (v !== undefined) out[field] = v;
  };
  str('AcceptRanges', 'accept-ranges');
  str('ArchiveStatus', 'x-amz-archive-status');
  str('CacheControl', 'cache-control');
  str('ChecksumCRC32', 'x-amz-checksum-crc32');
  str('ChecksumCRC32C', 'x-amz-checksum-crc32c');
  str('ChecksumCRC64NVME', 'x-amz-checksum-crc64nvme');
  str('ChecksumSHA1', 'x-amz-checksum-sha1');
  str('ChecksumSHA256', 'x-amz-checksum-sha256');
  str('ChecksumType', 'x-amz-checksum-type');
  str('ContentDisposition', 'content-disposition');
  str('ContentEncoding', 'content-encoding');
  str('ContentLanguage', 'content-language');
  str('ContentType', 'content-type');
  str('ETag', 'etag');
  str('Expiration', 'x-amz-expiration');
  str('ObjectLockLegalHoldStatus', 'x-amz-object-lock-legal-hold');
  str('ObjectLockMode', 'x-amz-object-lock-mode');
  str('ReplicationStatus', 'x-amz-replication-status');
  str('RequestCharged', 'x-amz-request-charged');
  str('Restore', 'x-amz-restore');
  str('SSECustomerAlgorithm', 'x-amz-server-side-encryption-customer-algorithm');
  str('SSECustomerKeyMD5', 'x-amz-server-side-encryption-customer-key-md5');
  str('SSEKMSKeyId', 'x-amz-server-side-encryption-aws-kms-key-id');
  str('ServerSideEncryption', 'x-amz-server-side-encryption');
  str('StorageClass', 'x-amz-storage-class');
  str('VersionId', 'x-amz-version-id');
  str('WebsiteRedirectLocation', 'x-amz-website-redirect-location');
  const bucketKey = header(headers, 'x-amz-server-side-encryption-bucket-key-enabled');
  if (bucketKey !== undefined) out.BucketKeyEnabled = bucketKey === 'true';
  const deleteMarker = header(headers, 'x-amz-delete-marker');
  if (deleteMarker !== undefined) out.DeleteMarker = deleteMarker === 'true';
  const length = header(headers, 'content-length');
  if (length !== undefined) out.ContentLength = Number(length);
  const missing = header(headers, 'x-amz-missing-meta');
  if (missing !== undefined) out.MissingMeta = Number(missing);
  const parts = header(headers, 'x-amz-mp-parts-count');
  if (parts !== undefined) out.PartsCount = Number(parts);
  const lastModified = header(headers, 'last-modified');
  if (lastModified !== undefined) out.LastModified = parseRfc7231DateTime(lastModified);
  const retain = header(headers, 'x-amz-object-lock-retain-until-date');
  if (retain !== undefined) out.ObjectLockRetainUntilDate = new Date(retain);
  // As the SDK's s3ExpiresMiddleware: the raw value always, the date only when it is an HTTP date.
  const expires = header(headers, 'expires');
  if (expires !== undefined) {
    out.ExpiresString = expires;
    try {
      out.Expires = parseRfc7231DateTime(expires);
    } catch {
      // Not an HTTP date ("0", "-1"): ExpiresString only.
    }
  }
  const metadata: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = header(headers, name) ?? '';
  }
  out.Metadata = metadata;
  return out as unknown as HeadObjectCommandOutput;
}

const COPY_HEADERS: [keyof CopyObjectCommandInput, string][] = [
  ['ACL', 'x-amz-acl'],
  ['CacheControl', 'cache-control'],
  ['ChecksumAlgorithm', 'x-amz-checksum-algorithm'],
  ['ContentDisposition', 'content-disposition'],
  ['ContentEncoding', 'content-encoding'],
  ['ContentLanguage', 'content-language'],
  ['ContentType', 'content-type'],
  ['CopySource', 'x-amz-copy-source'],
  ['CopySourceIfMatch', 'x-amz-copy-source-if-match'],
  ['CopySourceIfNoneMatch', 'x-amz-copy-source-if-none-match'],
  ['GrantFullControl', 'x-amz-grant-full-control'],
  ['GrantRead', 'x-amz-grant-read'],
  ['GrantReadACP', 'x-amz-grant-read-acp'],
  ['GrantWriteACP', 'x-amz-grant-write-acp'],
  ['IfMatch', 'if-match'],
  ['IfNoneMatch', 'if-none-match'],
  ['MetadataDirective', 'x-amz-metadata-directive'],
  ['TaggingDirective', 'x-amz-tagging-directive'],
  ['ServerSideEncryption', 'x-amz-server-side-encryption'],
  ['StorageClass', 'x-amz-storage-class'],
  ['WebsiteRedirectLocation', 'x-amz-website-redirect-location'],
  ['SSEKMSKeyId', 'x-amz-server-side-encryption-aws-kms-key-id'],
  ['SSEKMSEncryptionContext', 'x-amz-server-side-encryption-context'],
  ['Tagging', 'x-amz-tagging'],
  ['ObjectLockMode', 'x-amz-object-lock-mode'],
  ['ObjectLockLegalHoldStatus', 'x-amz-object-lock-legal-hold'],
  ['ExpectedBucketOwner', 'x-amz-expected-bucket-owner'],
  ['ExpectedSourceBucketOwner', 'x-amz-source-expected-bucket-owner'],
  ['RequestPayer', 'x-amz-request-payer'],
];

/** Inputs the lean copy does not send: the engine never sets them, so the SDK takes such a copy. */
const COPY_UNSUPPORTED: (keyof CopyObjectCommandInput)[] = [
  'SSECustomerAlgorithm',
  'SSECustomerKey',
  'SSECustomerKeyMD5',
  'CopySourceSSECustomerAlgorithm',
  'CopySourceSSECustomerKey',
  'CopySourceSSECustomerKeyMD5',
  'CopySourceIfModifiedSince',
];

/** The request headers of a CopyObject, as the SDK serialises the same input. */
export function copyHeaders(input: CopyObjectCommandInput): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [field, name] of COPY_HEADERS) {
    const v = input[field];
    if (typeof v === 'string') h[name] = v;
  }
  if (input.BucketKeyEnabled !== undefined)
    h['x-amz-server-side-encryption-bucket-key-enabled'] = String(input.BucketKeyEnabled);
  if (input.CopySourceIfUnmodifiedSince !== undefined)
    h['x-amz-copy-source-if-unmodified-since'] = dateToUtcString(new Date(input.CopySourceIfUnmodifiedSince));
  if (input.Expires !== undefined) h.expires = dateToUtcString(new Date(input.Expires));
  if (input.ObjectLockRetainUntilDate !== undefined)
    h['x-amz-object-lock-retain-until-date'] = new Date(input.ObjectLockRetainUntilDate).toISOString();
  for (const [k, v] of Object.entries(input.Metadata ?? {})) h[`x-amz-meta-${k.toLowerCase()}`] = v;
  return h;
}

/** Whether the lean copy can send this input exactly (otherwise the SDK sends it). */
export function leanCopyable(input: CopyObjectCommandInput): boolean {
  return COPY_UNSUPPORTED.every((k) => input[k] === undefined);
}

/** "/" + the key, each segment encoded as the SDK encodes a greedy path label. */
function keyPath(key: string): string {
  return '/' + key.split('/').map(extendedEncodeURIComponent).join('/');
}

export class LeanS3 {
  private readonly targets = new Map<string, Promise<Target | undefined>>();
  private readonly signer: SignatureV4;
  private readonly config: S3Config;

  constructor(
    private readonly s3: S3Client,
    private readonly transport: LeanTransport,
  ) {
    this.config = s3.config as unknown as S3Config;
    this.signer = new SignatureV4({
      service: 's3',
      region: this.config.region,
      credentials: this.config.credentials,
      sha256: this.config.sha256,
      // S3 signs the path as sent (single encoding), as the SDK's S3 client does.
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  /**
   * The bucket's endpoint from the client's own endpoint rules, once per bucket.
   * undefined (the SDK serves the request) where the rules ask for more than
   * plain SigV4 on a fixed host: S3 Express, multi-region access points, extra headers.
   */
  private target(bucket: string): Promise<Target | undefined> {
    let t = this.targets.get(bucket);
    if (t === undefined) {
      t = (async () => {
        const endpoint = await getEndpointFromInstructions(
          { Bucket: bucket, Key: 'k' },
          HeadObjectCommand as unknown as Parameters<typeof getEndpointFromInstructions>[1],
          this.s3.config as unknown as Parameters<typeof getEndpointFromInstructions>[2],
        );
        const schemes = (endpoint.properties?.authSchemes ?? []) as {
          name?: string;
          signingRegion?: string;
          signingName?: string;
        }[];
        const scheme = schemes[0];
        if (scheme && scheme.name !== 'sigv4') return undefined;
        if (endpoint.headers && Object.keys(endpoint.headers).length > 0) return undefined;
        const url = endpoint.url;
        const protocol = url.protocol;
        if (url.search || (protocol !== 'http:' && protocol !== 'https:')) return undefined;
        const target: Target = {
          protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          basePath: url.pathname.replace(/\/$/, ''),
          ...(scheme?.signingRegion ? { signingRegion: scheme.signingRegion } : {}),
          ...(scheme?.signingName ? { signingService: scheme.signingName } : {}),
        };
        return target;
      })().catch(() => undefined);
      // One entry per bucket of the run: a run works on one bucket.
      if (this.targets.size > 16) this.targets.clear();
      this.targets.set(bucket, t);
    }
    return t;
  }

  /** Where a request for this object goes and who it is signed for (tests compare it with the SDK's). */
  async describe(bucket: string, key: string): Promise<{ url: string; region?: string; service?: string } | undefined> {
    const t = await this.target(bucket);
    if (!t) return undefined;
    return {
      url: `${t.protocol}//${t.hostname}${t.port !== undefined ? `:${t.port}` : ''}${t.basePath}${keyPath(key)}`,
      ...(t.signingRegion ? { region: t.signingRegion } : {}),
      ...(t.signingService ? { service: t.signingService } : {}),
    };
  }

  /** Whether this bucket can be served lean (else the caller uses the SDK). */
  async available(bucket: string): Promise<boolean> {
    return (await this.target(bucket)) !== undefined;
  }

  async headObject(input: HeadObjectCommandInput, signal?: AbortSignal): Promise<HeadObjectCommandOutput> {
    const target = await this.target(input.Bucket ?? '');
    if (!target) throw new Error('lean path unavailable for this bucket');
    const headers: Record<string, string> = {};
    if (input.ChecksumMode) headers['x-amz-checksum-mode'] = input.ChecksumMode;
    if (input.IfMatch) headers['if-match'] = input.IfMatch;
    const query: Record<string, string> = {};
    if (input.VersionId) query.versionId = input.VersionId;
    const res = await this.send('HeadObject', target, 'HEAD', input.Key ?? '', query, headers, signal);
    const out = parseHead(res.response.headers, res.response.status);
    out.$metadata = res.metadata;
    return out;
  }

  /** extraHeaders: headers the SDK input cannot express (sent as they are, and signed). */
  async copyObject(
    input: CopyObjectCommandInput,
    extraHeaders: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<CopyObjectCommandOutput> {
    const target = await this.target(input.Bucket ?? '');
    if (!target || !leanCopyable(input)) throw new Error('lean path unavailable for this copy');
    const headers = { ...copyHeaders(input), ...extraHeaders };
    // x-id: as the SDK sends it (S3 ignores it; it names the operation in logs).
    const res = await this.send(
      'CopyObject',
      target,
      'PUT',
      input.Key ?? '',
      { 'x-id': 'CopyObject' },
      headers,
      signal,
      true,
    );
    const h = res.response.headers;
    const out: Record<string, unknown> = { $metadata: res.metadata };
    const sse = header(h, 'x-amz-server-side-encryption');
    if (sse !== undefined) out.ServerSideEncryption = sse;
    const keyId = header(h, 'x-amz-server-side-encryption-aws-kms-key-id');
    if (keyId !== undefined) out.SSEKMSKeyId = keyId;
    const bucketKey = header(h, 'x-amz-server-side-encryption-bucket-key-enabled');
    if (bucketKey !== undefined) out.BucketKeyEnabled = bucketKey === 'true';
    const versionId = header(h, 'x-amz-version-id');
    if (versionId !== undefined) out.VersionId = versionId;
    const etag = xmlField(res.response.body, 'ETag');
    if (etag !== undefined) out.CopyObjectResult = { ETag: etag };
    return out as unknown as CopyObjectCommandOutput;
  }

  /** One request with the client's retry strategy, as the SDK's retry middleware runs it. */
  private async send(
    operation: string,
    target: Target,
    method: string,
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    copy = false,
  ): Promise<{ response: Response; metadata: Record<string, unknown> }> {
    const started = performance.now();
    let throttles = 0;
    let attempts = 0;
    try {
      await this.transport.beforeRequest?.();
      const strategy = await this.config.retryStrategy();
      let token = await strategy.acquireInitialRetryToken('');
      let totalRetryDelay = 0;
      const invocationId = randomUUID();
      for (;;) {
        attempts++;
        const offsetBefore = this.config.systemClockOffset ?? 0;
        const sentAt = Date.now();
        try {
          const response = await this.attempt(target, method, key, query, headers, signal, invocationId, attempts);
          // As the SDK's throw200Exceptions: a copy can fail after its 200 was sent, with an Error body.
          if (copy && response.status === 200 && /<\/Error>\s*$/.test(response.body)) {
            throw errorFrom({ ...response, status: 503 });
          }
          // A 200 whose body has no result (empty, or only the keep-alive whitespace S3 sends before
          // the outcome, cut by a proxy) proves nothing: its SSE headers were sent before the copy
          // finished. Tried again like an aborted request; the retry's conditions tell what landed.
          if (copy && response.status === 200 && !/<CopyObjectResult\b/.test(response.body)) {
            const err = new LeanS3Error('InternalError', 'S3 aborted request', { ...response, status: 503 });
            throw err;
          }
          if (response.status < 200 || response.status >= 300) throw errorFrom(response);
          strategy.recordSuccess(token);
          const metadata: Record<string, unknown> = {
            httpStatusCode: response.status,
            attempts,
            totalRetryDelay,
          };
          const requestId = header(response.headers, 'x-amz-request-id');
          if (requestId) metadata.requestId = requestId;
          const extended = header(response.headers, 'x-amz-id-2');
          if (extended) metadata.extendedRequestId = extended;
          this.transport.observe?.(operation, (performance.now() - started) / 1000, attempts, throttles);
          return { response, metadata };
        } catch (err) {
          const e = err as LeanS3Error & { $metadata?: Record<string, unknown> };
          this.correctClock(e, offsetBefore, sentAt);
          const sdkError = e as unknown as Parameters<typeof isThrottlingError>[0];
          if (this.transport.countsAsThrottle ? this.transport.countsAsThrottle(e) : isThrottlingError(sdkError))
            throttles++;
          const errorType = isThrottlingError(sdkError)
            ? 'THROTTLING'
            : isTransientError(sdkError)
              ? 'TRANSIENT'
              : isServerError(sdkError)
                ? 'SERVER_ERROR'
                : 'CLIENT_ERROR';
          try {
            if (signal?.aborted) throw err;
            token = await strategy.refreshRetryTokenForRetry(token, { error: e, errorType });
          } catch {
            e.$metadata = { ...(e.$metadata ?? {}), attempts, totalRetryDelay };
            throw e;
          }
          const delay = token.getRetryDelay();
          totalRetryDelay += delay;
          if (delay > 0) await abortableDelay(delay, signal, e);
        }
      }
    } catch (err) {
      this.transport.observe?.(operation, (performance.now() - started) / 1000, Math.max(1, attempts), throttles, err);
      throw err;
    }
  }

  /**
   * As the SDK's SigV4 signer does on an error: the server's Date header corrects
   * the client's clock offset (shared with the SDK's requests through the client
   * config), and an error whose signature was off by minutes is marked
   * clockSkewCorrected, which the retry strategy treats as transient.
   */
  private correctClock(e: LeanS3Error, offsetBefore: number, sentAt: number): void {
    const headers = e.$response?.headers;
    const date = headers ? header(headers, 'date') : undefined;
    if (!headers || !date || headers.age !== undefined) return;
    const serverTime = Date.parse(date);
    const now = Date.now();
    if (Number.isNaN(serverTime) || now - sentAt > 900_000) return;
    const offset = serverTime - now;
    this.config.systemClockOffset = offset;
    if (Math.abs(offset) >= 240_000 && offset !== offsetBefore)
      (e.$metadata as { clockSkewCorrected?: boolean }).clockSkewCorrected = true;
  }

  private async attempt(
    target: Target,
    method: string,
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    invocationId: string,
    attempt: number,
  ): Promise<Response> {
    const path = target.basePath + keyPath(key);
    const request = new HttpRequest({
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port !== undefined ? { port: target.port } : {}),
      path,
      query,
      headers: {
        ...headers,
        host: target.port !== undefined ? `${target.hostname}:${target.port}` : target.hostname,
        'x-amz-content-sha256': EMPTY_SHA256,
        'amz-sdk-invocation-id': invocationId,
        'amz-sdk-request': `attempt=${attempt}; max=${this.transport.maxAttempts}`,
        ...(method === 'PUT' ? { 'content-length': '0' } : {}),
      },
    });
    const signed = await this.signer.sign(request, {
      signingDate: new Date(Date.now() + (this.config.systemClockOffset ?? 0)),
      ...(target.signingRegion ? { signingRegion: target.signingRegion } : {}),
      ...(target.signingService ? { signingService: target.signingService } : {}),
    });
    const search = new URLSearchParams(query).toString();
    const t = this.transport;
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError());
      const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)({
        method,
        // WHATWG URL keeps an IPv6 literal's brackets ([::1]); the socket wants the bare address, as the SDK sends it.
        hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'),
        ...(target.port !== undefined ? { port: target.port } : {}),
        path: search ? `${path}?${search}` : path,
        headers: { ...(signed.headers as Record<string, string>), 'user-agent': USER_AGENT },
        agent: target.protocol === 'https:' ? t.httpsAgent : t.httpAgent,
        ...(signal ? { signal } : {}),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      req.on('socket', (socket) => {
        if (socket.connecting) {
          connectTimer = setTimeout(() => {
            req.destroy(
              timeoutError(`Socket timed out without establishing a connection within ${t.connectionTimeoutMs} ms`),
            );
          }, t.connectionTimeoutMs);
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      req.setTimeout(t.requestTimeoutMs, () => {
        req.destroy(timeoutError(`Connection timed out after ${t.requestTimeoutMs} ms`));
      });
      req.on('error', (err: Error & { code?: string }) => {
        clearTimeout(connectTimer);
        reject(err.name === 'AbortError' || signal?.aborted ? abortError() : err);
      });
      req.on('response', (res) => {
        clearTimeout(connectTimer);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      req.end();
    });
  }
}

function timeoutError(message: string): Error {
  const err = new Error(message);
  err.name = 'TimeoutError';
  return err;
}

function abortError(): Error {
  const err = new Error('Request aborted');
  err.name = 'AbortError';
  return err;
}

function abortableDelay(ms: number, signal: AbortSignal | undefined, err: Error): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(err);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
