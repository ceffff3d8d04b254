// Proves that every gap in test/harness/server-gaps.ts still exists on the pinned
// servers, and that the AWS-like behaviours listed there still hold. A failure here
// after a server upgrade means the table is out of date: update it (and whatever
// engine workaround or test branch relies on that entry).
//
// Starts its own SeaweedFS + local-kms and moto in a temp dir: some checks disable a
// KMS key for a moment, which must not disturb other test files.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeKeyCommand, DisableKeyCommand, EnableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  GetBucketOwnershipControlsCommand,
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetBucketEncryptionCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CopyObjectCommandInput,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolPath } from './harness/process.js';
import { startMoto, startSeaweed, type KmsKeyInfo, type S3Env } from './harness/s3servers.js';
import { AWS_CONFORMANCE, SERVER_GAPS, type GapId, type ServerKind } from './harness/server-gaps.js';

const execFileAsync = promisify(execFile);

interface Ctx {
  env: S3Env;
  s3: S3Client;
  kms: KMSClient;
  key(alias: 'a' | 'b' | 'c' | 'disabled'): KmsKeyInfo;
  /** A new bucket (optionally versioned or with object lock). */
  bucket(opts?: { versioned?: boolean; objectLock?: boolean }): Promise<string>;
}

type Probe = (ctx: Ctx) => Promise<void>;

const BODY = randomBytes(64 * 1024);
const BODY_MD5 = `"${createHash('md5').update(BODY).digest('hex')}"`;
const BAD_ETAG = '"00000000000000000000000000000000"';

interface Failure {
  status: number | undefined;
  name: string | undefined;
}

/** The error a request fails with; throws if it succeeds. */
async function failureOf(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, name: e.name };
  }
  throw new Error('the request succeeded, but it was expected to fail');
}

async function readAll(ctx: Ctx, Bucket: string, Key: string): Promise<Buffer> {
  const r = await ctx.s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

function head(ctx: Ctx, Bucket: string, Key: string, extra: { ChecksumMode?: 'ENABLED'; PartNumber?: number } = {}) {
  return ctx.s3.send(new HeadObjectCommand({ Bucket, Key, ...extra }));
}

function put(
  ctx: Ctx,
  Bucket: string,
  Key: string,
  extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {},
) {
  return ctx.s3.send(new PutObjectCommand({ Bucket, Key, Body: BODY, ...extra }));
}

function copyInPlace(ctx: Ctx, Bucket: string, Key: string, extra: Partial<CopyObjectCommandInput> = {}) {
  return ctx.s3.send(new CopyObjectCommand({ Bucket, Key, CopySource: `${Bucket}/${Key}`, ...extra }));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs fn with key C disabled, then enables it again. */
async function withKeyCDisabled(ctx: Ctx, fn: () => Promise<void>): Promise<void> {
  const c = ctx.key('c');
  await ctx.kms.send(new DisableKeyCommand({ KeyId: c.keyId }));
  try {
    await fn();
  } finally {
    await ctx.kms.send(new EnableKeyCommand({ KeyId: c.keyId }));
  }
}

/** A multipart object of two parts (5 MiB + BODY). */
async function multipartObject(ctx: Ctx, Bucket: string, Key: string, sse: { SSEKMSKeyId?: string } = {}) {
  const c = await ctx.s3.send(
    new CreateMultipartUploadCommand({
      Bucket,
      Key,
      ...(sse.SSEKMSKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: sse.SSEKMSKeyId } : {}),
    }),
  );
  const big = Buffer.alloc(5 * 1024 * 1024, 7);
  const p1 = await ctx.s3.send(new UploadPartCommand({ Bucket, Key, UploadId: c.UploadId, PartNumber: 1, Body: big }));
  const p2 = await ctx.s3.send(new UploadPartCommand({ Bucket, Key, UploadId: c.UploadId, PartNumber: 2, Body: BODY }));
  await ctx.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key,
      UploadId: c.UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: p1.ETag },
          { PartNumber: 2, ETag: p2.ETag },
        ],
      },
    }),
  );
}

/** Starts a multipart upload to Key, runs UploadPartCopy from source, aborts. */
async function uploadPartCopy(
  ctx: Ctx,
  Bucket: string,
  Key: string,
  CopySource: string,
  extra: { CopySourceIfMatch?: string; SSEKMSKeyId?: string } = {},
) {
  const c = await ctx.s3.send(
    new CreateMultipartUploadCommand({
      Bucket,
      Key,
      ...(extra.SSEKMSKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: extra.SSEKMSKeyId } : {}),
    }),
  );
  try {
    return await ctx.s3.send(
      new UploadPartCopyCommand({
        Bucket,
        Key,
        UploadId: c.UploadId,
        PartNumber: 1,
        CopySource,
        CopySourceIfMatch: extra.CopySourceIfMatch,
      }),
    );
  } finally {
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: c.UploadId })).catch(() => undefined);
  }
}

function unknownKeyArn(env: S3Env): string {
  const arn = env.keys[0]!.arn;
  return arn.replace(/key\/.*$/, 'key/99999999-0000-4000-8000-000000000000');
}

// ---------------------------------------------------------------------------
// One probe per gap: each asserts the server behaviour described in the table.

const GAP_PROBES: Record<GapId, Probe> = {
  async 'seaweedfs-inplace-copy-requires-replace'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'o', { Metadata: { m: '1' }, ContentType: 'text/x-test' });
    const sse = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: ctx.key('a').arn } as const;
    for (const directive of ['COPY', undefined] as const) {
      const f = await failureOf(copyInPlace(ctx, b, 'o', { ...sse, MetadataDirective: directive }));
      expect(f, `in-place copy, directive ${directive ?? '(none)'}`).toEqual({ status: 400, name: 'InvalidRequest' });
    }
    // REPLACE works, with the metadata resent.
    await copyInPlace(ctx, b, 'o', {
      ...sse,
      MetadataDirective: 'REPLACE',
      Metadata: { m: '1' },
      ContentType: 'text/x-test',
    });
    const h = await head(ctx, b, 'o');
    expect([h.ServerSideEncryption, h.SSEKMSKeyId, h.Metadata, h.ContentType]).toEqual([
      'aws:kms',
      ctx.key('a').arn,
      { m: '1' },
      'text/x-test',
    ]);
    // In a versioned bucket COPY works.
    const vb = await ctx.bucket({ versioned: true });
    await put(ctx, vb, 'o', { Metadata: { m: '1' } });
    await copyInPlace(ctx, vb, 'o', { ...sse, MetadataDirective: 'COPY' });
    const vh = await head(ctx, vb, 'o');
    expect([vh.ServerSideEncryption, vh.Metadata]).toEqual(['aws:kms', { m: '1' }]);
  },

  async 'seaweedfs-inplace-kms-rekey-is-noop'(ctx) {
    const b = await ctx.bucket();
    const [a, bKey] = [ctx.key('a').arn, ctx.key('b').arn];
    await put(ctx, b, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: a });
    await copyInPlace(ctx, b, 'o', {
      MetadataDirective: 'REPLACE',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: bKey,
    });
    expect((await head(ctx, b, 'o')).SSEKMSKeyId, 'in-place A -> B answered 200 but kept key A').toBe(a);
    // The detour works: -> AES256 -> aws:kms B.
    await copyInPlace(ctx, b, 'o', { MetadataDirective: 'REPLACE', ServerSideEncryption: 'AES256' });
    await copyInPlace(ctx, b, 'o', {
      MetadataDirective: 'REPLACE',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: bKey,
    });
    expect((await head(ctx, b, 'o')).SSEKMSKeyId, 'A -> AES256 -> B').toBe(bKey);
    expect((await readAll(ctx, b, 'o')).equals(BODY)).toBe(true);
    // In a versioned bucket the direct rekey works.
    const vb = await ctx.bucket({ versioned: true });
    await put(ctx, vb, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: a });
    await copyInPlace(ctx, vb, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: bKey });
    expect((await head(ctx, vb, 'o')).SSEKMSKeyId, 'versioned in-place A -> B').toBe(bKey);
  },

  async 'seaweedfs-upload-part-copy-from-kms-501'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'kms', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: ctx.key('a').arn });
    await put(ctx, b, 'aes', { ServerSideEncryption: 'AES256' });
    const f = await failureOf(uploadPartCopy(ctx, b, 'dst', `${b}/kms`, { SSEKMSKeyId: ctx.key('b').arn }));
    expect(f).toEqual({ status: 501, name: 'NotImplemented' });
    const ok = await uploadPartCopy(ctx, b, 'dst2', `${b}/aes`, { SSEKMSKeyId: ctx.key('b').arn });
    expect(ok.CopyPartResult?.ETag, 'UploadPartCopy from an SSE-S3 source works').toBeTruthy();
  },

  async 'seaweedfs-kms-errors-are-500'(ctx) {
    const b = await ctx.bucket();
    const internal = { status: 500, name: 'InternalError' };
    for (const keyId of [unknownKeyArn(ctx.env), 'alias/does-not-exist', ctx.key('disabled').arn]) {
      const f = await failureOf(put(ctx, b, 'x', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId }));
      expect(f, `PUT with SSE-KMS key ${keyId}`).toEqual(internal);
    }
    await put(ctx, b, 'plain');
    const f = await failureOf(
      ctx.s3.send(
        new CopyObjectCommand({
          Bucket: b,
          Key: 'y',
          CopySource: `${b}/plain`,
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: ctx.key('disabled').arn,
        }),
      ),
    );
    expect(f, 'copy to a disabled key').toEqual(internal);
    await put(ctx, b, 'under-c', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: ctx.key('c').arn });
    await withKeyCDisabled(ctx, async () => {
      expect(await failureOf(readAll(ctx, b, 'under-c')), 'GET under a disabled key').toEqual(internal);
      expect((await head(ctx, b, 'under-c')).SSEKMSKeyId, 'HEAD under a disabled key').toBe(ctx.key('c').arn);
    });
  },

  async 'seaweedfs-kms-without-key-id-fails'(ctx) {
    const b = await ctx.bucket();
    const f = await failureOf(put(ctx, b, 'x', { ServerSideEncryption: 'aws:kms' }));
    expect(f).toEqual({ status: 500, name: 'InternalError' });
  },

  async 'seaweedfs-copy-response-lacks-sse'(ctx) {
    const b = await ctx.bucket();
    const a = ctx.key('a').arn;
    await put(ctx, b, 'src');
    const r = await ctx.s3.send(
      new CopyObjectCommand({
        Bucket: b,
        Key: 'dst',
        CopySource: `${b}/src`,
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: a,
      }),
    );
    expect([r.ServerSideEncryption, r.SSEKMSKeyId], 'CopyObject response').toEqual([undefined, undefined]);
    const h = await head(ctx, b, 'dst');
    expect([h.ServerSideEncryption, h.SSEKMSKeyId]).toEqual(['aws:kms', a]);
    const c = await ctx.s3.send(
      new CreateMultipartUploadCommand({ Bucket: b, Key: 'mp', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: a }),
    );
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: b, Key: 'mp', UploadId: c.UploadId }));
    expect(c.ServerSideEncryption, 'CreateMultipartUpload response').toBeUndefined();
  },

  async 'seaweedfs-bucket-key-not-reported'(ctx) {
    const b = await ctx.bucket();
    const p = await put(ctx, b, 'o', {
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: ctx.key('a').arn,
      BucketKeyEnabled: true,
    });
    expect(p.BucketKeyEnabled, 'PutObject response').toBe(true);
    const h = await head(ctx, b, 'o');
    expect([h.ServerSideEncryption, h.BucketKeyEnabled]).toEqual(['aws:kms', undefined]);
  },

  async 'seaweedfs-copy-keeps-storage-class'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'src', { StorageClass: 'STANDARD_IA' });
    await copyInPlace(ctx, b, 'src', { MetadataDirective: 'REPLACE', ServerSideEncryption: 'AES256' });
    expect((await head(ctx, b, 'src')).StorageClass).toBe('STANDARD_IA');
  },

  async 'seaweedfs-website-redirect-dropped'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'o', { WebsiteRedirectLocation: '/elsewhere' });
    expect((await head(ctx, b, 'o')).WebsiteRedirectLocation).toBeUndefined();
  },

  async 'seaweedfs-acls-kept-under-owner-enforced'(ctx) {
    const b = await ctx.bucket();
    const oc = await ctx.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: b }));
    expect(oc.OwnershipControls?.Rules?.[0]?.ObjectOwnership).toBe('BucketOwnerEnforced');
    await put(ctx, b, 'o', { GrantRead: 'uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"' });
    const acl = await ctx.s3.send(new GetObjectAclCommand({ Bucket: b, Key: 'o' }));
    expect(acl.Grants?.some((g) => g.Permission === 'READ' && g.Grantee?.URI?.endsWith('AuthenticatedUsers'))).toBe(
      true,
    );
  },

  async 'moto-multipart-object-acl-500'(ctx) {
    const b = await ctx.bucket();
    const c = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'm' }));
    const part = await ctx.s3.send(
      new UploadPartCommand({ Bucket: b, Key: 'm', UploadId: c.UploadId, PartNumber: 1, Body: 'x' }),
    );
    await ctx.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: b,
        Key: 'm',
        UploadId: c.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    const err = await ctx.s3.send(new GetObjectAclCommand({ Bucket: b, Key: 'm' })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
  },

  async 'seaweedfs-list-url-encoding-plus'(ctx) {
    const b = await ctx.bucket();
    const key = 'dir a/b c+d%e.txt';
    await put(ctx, b, key);
    const r = await ctx.s3.send(new ListObjectsV2Command({ Bucket: b, EncodingType: 'url' }));
    expect(r.Contents?.map((c) => c.Key)).toEqual(['dir%20a/b+c%2Bd%25e.txt']);
    const d = await ctx.s3.send(new ListObjectsV2Command({ Bucket: b, EncodingType: 'url', Delimiter: '/' }));
    expect(d.CommonPrefixes?.map((c) => c.Prefix)).toEqual(['dir%20a/']);
    // The decoding rule in the table works for it.
    const listed = r.Contents![0]!.Key!;
    expect(decodeURIComponent(listed.replace(/\+/g, '%20'))).toBe(key);
  },

  async 'moto-ignores-copy-source-conditions'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'src');
    await ctx.s3.send(
      new CopyObjectCommand({ Bucket: b, Key: 'd1', CopySource: `${b}/src`, CopySourceIfMatch: BAD_ETAG }),
    );
    await ctx.s3.send(
      new CopyObjectCommand({
        Bucket: b,
        Key: 'd2',
        CopySource: `${b}/src`,
        CopySourceIfUnmodifiedSince: new Date('2000-01-01'),
      }),
    );
    await copyInPlace(ctx, b, 'src', {
      MetadataDirective: 'REPLACE',
      ServerSideEncryption: 'AES256',
      CopySourceIfMatch: BAD_ETAG,
    });
    expect((await head(ctx, b, 'src')).ServerSideEncryption, 'in-place copy done despite a false if-match').toBe(
      'AES256',
    );
    expect((await head(ctx, b, 'd1')).ETag).toBe(BODY_MD5);
    expect((await head(ctx, b, 'd2')).ETag).toBe(BODY_MD5);
    const p = await uploadPartCopy(ctx, b, 'mp', `${b}/src`, { CopySourceIfMatch: BAD_ETAG });
    expect(p.CopyPartResult?.ETag, 'UploadPartCopy done despite a false if-match').toBeTruthy();
    // Nor the destination's If-Match on a copy (AWS: 412).
    await copyInPlace(ctx, b, 'src', { MetadataDirective: 'REPLACE', Metadata: { x: '1' }, IfMatch: BAD_ETAG });
    expect((await head(ctx, b, 'src')).Metadata, 'copy done despite a false If-Match').toEqual({ x: '1' });
  },

  async 'seaweedfs-expires-must-be-a-date'(ctx) {
    const b = await ctx.bucket();
    const cmd = new PutObjectCommand({ Bucket: b, Key: 'e', Body: BODY });
    cmd.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers.expires = '0';
        return next(args);
      },
      { step: 'build', name: 'rawExpires' },
    );
    const err = await ctx.s3.send(cmd).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe('MalformedDate');
  },

  async 'moto-multipart-upload-drops-object-lock'(ctx) {
    const b = await ctx.bucket({ objectLock: true });
    const { UploadId } = await ctx.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: b,
        Key: 'mp',
        ObjectLockMode: 'GOVERNANCE',
        ObjectLockRetainUntilDate: new Date(Date.now() + 3_600_000),
        ObjectLockLegalHoldStatus: 'ON',
      }),
    );
    const part = await ctx.s3.send(
      new UploadPartCommand({ Bucket: b, Key: 'mp', UploadId, PartNumber: 1, Body: BODY }),
    );
    await ctx.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: b,
        Key: 'mp',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    const h = await head(ctx, b, 'mp');
    expect([h.ObjectLockMode, h.ObjectLockLegalHoldStatus]).toEqual([undefined, undefined]);
  },

  async 'moto-get-retention-returns-object'(ctx) {
    const b = await ctx.bucket({ objectLock: true });
    await put(ctx, b, 'plain');
    await put(ctx, b, 'retained');
    await ctx.s3.send(
      new PutObjectRetentionCommand({
        Bucket: b,
        Key: 'retained',
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 3_600_000) },
      }),
    );
    for (const key of ['plain', 'retained']) {
      const err = await ctx.s3.send(new GetObjectRetentionCommand({ Bucket: b, Key: key })).then(
        () => undefined,
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => e,
      );
      expect(err?.$metadata?.httpStatusCode, `${key}: a 200 that is not a retention document`).toBe(200);
      expect(err?.message).toMatch(/parse error|deserializ/i);
    }
  },

  async 'moto-kms-keys-not-validated'(ctx) {
    const b = await ctx.bucket();
    const disabled = ctx.key('disabled');
    const state = await ctx.kms.send(new DescribeKeyCommand({ KeyId: disabled.alias }));
    expect(state.KeyMetadata?.KeyState, 'moto KMS reports the key disabled').toBe('Disabled');
    for (const keyId of [unknownKeyArn(ctx.env), 'alias/does-not-exist', disabled.arn]) {
      const p = await put(ctx, b, 'x', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId });
      expect([p.ServerSideEncryption, p.SSEKMSKeyId], `PUT with key ${keyId} accepted`).toEqual(['aws:kms', keyId]);
    }
    await put(ctx, b, 'under-c', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: ctx.key('c').arn });
    await withKeyCDisabled(ctx, async () => {
      expect((await readAll(ctx, b, 'under-c')).equals(BODY), 'GET under a disabled key returns the data').toBe(true);
    });
  },

  async 'moto-sse-kms-key-id-as-sent'(ctx) {
    const b = await ctx.bucket();
    const a = ctx.key('a');
    for (const keyId of [a.alias, a.keyId]) {
      await put(ctx, b, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId });
      expect((await head(ctx, b, 'o')).SSEKMSKeyId, `written with ${keyId}`).toBe(keyId);
    }
    await put(ctx, b, 'o', { ServerSideEncryption: 'aws:kms' });
    const h = await head(ctx, b, 'o');
    expect([h.ServerSideEncryption, h.SSEKMSKeyId], 'aws:kms without key id').toEqual(['aws:kms', undefined]);
  },

  async 'moto-head-part-number-etag'(ctx) {
    const b = await ctx.bucket();
    await multipartObject(ctx, b, 'mp');
    const whole = await head(ctx, b, 'mp');
    expect(whole.ETag).toMatch(/-2"$/);
    const part = await head(ctx, b, 'mp', { PartNumber: 1 });
    expect(part.PartsCount).toBe(2);
    expect(part.ETag).not.toBe(whole.ETag);
  },

  async 'etag-is-plaintext-md5-for-sse-kms'(ctx) {
    const b = await ctx.bucket();
    const p = await put(ctx, b, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: ctx.key('a').arn });
    expect(p.ETag).toBe(BODY_MD5);
    await copyInPlace(ctx, b, 'o', { MetadataDirective: 'REPLACE', ServerSideEncryption: 'AES256' });
    await copyInPlace(ctx, b, 'o', {
      MetadataDirective: 'REPLACE',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: ctx.key('b').arn,
    });
    const h = await head(ctx, b, 'o');
    expect([h.SSEKMSKeyId, h.ETag], 're-encrypted twice, same ETag').toEqual([ctx.key('b').arn, BODY_MD5]);
  },

  async 'no-default-encryption'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'o');
    expect((await head(ctx, b, 'o')).ServerSideEncryption).toBeUndefined();
    const f = await failureOf(ctx.s3.send(new GetBucketEncryptionCommand({ Bucket: b })));
    expect(f).toEqual({ status: 404, name: 'ServerSideEncryptionConfigurationNotFoundError' });
  },
};

// ---------------------------------------------------------------------------
// Behaviours that match AWS (some of them refute earlier beliefs).

const CONFORMANCE_PROBES: Record<string, Probe> = {
  async 'seaweedfs-copy-does-not-copy-acl'(ctx) {
    const b = await ctx.bucket();
    const grants = async (Key: string) =>
      (await ctx.s3.send(new GetObjectAclCommand({ Bucket: b, Key }))).Grants?.map(
        (g) => `${g.Grantee?.Type}:${g.Grantee?.URI ?? 'owner'}:${g.Permission}`,
      );
    await put(ctx, b, 'src', { ACL: 'public-read' });
    expect(await grants('src')).toContain('Group:http://acs.amazonaws.com/groups/global/AllUsers:READ');
    await ctx.s3.send(new CopyObjectCommand({ Bucket: b, Key: 'dst', CopySource: `${b}/src` }));
    expect(await grants('dst'), 'copy to another key').toEqual(['CanonicalUser:owner:FULL_CONTROL']);
    await copyInPlace(ctx, b, 'src', { MetadataDirective: 'REPLACE', ServerSideEncryption: 'AES256' });
    expect(await grants('src'), 'in-place copy').toEqual(['CanonicalUser:owner:FULL_CONTROL']);
  },

  async 'seaweedfs-copy-does-not-copy-object-lock'(ctx) {
    const b = await ctx.bucket({ objectLock: true });
    await put(ctx, b, 'l', {
      ObjectLockLegalHoldStatus: 'ON',
      ObjectLockMode: 'GOVERNANCE',
      ObjectLockRetainUntilDate: new Date(Date.now() + 3_600_000),
      ChecksumAlgorithm: 'CRC32',
    });
    const src = await head(ctx, b, 'l');
    expect([src.ObjectLockLegalHoldStatus, src.ObjectLockMode]).toEqual(['ON', 'GOVERNANCE']);
    for (const MetadataDirective of ['COPY', 'REPLACE'] as const) {
      await ctx.s3.send(
        new CopyObjectCommand({ Bucket: b, Key: `l-${MetadataDirective}`, CopySource: `${b}/l`, MetadataDirective }),
      );
      const h = await head(ctx, b, `l-${MetadataDirective}`);
      expect([h.ObjectLockLegalHoldStatus, h.ObjectLockMode, h.ObjectLockRetainUntilDate], MetadataDirective).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    }
  },

  async 'seaweedfs-honours-copy-source-conditions'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'src');
    const pre = { status: 412, name: 'PreconditionFailed' };
    expect(
      await failureOf(
        ctx.s3.send(
          new CopyObjectCommand({ Bucket: b, Key: 'd', CopySource: `${b}/src`, CopySourceIfMatch: BAD_ETAG }),
        ),
      ),
    ).toEqual(pre);
    expect(
      await failureOf(
        ctx.s3.send(
          new CopyObjectCommand({
            Bucket: b,
            Key: 'd',
            CopySource: `${b}/src`,
            CopySourceIfUnmodifiedSince: new Date('2000-01-01'),
          }),
        ),
      ),
    ).toEqual(pre);
    expect(
      await failureOf(
        copyInPlace(ctx, b, 'src', {
          MetadataDirective: 'REPLACE',
          ServerSideEncryption: 'AES256',
          CopySourceIfMatch: BAD_ETAG,
        }),
      ),
    ).toEqual(pre);
    expect((await head(ctx, b, 'src')).ServerSideEncryption, 'nothing written').toBeUndefined();
    expect(await failureOf(uploadPartCopy(ctx, b, 'mp', `${b}/src`, { CopySourceIfMatch: BAD_ETAG }))).toEqual(pre);
    await ctx.s3.send(
      new CopyObjectCommand({ Bucket: b, Key: 'd', CopySource: `${b}/src`, CopySourceIfMatch: BODY_MD5 }),
    );
  },

  async 'conditional-put'(ctx) {
    const b = await ctx.bucket();
    await put(ctx, b, 'o');
    const pre = { status: 412, name: 'PreconditionFailed' };
    expect(await failureOf(put(ctx, b, 'o', { IfMatch: BAD_ETAG }))).toEqual(pre);
    expect(await failureOf(put(ctx, b, 'o', { IfNoneMatch: '*' }))).toEqual(pre);
    await put(ctx, b, 'o', { IfMatch: BODY_MD5 });
  },

  async 'copy-keeps-tags-and-checksum'(ctx) {
    const b = await ctx.bucket();
    const p = await put(ctx, b, 'o', { Tagging: 'a=1&b=2', ChecksumAlgorithm: 'SHA256' });
    expect(p.ChecksumSHA256).toBeTruthy();
    const before = await head(ctx, b, 'o');
    await sleep(1_100);
    await copyInPlace(ctx, b, 'o', { MetadataDirective: 'REPLACE', ServerSideEncryption: 'AES256' });
    const after = await head(ctx, b, 'o', { ChecksumMode: 'ENABLED' });
    expect(after.ChecksumSHA256).toBe(p.ChecksumSHA256);
    expect(after.LastModified!.getTime()).toBeGreaterThan(before.LastModified!.getTime());
    const tags = await ctx.s3.send(new GetObjectTaggingCommand({ Bucket: b, Key: 'o' }));
    expect(tags.TagSet).toEqual([
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
    ]);
  },

  async 'real-sse-roundtrip'(ctx) {
    const b = await ctx.bucket();
    const a = ctx.key('a');
    await put(ctx, b, 'kms', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: a.arn });
    await put(ctx, b, 'aes', { ServerSideEncryption: 'AES256' });
    const hk = await head(ctx, b, 'kms');
    expect([hk.ServerSideEncryption, hk.SSEKMSKeyId]).toEqual(['aws:kms', a.arn]);
    expect((await head(ctx, b, 'aes')).ServerSideEncryption).toBe('AES256');
    for (const key of ['kms', 'aes']) expect((await readAll(ctx, b, key)).equals(BODY), key).toBe(true);
    const r = await ctx.s3.send(new GetObjectCommand({ Bucket: b, Key: 'kms', Range: 'bytes=100-199' }));
    expect(Buffer.from(await r.Body!.transformToByteArray()).equals(BODY.subarray(100, 200)), 'ranged GET').toBe(true);
    if (ctx.env.kind === 'seaweedfs') {
      for (const keyId of [a.alias, a.keyId]) {
        await put(ctx, b, 'o', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId });
        expect((await head(ctx, b, 'o')).SSEKMSKeyId, `written with ${keyId}`).toBe(a.arn);
      }
    }
    // The AWS CLI from the venv works as a real client against the server.
    const cliEnv = {
      ...process.env,
      AWS_ACCESS_KEY_ID: ctx.env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: ctx.env.secretAccessKey,
      AWS_DEFAULT_REGION: ctx.env.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
    const cli = async (args: string[]) =>
      (
        await execFileAsync(toolPath('aws'), ['--endpoint-url', ctx.env.s3Endpoint, '--output', 'json', ...args], {
          env: cliEnv,
        })
      ).stdout;
    const file = join(workDir, `cli-body-${ctx.env.kind}`);
    writeFileSync(file, BODY);
    await cli([
      's3api',
      'put-object',
      '--bucket',
      b,
      '--key',
      'cli',
      '--body',
      file,
      '--server-side-encryption',
      'aws:kms',
      '--ssekms-key-id',
      a.arn,
    ]);
    const h = JSON.parse(await cli(['s3api', 'head-object', '--bucket', b, '--key', 'cli'])) as Record<string, unknown>;
    expect([h.ServerSideEncryption, h.SSEKMSKeyId], 'AWS CLI head-object').toEqual(['aws:kms', a.arn]);
  },
};

// ---------------------------------------------------------------------------

const KINDS: ServerKind[] = ['seaweedfs', 'moto'];
const ctxs = new Map<ServerKind, Ctx>();
let workDir = '';

function makeCtx(env: S3Env): Ctx {
  const credentials = { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey };
  const s3 = new S3Client({
    endpoint: env.s3Endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials,
    // One attempt: SeaweedFS answers KMS errors with 500, which the SDK would retry.
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const kms = new KMSClient({ endpoint: env.kmsEndpoint, region: env.region, credentials, maxAttempts: 1 });
  let n = 0;
  return {
    env,
    s3,
    kms,
    key(alias) {
      const k = env.keys.find((x) => x.alias === `alias/test-key-${alias}`);
      if (!k) throw new Error(`no key alias/test-key-${alias} on ${env.kind}`);
      return k;
    },
    async bucket(opts = {}) {
      const Bucket = `gaps-${env.kind}-${randomBytes(3).toString('hex')}-${n++}`;
      await s3.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: opts.objectLock || undefined }));
      if (opts.versioned) {
        await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
      }
      return Bucket;
    },
  };
}

function ctxOf(kind: ServerKind): Ctx {
  const ctx = ctxs.get(kind);
  if (!ctx) throw new Error(`${kind} did not start`);
  return ctx;
}

/** Runs a probe, pointing at the table when the server no longer behaves as written. */
async function check(kind: ServerKind, id: string, what: string, probe: Probe): Promise<void> {
  try {
    await probe(ctxOf(kind));
  } catch (err) {
    if (err instanceof Error) {
      err.message =
        `${kind} no longer behaves as test/harness/server-gaps.ts says for "${id}" (${what}): ` +
        `update that entry and whatever relies on it.\n${err.message}`;
    }
    throw err;
  }
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 's3eo-gaps-'));
  const [sw, mo] = await Promise.all([
    startSeaweed({ workDir: join(workDir, 'seaweedfs') }),
    startMoto({ workDir: join(workDir, 'moto') }),
  ]);
  ctxs.set('seaweedfs', makeCtx(sw));
  ctxs.set('moto', makeCtx(mo));
}, 180_000);

afterAll(async () => {
  for (const ctx of ctxs.values()) await ctx.env.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, 60_000);

describe('server gaps (test/harness/server-gaps.ts) still exist', () => {
  for (const gap of SERVER_GAPS) {
    for (const kind of KINDS.filter((k) => gap.server === k || gap.server === 'both')) {
      it(`${kind}: ${gap.id}`, () => check(kind, gap.id, 'a gap', GAP_PROBES[gap.id]), 120_000);
    }
  }
});

describe('behaviours that match AWS still do', () => {
  for (const c of AWS_CONFORMANCE) {
    const probe = CONFORMANCE_PROBES[c.id];
    it(`every conformance entry has a probe: ${c.id}`, () => expect(probe).toBeDefined());
    if (!probe) continue;
    for (const kind of KINDS.filter((k) => c.server === k || c.server === 'both')) {
      it(`${kind}: ${c.id}`, () => check(kind, c.id, 'AWS-like', probe), 120_000);
    }
  }
});
