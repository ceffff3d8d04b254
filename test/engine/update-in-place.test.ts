// The engine's UpdateObjectEncryption path, through the local stand-in
// (test/harness/uoe-standin.ts) in front of SeaweedFS + local-kms: which
// objects are changed in place, which fall back to a copy, which are skipped,
// and that PUT ?encryption is never sent to an endpoint not known to support it.
// DSSE-KMS sources cannot be tested here (SeaweedFS refuses to store them:
// InvalidArgument); test/unit/decide.test.ts covers them.
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  S3Client,
  UpdateObjectEncryptionCommand,
  UploadPartCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runEngine, type Outcome, type Plan } from '../../src/engine/index.js';
import { createBucket, keyOf, s3Client, uniqueName, connectionFor, enginePlan } from '../harness/context.js';
import { startUpdateObjectEncryptionStandIn, type UpdateObjectEncryptionStandIn } from '../harness/uoe-standin.js';

const info = inject('seaweed');
let standIn: UpdateObjectEncryptionStandIn;
/** Straight to SeaweedFS: sets up objects and sees what the stand-in did on the backend. */
let direct: S3Client;
/** Through the stand-in: sees what AWS would show. */
let via: S3Client;

const keyA = () => keyOf(info, 'alias/test-key-a');
const keyB = () => keyOf(info, 'alias/test-key-b');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function plan(bucket: string, extra: Partial<Plan> = {}, connection: Partial<Plan['connection']> = {}): Plan {
  return enginePlan(
    info,
    bucket,
    { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' },
    {
      connection: connectionFor(info, {
        endpoint: standIn.endpoint,
        supportsUpdateObjectEncryption: true,
        ...connection,
      }),
      method: 'Auto',
      concurrency: 4,
      ...extra,
    },
  );
}

async function run(p: Plan): Promise<{
  result: Awaited<ReturnType<typeof runEngine>>;
  outcomes: Map<string, Outcome>;
  wire: Record<string, number>;
}> {
  const outcomes = new Map<string, Outcome>();
  const wireBefore = { ...standIn.bucketCounts[p.bucket] };
  const result = await runEngine(p, { onOutcome: (key, outcome) => outcomes.set(key, outcome) });
  // What reached the stand-in during this run: the requests on the wire.
  const wire: Record<string, number> = {};
  for (const [op, n] of Object.entries(standIn.bucketCounts[p.bucket] ?? {})) {
    const d = n - (wireBefore[op] ?? 0);
    if (d > 0) wire[op] = d;
  }
  return { result, outcomes, wire };
}

const head = (s3: S3Client, Bucket: string, Key: string, VersionId?: string) =>
  s3.send(new HeadObjectCommand({ Bucket, Key, VersionId }));
const body = async (s3: S3Client, Bucket: string, Key: string) =>
  (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body?.transformToString();

function expectKeyA(h: HeadObjectCommandOutput, key: string): void {
  expect(h.ServerSideEncryption, key).toBe('aws:kms');
  expect([keyA().arn, keyA().keyId], key).toContain(h.SSEKMSKeyId);
}

/** A bucket with object lock (hence versioned): one object under legal hold, one under retention, both SSE-S3. */
async function lockedBucket(): Promise<string> {
  const bucket = uniqueName('uoe-lock');
  await direct.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  for (const key of ['held', 'retained']) {
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${key}`, ServerSideEncryption: 'AES256' }),
    );
  }
  await direct.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: 'held', LegalHold: { Status: 'ON' } }));
  await direct.send(
    new PutObjectRetentionCommand({
      Bucket: bucket,
      Key: 'retained',
      Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 3_600_000) },
    }),
  );
  const held = await head(direct, bucket, 'held');
  const retained = await head(direct, bucket, 'retained');
  // SeaweedFS does object lock: the engine and the stand-in see it on HEAD.
  expect(held.ObjectLockLegalHoldStatus).toBe('ON');
  expect(retained.ObjectLockMode).toBe('GOVERNANCE');
  return bucket;
}

beforeAll(async () => {
  standIn = await startUpdateObjectEncryptionStandIn(info);
  direct = s3Client(info);
  via = s3Client({ ...info, s3Endpoint: standIn.endpoint });
});
afterAll(async () => {
  via.destroy();
  direct.destroy();
  await standIn.stop();
});

describe('UpdateObjectEncryption through the stand-in', () => {
  it('Auto: SSE-S3 and key-B objects get key A in place only; LastModified, ETag, metadata and tags stay', async () => {
    const bucket = await createBucket(direct, 'uoe');
    const meta = {
      ContentType: 'text/csv',
      CacheControl: 'max-age=60',
      Metadata: { owner: 'team-x', note: 'keep me' },
    };
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 's3/one', Body: 'one', ServerSideEncryption: 'AES256', ...meta }),
    );
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 's3/two words', Body: 'two', ServerSideEncryption: 'AES256' }),
    );
    await direct.send(
      new PutObjectTaggingCommand({ Bucket: bucket, Key: 's3/one', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }),
    );
    await direct.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'kms/b',
        Body: 'bee',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: keyB().arn,
        ...meta,
      }),
    );
    await direct.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'kms/a',
        Body: 'ay',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: keyA().arn,
      }),
    );
    // A multipart object: its ETag ("...-2") is not an MD5 of the data and must survive too.
    const mp = await direct.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 's3/multipart', ServerSideEncryption: 'AES256' }),
    );
    const parts = [Buffer.alloc(5 * 1024 * 1024, 1), Buffer.from('tail')];
    const etags: string[] = [];
    for (const [i, Body] of parts.entries()) {
      const p = await direct.send(
        new UploadPartCommand({ Bucket: bucket, Key: 's3/multipart', UploadId: mp.UploadId, PartNumber: i + 1, Body }),
      );
      etags.push(p.ETag ?? '');
    }
    await direct.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: 's3/multipart',
        UploadId: mp.UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    const changing = ['s3/one', 's3/two words', 's3/multipart', 'kms/b'];
    const before = new Map<string, HeadObjectCommandOutput>();
    for (const key of changing) before.set(key, await head(direct, bucket, key));
    const listedBefore = (await direct.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
    await sleep(1100); // a rewrite would now show a later LastModified

    const { result, outcomes, wire } = await run(plan(bucket));
    expect(result.status).toBe('Complete');
    expect(result.recentFailures).toEqual([]);
    expect(result.counters).toMatchObject({ scanned: 5, encrypted: 4, alreadyEncrypted: 1, failed: 0 });
    for (const key of changing)
      expect(outcomes.get(key), key).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
    expect(result.requests.UpdateObjectEncryption).toBe(4);
    expect(result.requests.CopyObject).toBeUndefined();
    // On the wire: only reads and UpdateObjectEncryption; no copy, no put, no multipart.
    expect(wire.UpdateObjectEncryption).toBe(4);
    for (const op of ['CopyObject', 'PutObject', 'UploadPartCopy', 'CreateMultipartUpload', 'GetObjectAcl']) {
      expect(wire[op], op).toBeUndefined();
    }

    for (const key of changing) {
      const was = before.get(key)!;
      const now = await head(via, bucket, key);
      expectKeyA(now, key);
      expect(now.LastModified, key).toEqual(was.LastModified);
      expect(now.ETag, key).toBe(was.ETag);
      expect(now.ContentLength, key).toBe(was.ContentLength);
      expect(now.ContentType, key).toBe(was.ContentType);
      expect(now.CacheControl, key).toBe(was.CacheControl);
      expect(now.Metadata, key).toEqual(was.Metadata);
      expect(now.StorageClass, key).toBe(was.StorageClass);
    }
    expect((await direct.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 's3/one' }))).TagSet).toEqual([
      { Key: 'k', Value: 'v' },
    ]);
    expect(await body(via, bucket, 's3/one')).toBe('one');
    expect(await body(via, bucket, 'kms/b')).toBe('bee');
    const mpBody = (await via.send(new GetObjectCommand({ Bucket: bucket, Key: 's3/multipart' }))).Body;
    const digest = createHash('md5')
      .update(Buffer.from((await mpBody?.transformToByteArray()) ?? []))
      .digest('hex');
    expect(digest).toBe(createHash('md5').update(Buffer.concat(parts)).digest('hex'));
    // Listings through the stand-in show the original dates and ETags too.
    const listedAfter = (await via.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [];
    expect(listedAfter.map((o) => [o.Key, o.ETag, o.LastModified?.toISOString()])).toEqual(
      listedBefore.map((o) => [o.Key, o.ETag, o.LastModified?.toISOString()]),
    );
    // (The backend itself was rewritten: that is how the stand-in changes encryption.)
    expect((await head(direct, bucket, 's3/one')).LastModified!.getTime()).toBeGreaterThan(
      before.get('s3/one')!.LastModified!.getTime(),
    );

    // Idempotent: a second run finds everything at the target.
    const again = await run(plan(bucket));
    expect(again.result.counters).toMatchObject({ scanned: 5, encrypted: 0, alreadyEncrypted: 5 });
    expect(again.wire.UpdateObjectEncryption).toBeUndefined();
  });

  it('Auto: unencrypted and locked objects fall back to a copy; eligible ones beside them are updated in place', async () => {
    const bucket = await createBucket(direct, 'uoe-auto');
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'plain' }));
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'sse-s3', Body: 'sse-s3', ServerSideEncryption: 'AES256' }),
    );
    const { result, outcomes, wire } = await run(plan(bucket));
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    expect(outcomes.get('plain')).toMatchObject({ kind: 'encrypted', method: 'copy' });
    expect(outcomes.get('sse-s3')).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
    expect(wire).toMatchObject({ CopyObject: 1, UpdateObjectEncryption: 1 });
    for (const key of ['plain', 'sse-s3']) expectKeyA(await head(via, bucket, key), key);

    const locked = await lockedBucket();
    const lockedRun = await run(plan(locked));
    expect(lockedRun.result.recentFailures).toEqual([]);
    expect(lockedRun.result.counters).toMatchObject({ scanned: 2, encrypted: 2, failed: 0 });
    for (const key of ['held', 'retained']) {
      expect(lockedRun.outcomes.get(key), key).toMatchObject({ kind: 'encrypted', method: 'copy' });
      expectKeyA(await head(via, locked, key), key);
    }
    expect(lockedRun.wire.CopyObject).toBe(2);
    expect(lockedRun.wire.UpdateObjectEncryption).toBeUndefined();
  });

  it('method UpdateObjectEncryption: ineligible objects are skipped as unsupported and never copied', async () => {
    const bucket = await createBucket(direct, 'uoe-only');
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'plain' }));
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'sse-s3', Body: 'sse-s3', ServerSideEncryption: 'AES256' }),
    );
    const plainBefore = await head(direct, bucket, 'plain');
    const { result, outcomes, wire } = await run(plan(bucket, { method: 'UpdateObjectEncryption' }));
    expect(result.status).toBe('Complete');
    expect(result.counters).toMatchObject({ scanned: 2, encrypted: 1, skipped: 1, failed: 0 });
    expect(result.skippedByReason.unsupported).toBe(1);
    expect(outcomes.get('plain')).toMatchObject({ kind: 'skipped', reason: 'unsupported' });
    expect(outcomes.get('sse-s3')).toMatchObject({ kind: 'encrypted', method: 'update-in-place' });
    expect(wire.UpdateObjectEncryption).toBe(1); // the ineligible object was never even sent
    expect(wire.CopyObject).toBeUndefined();
    const plainAfter = await head(direct, bucket, 'plain');
    expect(plainAfter.ServerSideEncryption).toBeUndefined();
    expect(plainAfter.LastModified).toEqual(plainBefore.LastModified);

    const locked = await lockedBucket();
    const lockedBefore = await head(direct, locked, 'held');
    const lockedRun = await run(plan(locked, { method: 'UpdateObjectEncryption' }));
    expect(lockedRun.result.counters).toMatchObject({ scanned: 2, encrypted: 0, skipped: 2, failed: 0 });
    expect(lockedRun.result.skippedByReason.unsupported).toBe(2);
    for (const key of ['held', 'retained'])
      expect(lockedRun.outcomes.get(key), key).toMatchObject({ kind: 'skipped', reason: 'unsupported' });
    expect(lockedRun.wire.CopyObject).toBeUndefined();
    expect(lockedRun.wire.UpdateObjectEncryption).toBeUndefined();
    const lockedAfter = await head(direct, locked, 'held');
    expect([lockedAfter.ServerSideEncryption, lockedAfter.VersionId]).toEqual(['AES256', lockedBefore.VersionId]);
  });

  it('a custom endpoint not said to support it never gets PUT ?encryption: Auto copies instead', async () => {
    const bucket = await createBucket(direct, 'uoe-unset');
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'sse-s3/1', Body: 'one', ServerSideEncryption: 'AES256' }),
    );
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'sse-s3/2', Body: 'two', ServerSideEncryption: 'AES256' }),
    );
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'plain' }));
    const p = plan(bucket);
    delete p.connection.supportsUpdateObjectEncryption; // a custom endpoint, nothing said
    const { result, outcomes, wire } = await run(p);
    expect(result.counters).toMatchObject({ scanned: 3, encrypted: 3, failed: 0 });
    for (const outcome of outcomes.values()) expect(outcome).toMatchObject({ kind: 'encrypted', method: 'copy' });
    expect(wire.UpdateObjectEncryption).toBeUndefined();
    expect(result.requests.UpdateObjectEncryption).toBeUndefined();
    expect(wire.CopyObject).toBe(3);
    // Nor does a dry run plan one.
    const dry = await run({ ...p, dryRun: true, target: { type: 'aws:kms', kmsKeyId: 'alias/test-key-b' } });
    expect(dry.result.planned.byMethod).toEqual({ copy: 3 });
    expect(dry.wire.UpdateObjectEncryption).toBeUndefined();
  });
});

describe('the stand-in answers ineligible requests with AWS error codes and changes nothing', () => {
  const uoe = (
    Bucket: string,
    Key: string,
    KMSKeyArn: string,
    extra: { VersionId?: string; BucketKeyEnabled?: boolean } = {},
  ) =>
    via.send(
      new UpdateObjectEncryptionCommand({
        Bucket,
        Key,
        ...(extra.VersionId ? { VersionId: extra.VersionId } : {}),
        ObjectEncryption: {
          SSEKMS: {
            KMSKeyArn,
            ...(extra.BucketKeyEnabled !== undefined ? { BucketKeyEnabled: extra.BucketKeyEnabled } : {}),
          },
        },
      }),
    );
  const refusal = async (p: Promise<unknown>): Promise<[string, number | undefined]> => {
    try {
      await p;
    } catch (err) {
      return [(err as Error).name, (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode];
    }
    return ['(no error)', 200];
  };

  it('unencrypted, SSE-C, missing, locked objects and bad key ARNs', async () => {
    const bucket = await createBucket(direct, 'uoe-err');
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'plain body' }));
    await direct.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'sse-s3', Body: 'sse-s3 body', ServerSideEncryption: 'AES256' }),
    );
    const customerKey = Buffer.alloc(32, 7);
    await direct.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'sse-c',
        Body: 'sse-c body',
        SSECustomerAlgorithm: 'AES256',
        SSECustomerKey: customerKey.toString('base64'),
        SSECustomerKeyMD5: createHash('md5').update(customerKey).digest('base64'),
      }),
    );
    const locked = await lockedBucket();
    const held = await head(direct, locked, 'held');
    const retained = await head(direct, locked, 'retained');
    const before = await head(direct, bucket, 'plain');
    const arn = keyA().arn;
    const otherAccount = arn.replace(/:\d{12}:/, ':123456789012:');

    expect(await refusal(uoe(bucket, 'plain', arn))).toEqual(['InvalidRequest', 400]);
    expect(await refusal(uoe(bucket, 'sse-c', arn))).toEqual(['InvalidRequest', 400]);
    expect(await refusal(uoe(bucket, 'no-such-object', arn))).toEqual(['NoSuchKey', 404]);
    expect(await refusal(uoe(locked, 'held', arn, { VersionId: held.VersionId }))).toEqual(['AccessDenied', 403]);
    expect(await refusal(uoe(locked, 'retained', arn, { VersionId: retained.VersionId }))).toEqual([
      'AccessDenied',
      403,
    ]);
    expect(await refusal(uoe(locked, 'held', arn))).toEqual(['AccessDenied', 403]);
    // Only a full key ARN is accepted: not an alias, an alias ARN, a bare key id, nor nothing.
    for (const bad of ['alias/test-key-a', arn.replace(/key\/.*$/, 'alias/test-key-a'), keyA().keyId, '']) {
      expect(await refusal(uoe(bucket, 'sse-s3', bad)), bad).toEqual(['InvalidRequest', 400]);
    }
    expect(await refusal(uoe(bucket, 'sse-s3', otherAccount))).toEqual(['AccessDenied', 403]);
    // A request signed with the wrong secret is refused like any other S3 request.
    const forged = s3Client({ ...info, s3Endpoint: standIn.endpoint, secretAccessKey: 'not-the-secret' });
    try {
      expect(
        await refusal(
          forged.send(
            new UpdateObjectEncryptionCommand({
              Bucket: bucket,
              Key: 'sse-s3',
              ObjectEncryption: { SSEKMS: { KMSKeyArn: arn } },
            }),
          ),
        ),
      ).toEqual(['SignatureDoesNotMatch', 403]);
    } finally {
      forged.destroy();
    }

    // Nothing reached the backend as a write: objects are whole and unchanged.
    expect(standIn.bucketCounts[bucket]?.PutObject).toBeUndefined();
    const after = await head(direct, bucket, 'plain');
    expect([after.ETag, after.LastModified, after.ServerSideEncryption]).toEqual([
      before.ETag,
      before.LastModified,
      undefined,
    ]);
    expect(await body(direct, bucket, 'plain')).toBe('plain body');
    expect((await head(direct, bucket, 'sse-s3')).ServerSideEncryption).toBe('AES256');
    expect(await body(direct, bucket, 'sse-s3')).toBe('sse-s3 body');
    expect((await head(direct, locked, 'held')).ServerSideEncryption).toBe('AES256');
  });

  it('BucketKeyEnabled defaults to false, as AWS documents', async () => {
    const bucket = await createBucket(direct, 'uoe-bk');
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'o', Body: 'o', ServerSideEncryption: 'AES256' }));
    await uoe(bucket, 'o', keyA().arn, { BucketKeyEnabled: true });
    expect((await head(via, bucket, 'o')).BucketKeyEnabled).toBe(true);
    await uoe(bucket, 'o', keyA().arn);
    const h = await head(via, bucket, 'o');
    expectKeyA(h, 'o');
    expect(Boolean(h.BucketKeyEnabled)).toBe(false);
  });
});
