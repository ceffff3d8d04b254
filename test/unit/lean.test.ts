// The lean HeadObject/CopyObject path must be indistinguishable from the SDK's
// on the wire and in what the engine reads: the same request headers for the
// same input, the same parsed HEAD output, the same error names, codes and
// statuses. Both are sent to one local capture server and compared.
import { CopyObjectCommand, HeadObjectCommand, type CopyObjectCommandInput } from '@aws-sdk/client-s3';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients, isThrottle, leanOf, type Clients, type RequestEvent } from '../../src/engine/s3/clients.js';
import { errorCode, httpStatus, isNotFound, isPreconditionFailed, isTransient } from '../../src/engine/s3/errors.js';
import { needsExplaining } from '../../src/engine/object/headerror.js';
import { errorFrom } from '../../src/engine/s3/lean.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}
type Answer = { status: number; headers?: Record<string, string>; body?: string };
let answer: Answer = { status: 200 };
/** Answers for the next requests, before `answer`. */
const script: Answer[] = [];
const seen: Seen[] = [];
let server: Server;
let clients: Clients;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const a = script.shift() ?? answer;
      res.writeHead(a.status, a.headers ?? {});
      res.end(req.method === 'HEAD' ? undefined : (a.body ?? ''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  clients = createClients(
    {
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    },
    { maxAttempts: 1 },
  );
});

afterAll(async () => {
  clients.destroy();
  await new Promise((r) => server.close(r));
});

/** Headers that differ per request or per client by design (time, signature, ids, user agent). */
const VOLATILE = new Set([
  'authorization',
  'x-amz-date',
  'user-agent',
  'x-amz-user-agent',
  'amz-sdk-invocation-id',
  'amz-sdk-request',
  'connection',
  'host',
]);

function stable(h: IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !VOLATILE.has(k)));
}

const COPY_RESULT =
  '<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><LastModified>2026-12-02T10:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag></CopyObjectResult>';

function lean() {
  const l = leanOf(clients.s3);
  if (!l) throw new Error('createClients registered no lean path');
  return l;
}

async function both<T>(sdk: () => Promise<T>, ours: () => Promise<T>): Promise<{ sdk: T | Error; ours: T | Error }> {
  const settle = (p: Promise<T>) => p.catch((e: unknown) => e as Error);
  return { sdk: await settle(sdk()), ours: await settle(ours()) };
}

describe('lean CopyObject', () => {
  const input: CopyObjectCommandInput = {
    Bucket: 'bkt',
    Key: 'dir/a key+with (odd)*chars!/é.txt',
    CopySource: 'bkt/dir/a%20key%2Bwith%20(odd)*chars!/%C3%A9.txt',
    IfMatch: '"etag-1"',
    CopySourceIfUnmodifiedSince: new Date('2026-11-30T08:09:10Z'),
    MetadataDirective: 'REPLACE',
    TaggingDirective: 'COPY',
    ContentType: 'text/csv; charset=utf-8',
    CacheControl: 'max-age=100',
    ContentDisposition: 'attachment; filename="x.csv"',
    ContentEncoding: 'gzip',
    ContentLanguage: 'de',
    Expires: new Date('2027-01-02T03:04:05Z'),
    WebsiteRedirectLocation: '/other',
    Metadata: { origin: 'bench-1', Idx: '7' },
    StorageClass: 'STANDARD_IA',
    ObjectLockMode: 'GOVERNANCE',
    ObjectLockRetainUntilDate: new Date('2030-05-06T07:08:09.123Z'),
    ObjectLockLegalHoldStatus: 'ON',
    ChecksumAlgorithm: 'CRC32C',
    GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
    GrantFullControl: 'id="owner"',
    ServerSideEncryption: 'aws:kms',
    SSEKMSKeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
    BucketKeyEnabled: false,
  };

  it('sends the same method, path and headers as the SDK for the same input', async () => {
    answer = { status: 200, headers: { 'x-amz-server-side-encryption': 'aws:kms' }, body: COPY_RESULT };
    seen.length = 0;
    await clients.s3.send(new CopyObjectCommand(input));
    await lean().copyObject(input, {});
    const [sdk, ours] = seen;
    expect(ours?.method).toBe(sdk?.method);
    expect(ours?.url).toBe(sdk?.url);
    expect(stable(ours?.headers ?? {})).toEqual(stable(sdk?.headers ?? {}));
  });

  it('reads the new encryption from the response as the SDK does', async () => {
    answer = {
      status: 200,
      headers: {
        'x-amz-server-side-encryption': 'aws:kms',
        'x-amz-server-side-encryption-aws-kms-key-id': 'arn:k',
        'x-amz-server-side-encryption-bucket-key-enabled': 'true',
        'x-amz-version-id': 'v2',
      },
      body: COPY_RESULT,
    };
    const r = await both(
      () => clients.s3.send(new CopyObjectCommand(input)),
      () => lean().copyObject(input, {}),
    );
    for (const f of ['ServerSideEncryption', 'SSEKMSKeyId', 'BucketKeyEnabled', 'VersionId'] as const) {
      expect((r.ours as unknown as Record<string, unknown>)[f]).toEqual(
        (r.sdk as unknown as Record<string, unknown>)[f],
      );
    }
  });

  it('a 200 whose body ends after the whitespace, without a CopyObjectResult, is not a copy (m7: its SSE headers came first)', async () => {
    answer = { status: 200, headers: { 'x-amz-server-side-encryption': 'aws:kms' }, body: '\n   \n' };
    const err = await lean()
      .copyObject(input, {})
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(Error);
    expect(isTransient(err, 8)).toBe(true);
  });

  it.each([
    ['412 PreconditionFailed', 412, '<Error><Code>PreconditionFailed</Code><Message>At least one</Message></Error>'],
    [
      '409 ConditionalRequestConflict',
      409,
      '<Error><Code>ConditionalRequestConflict</Code><Message>race</Message></Error>',
    ],
    ['404 NoSuchKey', 404, '<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>'],
    ['400 KMS.DisabledException', 400, '<Error><Code>KMS.DisabledException</Code><Message>off</Message></Error>'],
    ['503 SlowDown', 503, '<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>'],
    [
      '200 with an Error body',
      200,
      '<?xml version="1.0"?>\n<Error><Code>InternalError</Code><Message>x</Message></Error>',
    ],
    ['403 without a body', 403, ''],
  ])('fails like the SDK on %s', async (_name, status, body) => {
    answer = { status, body };
    const r = await both(
      () => clients.s3.send(new CopyObjectCommand(input)),
      () => lean().copyObject(input, {}),
    );
    expect(r.sdk).toBeInstanceOf(Error);
    expect(r.ours).toBeInstanceOf(Error);
    expect(errorCode(r.ours)).toBe(errorCode(r.sdk));
    expect(httpStatus(r.ours)).toBe(httpStatus(r.sdk));
    expect((r.ours as Error).message).toBe((r.sdk as Error).message);
    expect(isPreconditionFailed(r.ours)).toBe(isPreconditionFailed(r.sdk));
    expect(isNotFound(r.ours)).toBe(isNotFound(r.sdk));
    expect(isTransient(r.ours, 8)).toBe(isTransient(r.sdk, 8));
    expect((r.ours as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(1);
  });
});

describe('lean errors', () => {
  it("a bare 503 (S3's throttle of a HEAD, which has no body) is SlowDown: a throttle, retried", () => {
    const err = errorFrom({ status: 503, headers: {}, body: '' });
    expect(errorCode(err)).toBe('SlowDown');
    expect(isThrottle(errorCode(err))).toBe(true);
    expect(isTransient(err, 8)).toBe(true);
    expect(errorCode(errorFrom({ status: 500, headers: {}, body: '' }))).toBe('Unknown');
  });
});

describe('lean HeadObject', () => {
  const base = {
    'content-length': '4096',
    etag: '"d41d8cd98f00b204e9800998ecf8427e-3"',
    'last-modified': 'Mon, 30 Nov 2026 08:09:10 GMT',
    'content-type': 'application/json',
    'cache-control': 'max-age=1',
    'content-disposition': 'inline',
    'content-encoding': 'gzip',
    'content-language': 'en',
    'x-amz-meta-origin': 'bench-3',
    'x-amz-meta-idx': '3',
    'x-amz-server-side-encryption': 'aws:kms',
    'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:us-east-1:1:key/a',
    'x-amz-server-side-encryption-bucket-key-enabled': 'true',
    'x-amz-storage-class': 'STANDARD_IA',
    'x-amz-version-id': 'v1',
    'x-amz-website-redirect-location': '/r',
    'x-amz-object-lock-mode': 'COMPLIANCE',
    'x-amz-object-lock-retain-until-date': '2030-05-06T07:08:09.123Z',
    'x-amz-object-lock-legal-hold': 'ON',
    'x-amz-checksum-crc32c': 'AAAAAA==',
    'x-amz-missing-meta': '2',
    'x-amz-restore': 'ongoing-request="false", expiry-date="Fri, 21 Dec 2026 00:00:00 GMT"',
    'x-amz-archive-status': 'ARCHIVE_ACCESS',
  };

  it.each([
    ['an HTTP-date Expires', { ...base, expires: 'Thu, 01 Dec 2026 16:00:00 GMT' }],
    ['Expires "0" (not a date: kept only as the string)', { ...base, expires: '0' }],
    ['Expires "-1"', { ...base, expires: '-1' }],
    ['a bare object', { 'content-length': '0', etag: '"e"', 'last-modified': 'Mon, 30 Nov 2026 08:09:10 GMT' }],
    ['SSE-C', { ...base, 'x-amz-server-side-encryption-customer-algorithm': 'AES256' }],
  ])('parses %s as the SDK does', async (_name, headers) => {
    answer = { status: 200, headers };
    seen.length = 0;
    const r = await both(
      () => clients.s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'a/b c', ChecksumMode: 'ENABLED' })),
      () => lean().headObject({ Bucket: 'bkt', Key: 'a/b c', ChecksumMode: 'ENABLED' }),
    );
    const strip = (o: unknown) => {
      const { $metadata: _m, ...rest } = o as Record<string, unknown>;
      return rest;
    };
    expect(strip(r.ours)).toEqual(strip(r.sdk));
    const [sdkReq, ourReq] = seen;
    expect(ourReq?.url).toBe(sdkReq?.url);
    expect(stable(ourReq?.headers ?? {})).toEqual(stable(sdkReq?.headers ?? {}));
  });

  it.each([404, 400, 403, 412, 500])('fails like the SDK on a bodiless %i', async (status) => {
    answer = { status };
    const r = await both(
      () => clients.s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'k' })),
      () => lean().headObject({ Bucket: 'bkt', Key: 'k' }),
    );
    expect(errorCode(r.ours)).toBe(errorCode(r.sdk));
    expect(httpStatus(r.ours)).toBe(httpStatus(r.sdk));
    expect(isNotFound(r.ours)).toBe(isNotFound(r.sdk));
    expect(needsExplaining(r.ours)).toBe(needsExplaining(r.sdk));
    expect((r.ours as Error).message).toBe((r.sdk as Error).message);
    expect(isTransient(r.ours, 8)).toBe(isTransient(r.sdk, 8));
  });
});

describe('lean endpoint', () => {
  /** The URL and signing scope the SDK would use, caught before anything is sent. */
  async function sdkRequest(c: Clients, bucket: string, key: string) {
    const caught = new Error('caught');
    let got: { url: string; scope: string } | undefined;
    const command = new HeadObjectCommand({ Bucket: bucket, Key: key });
    command.middlewareStack.add(
      () => (args) => {
        const r = args.request as {
          protocol: string;
          hostname: string;
          port?: number;
          path: string;
          headers: Record<string, string>;
        };
        const scope = /Credential=[^/]+\/\d+\/([^/]+)\/([^/]+)\//.exec(r.headers.authorization ?? '');
        got = {
          url: `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`,
          scope: scope ? `${scope[1]}/${scope[2]}` : '',
        };
        throw caught;
      },
      { step: 'finalizeRequest', name: 'catchRequest', priority: 'low' },
    );
    await c.s3.send(command).catch((e: unknown) => {
      if (e !== caught) throw e;
    });
    return got;
  }

  it.each([
    ['AWS, virtual-hosted bucket', { region: 'eu-west-1' }, 'my-bucket'],
    ['AWS, dotted bucket (path style over TLS)', { region: 'us-east-1' }, 'my.dotted.bucket'],
    ['AWS, forcePathStyle', { region: 'us-west-2', forcePathStyle: true }, 'my-bucket'],
    ['custom endpoint, virtual host', { region: 'us-east-1', endpoint: 'https://s3.example.test:9443' }, 'bkt'],
  ])('sends to the same URL, signed for the same region and service, as the SDK: %s', async (_name, conn, bucket) => {
    const c = createClients({ ...conn, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
    try {
      const key = 'dir/a b+c.txt';
      const sdk = await sdkRequest(c, bucket, key);
      const ours = await leanOf(c.s3)?.describe(bucket, key);
      expect(ours?.url).toBe(sdk?.url);
      expect(`${ours?.region ?? conn.region}/${ours?.service ?? 's3'}`).toBe(sdk?.scope);
    } finally {
      c.destroy();
    }
  });

  it('leaves S3 Express directory buckets to the SDK (session auth)', async () => {
    const c = createClients({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
    try {
      expect(await leanOf(c.s3)?.available('bucket--use1-az4--x-s3')).toBe(false);
    } finally {
      c.destroy();
    }
  });
});

describe('lean clock skew', () => {
  it('corrects the clock from the server Date after a skewed request and tries again, as the SDK does', async () => {
    const port = (server.address() as AddressInfo).port;
    const c = createClients(
      {
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      },
      { maxAttempts: 3 },
    );
    try {
      const serverNow = new Date(Date.now() + 3_600_000);
      const skewed = {
        status: 403,
        headers: { date: serverNow.toUTCString() },
        body: '<Error><Code>RequestTimeTooSkewed</Code><Message>too skewed</Message></Error>',
      };
      seen.length = 0;
      script.push(skewed);
      answer = { status: 200, headers: { 'x-amz-server-side-encryption': 'aws:kms' }, body: COPY_RESULT };
      const input: CopyObjectCommandInput = {
        Bucket: 'bkt',
        Key: 'k',
        CopySource: 'bkt/k',
        MetadataDirective: 'REPLACE',
      };
      const out = await leanOf(c.s3)?.copyObject(input, {});
      expect(out?.$metadata.attempts).toBe(2);
      const second = seen[1]?.headers['x-amz-date'] as string;
      const signedAt = Date.parse(second.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
      expect(Math.abs(signedAt - serverNow.getTime())).toBeLessThan(60_000);
    } finally {
      c.destroy();
      answer = { status: 200 };
    }
  });
});

describe('lean request observer', () => {
  it('reports one event per request, with its attempts and whether it was throttled', async () => {
    const port = (server.address() as AddressInfo).port;
    const events: RequestEvent[] = [];
    const c = createClients(
      {
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      },
      { maxAttempts: 3, observer: (e) => events.push(e) },
    );
    try {
      script.push({ status: 503, body: '<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>' });
      answer = { status: 200, body: COPY_RESULT };
      await leanOf(c.s3)?.copyObject(
        { Bucket: 'bkt', Key: 'k', CopySource: 'bkt/k', MetadataDirective: 'REPLACE' },
        {},
      );
      answer = { status: 404 };
      await leanOf(c.s3)
        ?.headObject({ Bucket: 'bkt', Key: 'gone' })
        .catch(() => undefined);
      expect(events).toEqual([
        expect.objectContaining({ service: 's3', operation: 'CopyObject', attempts: 2, throttled: true }),
        expect.objectContaining({
          service: 's3',
          operation: 'HeadObject',
          attempts: 1,
          throttled: false,
          error: 'NotFound',
        }),
      ]);
      expect(events[0]?.error).toBeUndefined();
    } finally {
      c.destroy();
      answer = { status: 200 };
    }
  });
});
